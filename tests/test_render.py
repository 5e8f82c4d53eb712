"""The one renderer dispatch (envdoctor/render/__init__.py): every entry names a real function,
and every format a command offers has an entry."""

import importlib
import inspect

import pytest

from envdoctor.render import COLOURED, RENDERERS

FORMATS = {  # what each command's --format (and fix --print-requirements) offers
    "Report": ("text", "json", "markdown"),
    "Explanation": ("text", "json", "markdown"),
    "KnowledgeBase": ("text", "json", "markdown"),
    "FixResult": ("text", "json", "requirements"),
    "OfflineChoice": ("text", "json"),
}


@pytest.mark.parametrize("kind,fmt", sorted(RENDERERS))
def test_each_entry_names_a_renderer_taking_colour_only_for_a_terminal_format(kind, fmt):
    module, function = RENDERERS[(kind, fmt)]
    renderer = getattr(importlib.import_module("envdoctor.render." + module), function)
    signature = inspect.signature(renderer)
    if fmt in COLOURED:
        assert list(signature.parameters)[1] == "colour", (module, function)
        signature.bind(object(), True)
    else:
        signature.bind(object())


def test_every_format_a_command_offers_has_a_renderer():
    assert {(kind, fmt) for kind, fmts in FORMATS.items() for fmt in fmts} == set(RENDERERS)
