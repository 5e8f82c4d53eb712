"""Colour only for a terminal, and never when NO_COLOR is set (https://no-color.org) or TERM=dumb."""

import os
import sys

_CODES = {"error": "31;1", "warning": "33;1", "possible": "36", "ok": "32", "dim": "2", "bold": "1"}


def use_colour(stream=None) -> bool:
    stream = stream or sys.stdout
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":  # a dumb terminal shows codes as text
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Style:
    def __init__(self, colour: bool) -> None:
        self.colour = colour

    def __call__(self, kind: str, text: str) -> str:
        if not self.colour or kind not in _CODES:
            return text
        return "\033[%sm%s\033[0m" % (_CODES[kind], text)
