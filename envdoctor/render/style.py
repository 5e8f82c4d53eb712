"""Colour codes for the text renderers; whether to use them is the command line's call."""

_CODES = {"error": "31;1", "warning": "33;1", "possible": "36", "ok": "32", "dim": "2", "bold": "1"}


class Style:
    def __init__(self, colour: bool) -> None:
        self.colour = colour

    def __call__(self, kind: str, text: str) -> str:
        if not self.colour or kind not in _CODES:
            return text
        return "\033[%sm%s\033[0m" % (_CODES[kind], text)
