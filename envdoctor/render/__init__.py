"""Renderers: a command's result in, text out. ``render`` is the one way in; cli calls it for
every result. One module per kind of result or format, imported only when used."""

import importlib

# (the result's class, format) -> (module under envdoctor.render, function). A renderer of a
# format meant for a terminal (COLOURED) takes (result, colour); the others the result alone.
COLOURED = ("text", "requirements")
RENDERERS = {
    ("Report", "text"): ("text", "render"),
    ("Report", "json"): ("json", "render"),
    ("Report", "markdown"): ("markdown", "render"),
    ("Explanation", "text"): ("explain", "render_text"),
    ("Explanation", "json"): ("explain", "render_json"),
    ("Explanation", "markdown"): ("explain", "render_markdown"),
    ("FixResult", "text"): ("fix", "render_text"),
    ("FixResult", "json"): ("fix", "render_json"),
    ("FixResult", "requirements"): ("fix", "render_requirements"),
    ("OfflineChoice", "text"): ("fix", "render_offline_text"),
    ("OfflineChoice", "json"): ("fix", "render_offline_json"),
    ("KnowledgeBase", "text"): ("kblist", "render_text"),
    ("KnowledgeBase", "json"): ("kblist", "render_json"),
    ("KnowledgeBase", "markdown"): ("kblist", "render_markdown"),
}


def render(result: object, fmt: str, colour: bool = False) -> str:
    """``result`` (a command's result object) in format ``fmt``; colour applies to COLOURED only."""
    module, function = RENDERERS[(type(result).__name__, fmt)]
    out = getattr(importlib.import_module("envdoctor.render." + module), function)
    return out(result, colour) if fmt in COLOURED else out(result)
