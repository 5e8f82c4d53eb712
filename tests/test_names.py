"""Package names (envdoctor/names.py): one rule, and the standalone probe's copy of it agrees."""

import pytest
from packaging.utils import canonicalize_name

from envdoctor.names import canonical_name
from envdoctor.sources import _probe

NAMES = ["torch", "Flash_Attn", "flash-attn", "zope.interface", "Foo__Bar", "a-_.b", " PyYAML ", "nvidia-cuda-runtime-cu12",
         "ruamel.yaml.clib", "X", "a...b---c___d"]


@pytest.mark.parametrize("name", NAMES)
def test_canonical_name_is_pep_503_and_the_probe_copy_agrees(name):
    assert canonical_name(name) == canonicalize_name(name.strip())
    assert _probe.canonical_name(name) == canonical_name(name)
