"""Where the knowledge that comes with envdoctor lives (a module of its own: the API history's
lookups need only this, not the record loader and its imports)."""

import os


def shipped_dir() -> str:
    """The knowledge base that comes with envdoctor: inside the wheel, or the source tree."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    installed = os.path.join(here, "_knowledge")
    if os.path.isdir(installed):
        return installed
    return os.path.join(os.path.dirname(here), "knowledge")
