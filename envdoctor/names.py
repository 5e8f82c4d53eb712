"""Package names as pip compares them (PEP 503), the one rule every module uses."""


def canonical_name(name: str) -> str:
    """Lower case, every run of "-", "_" and "." one "-": "Flash_Attn" -> "flash-attn".

    Written without packaging (whose utils module costs a start-up import for this one rule).
    sources/_probe.py keeps a copy: it runs standalone in other interpreters; a test holds
    the two equal.
    """
    out = []
    prev = False
    for ch in name.strip().lower():
        if ch in "-_.":
            if not prev:
                out.append("-")
            prev = True
        else:
            out.append(ch)
            prev = False
    return "".join(out)
