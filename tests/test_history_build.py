"""The history builder on real release files: what it records is what those releases contain."""

import json
import os
import subprocess
import sys

import pytest

from envdoctor.history.archive import read_release
from envdoctor.history.build import merge_package, release_record
from envdoctor.history.load import PackageHistory


@pytest.fixture(scope="module")
def xtuner_records(real_releases):
    return {v: release_record("xtuner", v, read_release(real_releases("xtuner", v))) for v in ("0.1.19", "0.1.23")}


def test_guarded_and_unguarded_imports_of_a_release(xtuner_records):
    rec = xtuner_records["0.1.23"]
    imports = {(f, t, n): (fn, g) for f, t, n, fn, g in rec["imports"]}
    moe = "xtuner.utils.handle_moe_load_and_save"
    assert imports[(moe, "deepspeed", "")] == (0, 0)  # the module-level `import deepspeed`
    assert imports[(moe, "transformers.utils", "is_safetensors_available")] == (0, 0)
    # relative imports resolve to absolute modules, and own-package imports are not listed
    assert not any(t.startswith("xtuner") for _, t, _ in imports)
    assert "handle_moe_load_and_save" in " ".join(rec["modules"]["xtuner.utils"]["names"]) or \
        "SUPPORT_MODELS" in rec["modules"]["xtuner.utils"]["names"]
    # guarded (under try/except or if) and in-function imports are told apart from module-level ones
    assert any(g for (_, _, _), (_, g) in imports.items())
    assert any(fn for (_, _, _), (fn, _) in imports.items())
    assert rec["requires_python"] == ">=3.8, <3.11"


def test_merge_stores_ranges_of_releases(xtuner_records):
    data = merge_package("xtuner", list(xtuner_records.values()))
    h = PackageHistory(json.loads(json.dumps(data)))
    assert h.versions == ["0.1.19", "0.1.23"]
    moe = "xtuner.utils.handle_moe_load_and_save"
    assert h.has_module(moe, "0.1.23") is True
    assert h.has_module(moe, "0.1.19") is False
    assert h.has_module(moe, "0.1.21") is None  # between releases that disagree: unknown, not a guess
    assert h.has_module("xtuner.model", "0.1.21") is True  # both sides agree
    assert h.has_name("xtuner.utils", "SUPPORT_MODELS", "0.1.23") is True
    assert h.has_name("xtuner.utils", "SUPPORT_MODELS", "0.1.19") is False
    assert [s.text() for s in h.span(h.module_ranges(moe))] == ["0.1.23 (and newer examined releases)"]
    assert ("xtuner.utils.handle_moe_load_and_save", "deepspeed", "", False, False) in h.imports("0.1.23")


def test_star_imports_and_keyword_parameters(real_releases):
    rec = release_record("mmengine", "0.10.4", read_release(real_releases("mmengine", "0.10.4")))
    # mmengine/__init__.py: `from .config import *` and friends
    assert "Config" in rec["modules"]["mmengine"]["names"]
    assert "Config" in rec["modules"]["mmengine.config"]["names"]
    names, open_ = rec["params"]["mmengine.config.config.Config"]  # where it is defined
    assert "cfg_dict" in names and "filename" in names


KEEP = ("transformers/__init__.py", "transformers/utils/", "transformers/models/auto/", "transformers/models/llama/",
        "transformers/training_args.py")


def test_lazy_exports_model_types_and_dataclass_fields(real_releases):
    release = read_release(real_releases("transformers", "4.42.4"))
    # the parts these lookups need (parsing all ~2,500 files would only cost time here)
    release = release._replace(files={p: b for p, b in release.files.items() if p.startswith(KEEP)})
    rec = release_record("transformers", "4.42.4", release)
    top = rec["modules"]["transformers"]
    # _import_structure: names exported lazily from the top-level package
    assert {"AutoModelForCausalLM", "LlamaForCausalLM", "TrainingArguments", "BitsAndBytesConfig"} <= set(top["names"])
    assert "is_safetensors_available" in rec["modules"]["transformers.utils"]["names"]
    assert {"llama", "qwen2", "internlm2"} & set(rec["model_types"]) == {"llama", "qwen2"}  # internlm2 is remote code
    fields, _ = rec["params"]["transformers.training_args.TrainingArguments"]
    assert {"output_dir", "learning_rate", "per_device_train_batch_size"} <= set(fields)
    assert "evaluation_strategy" in fields  # renamed eval_strategy later; 4.42 has both
    bnb, _ = rec["params"]["transformers.utils.quantization_config.BitsAndBytesConfig"]
    assert "load_in_4bit" in bnb


def test_namespace_packages_and_c_extensions_are_open(real_releases):
    ns = release_record("jaraco.functools", "4.0.1", read_release(real_releases("jaraco.functools", "4.0.1")))
    assert ns["modules"]["jaraco"] == {"names": [], "open": True, "kind": "ns"}
    assert "compose" in ns["modules"]["jaraco.functools"]["names"]
    ext_file = real_releases("markupsafe", "2.1.5", "--only-binary=:all:", "--platform", "manylinux2014_x86_64",
                             "--python-version", "3.11")
    ext = release_record("markupsafe", "2.1.5", read_release(ext_file))
    assert ext["modules"]["markupsafe._speedups"] == {"names": [], "open": True, "kind": "ext"}
    data = merge_package("markupsafe", [ext])
    h = PackageHistory(data)
    # a C extension's names are unknown: never claimed missing
    assert h.has_name("markupsafe._speedups", "anything", "2.1.5") is None
    assert h.has_name("markupsafe", "escape", "2.1.5") is True
    assert h.has_name("markupsafe", "no_such_name", "2.1.5") is False


def test_builder_script_help_runs_without_network():
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts", "build_history.py")
    done = subprocess.run([sys.executable, script, "--help"], stdout=subprocess.PIPE, universal_newlines=True)
    assert done.returncode == 0 and "--no-fetch" in done.stdout
