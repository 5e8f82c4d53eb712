"""The import check on real releases, installed (never imported) and as pins.

A venv gets the real wheels of an XTuner 0.1.23 stack (--no-deps). The packages those import that are
not the subject (numpy, torch, ...) get stand-ins whose names are unknown to envdoctor (a module
__getattr__), so the check judges every import between the real releases and says nothing false
about the rest. Then the two known breaks are made, with their records left out, and must be found
from the code alone.
"""

import json
import os
import subprocess
import sys

import pytest

from builders import make_venv, make_wheel
from envdoctor.importcheck import check_environment

STACK = [("xtuner", "0.1.23"), ("transformers", "4.42.4"), ("mmengine", "0.10.4"), ("peft", "0.11.1"),
         ("accelerate", "0.32.1"), ("datasets", "2.20.0")]
EXCLUDE = "XTUNER-TRANSFORMERS-5,XTUNER-HIDDEN-DEEPSPEED-IMPORT"
STANDIN = "def __getattr__(name):  # a stand-in: its names are unknown to envdoctor\n    raise AttributeError(name)\n"


def _install(venv, *paths):
    subprocess.run([sys.executable, "-m", "pip", "--python", venv.python, "install", "-q", "--no-deps", "--no-index",
                    "--ignore-requires-python", *paths], check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def stack(real_releases, tmp_path_factory):
    root = tmp_path_factory.mktemp("stack")
    venv = make_venv(str(root / "venv"))
    _install(venv, *[real_releases(n, v) for n, v in STACK])
    site = venv.site_packages
    first, _ = check_environment([site], {n for n, _ in STACK}, use_cache=False)
    missing = sorted({f.module for f in first if f.error == "ModuleNotFoundError" and "." not in f.module})
    wheels = str(root / "standins")
    _install(venv, *[make_wheel(wheels, "standin-" + top.replace("_", "-"), "1.0", files={"%s/__init__.py" % top: STANDIN})
                     for top in missing])
    return venv, first, missing


def _check(venv, *args, env=None):
    done = subprocess.run([sys.executable, "-m", "envdoctor", "check", "--python", venv.python, "--format", "json", *args],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          env=dict(os.environ, **(env or {})))
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)


def _imports(report):
    return {f["id"]: f for f in report["findings"] if f["id"].startswith("IMPORT-")}


def test_every_import_between_the_real_releases_resolves(stack):
    venv, first, missing = stack
    # Before the stand-ins, the only failures are top-level packages that are not installed at all:
    # no missing name, no missing submodule of an installed release.
    assert first and all(f.error == "ModuleNotFoundError" and "." not in f.module for f in first)
    assert "deepspeed" in missing and "torch" in missing
    assert not {n for n, _ in STACK} & set(missing)


def test_no_false_error_on_the_working_stack(stack):
    venv, _, _ = stack
    report = _check(venv)
    assert _imports(report) == {}


def test_hidden_deepspeed_import_found_from_the_code(stack):
    venv, _, _ = stack
    subprocess.run([sys.executable, "-m", "pip", "--python", venv.python, "uninstall", "-q", "-y", "standin-deepspeed"], check=True)
    try:
        with_record = _check(venv)
        ids = {f["id"] for f in with_record["findings"]}
        assert "XTUNER-HIDDEN-DEEPSPEED-IMPORT" in ids and "IMPORT-deepspeed" not in ids  # the record says more
        report = _check(venv, env={"ENVDOCTOR_EXCLUDE_RECORDS": EXCLUDE})
        found = _imports(report)["IMPORT-deepspeed"]
        assert found["severity"] == "error"
        assert "No module named 'deepspeed'" in found["summary"]
        assert "xtuner/utils/handle_moe_load_and_save.py line 6" in found["details"]
    finally:
        _install(venv, make_wheel(str(os.path.dirname(venv.root)) + "/standins", "standin-deepspeed", "1.0",
                                  files={"deepspeed/__init__.py": STANDIN}))


def test_transformers_5_break_found_from_the_code(stack, real_releases):
    venv, _, _ = stack
    _install(venv, real_releases("transformers", "5.0.0"))
    try:
        report = _check(venv, env={"ENVDOCTOR_EXCLUDE_RECORDS": EXCLUDE})
        found = _imports(report)
        assert "IMPORT-transformers.utils.is_safetensors_available" in found, sorted(found)
        f = found["IMPORT-transformers.utils.is_safetensors_available"]
        assert "cannot import name 'is_safetensors_available' from 'transformers.utils'" in f["summary"]
        assert "xtuner 0.1.23" in f["summary"]
    finally:
        _install(venv, real_releases("transformers", "4.42.4"))


KEYWORD_CONFIG = """\
from mmengine.optim import LinearLR
from peft import LoraConfig
from transformers import TrainingArguments
import transformers

lora = dict(type=LoraConfig, r=64, lora_alpha=16, use_dora=True, lora_bias=True, task_type='CAUSAL_LM')
args = transformers.TrainingArguments(output_dir='out', evaluation_strategy='steps')
param_scheduler = [dict(type=LinearLR, start_factor=1e-5, by_epoch=True, begin=0, end=0.03, convert_to_iter_based=True)]
"""


def test_keyword_a_literal_call_site_passes_that_the_installed_release_lacks(stack, tmp_path):
    """peft 0.11.1's LoraConfig has use_dora (0.9.0 on) but not lora_bias (0.14.0 on): read from its files."""
    venv, _, _ = stack
    config = tmp_path / "config.py"
    config.write_text(KEYWORD_CONFIG)
    found = {f["id"]: f for f in _check(venv, "--config", str(config))["findings"] if f["id"].startswith("KEYWORD-")}
    assert sorted(found) == ["KEYWORD-peft.tuners.lora.config.LoraConfig.lora_bias"]
    f = found["KEYWORD-peft.tuners.lora.config.LoraConfig.lora_bias"]
    assert f["severity"] == "error"
    python = subprocess.run([venv.python, "-c", "import sys; print(sys.version_info >= (3, 10))"],
                            stdout=subprocess.PIPE, universal_newlines=True).stdout.strip()
    name = "LoraConfig.__init__()" if python == "True" else "__init__()"
    assert f["summary"] == "peft 0.11.1: TypeError: %s got an unexpected keyword argument 'lora_bias'" % name
    assert "config.py line 6" in f["details"] and f["remedy"]["requires"] == ["peft>=0.14.0"]
    # near misses: use_dora (accepted here), TrainingArguments' evaluation_strategy (4.42.4 has it), and
    # mmengine's scheduler dict, whose convert_to_iter_based the runner takes out before building it


def test_keyword_messages_name_the_callable_as_each_python_does():
    from envdoctor.signatures import Accepts

    a = Accepts(frozenset(["r"]), "LoraConfig.__init__", "__init__")
    assert a.message("use_dora", "3.11.7") == "LoraConfig.__init__() got an unexpected keyword argument 'use_dora'"
    assert a.message("use_dora", "3.8.18") == "__init__() got an unexpected keyword argument 'use_dora'"


OUTLINE_SOURCE = b'''"""Docstring
import not_an_import
"""
import os
from typing import (
    Dict,
)


@decorator(
    key="value",
)
def helper(
    a: Dict[str, int] = {"x": 1},
) -> None:
    """Written at column 0 inside a body:
def not_a_def(): pass
class NotAClass: pass
"""
    import inside_a_def
    return None


async def later():
    await x


class Config(Base, metaclass=Meta):
    import inside_a_class
    field: int = 1
# a comment at column 0 between the class's lines
    other = dict(a=1)


def __getattr__(name):
    raise AttributeError(name)


x = 1 + \\
2
CONFIG = dict(type=Config, lr=1)
from .sub import thing
\r
def crlf():\r
    pass\r
try:
    import guarded
except ImportError:
    pass
'''


def _kept(s):
    """What the import check keeps of a module's summary (importcheck._parse)."""
    imports = tuple((r.module, r.names, r.line) for r in s.imports if not r.in_function and not r.guarded)
    return s.names, s.stars, s.open or bool(s.error), imports, s.calls, s.bindings


def test_outline_reads_as_the_whole_source():
    """The import check parses an outline (column-0 def and class bodies cut) and must read from it what
    the whole source gives: names, imports with their lines, calls, bindings."""
    from envdoctor.history.scan import outline, scan_source

    cut = outline(OUTLINE_SOURCE)
    assert not any(body in cut for body in (b"not_a_def", b"inside_a_def", b"await", b"inside_a_class", b"other"))
    assert cut.count(b"\n") == OUTLINE_SOURCE.count(b"\n")
    whole = scan_source(OUTLINE_SOURCE, "pkg.mod", False, inner=False)
    assert not whole.error
    assert _kept(scan_source(cut, "pkg.mod", False, inner=False)) == _kept(whole)
    assert ("pkg.sub", ("thing",), 42) in _kept(whole)[3] and "crlf" in whole.names and "guarded" in whole.names


def test_outline_cut_inside_brackets_does_not_parse():
    """A column-0 line inside a def's brackets ends the cut body too early: the outline then has an unmatched
    bracket, so the caller parses the whole source instead of reading a wrong outline."""
    import ast

    from envdoctor.history.scan import outline

    source = b"def f():\n    return g(\nx)\n\nimport os\n"
    ast.parse(source)
    with pytest.raises(SyntaxError):
        ast.parse(outline(source))
