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
    names, open_, is_class = rec["params"]["mmengine.config.config.Config"]  # where it is defined
    assert "cfg_dict" in names and "filename" in names and is_class
    # functions: `def build_from_cfg(cfg, registry, default_args=None)`; `def load(file, ..., **kwargs)` is open
    assert rec["params"]["mmengine.registry.build_functions.build_from_cfg"] == [["cfg", "default_args", "registry"], False, False]
    assert rec["params"]["mmengine.fileio.io.load"][1:] == [True, False]


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
    fields, _, is_class = rec["params"]["transformers.training_args.TrainingArguments"]
    assert {"output_dir", "learning_rate", "per_device_train_batch_size"} <= set(fields)
    assert "evaluation_strategy" in fields and is_class  # renamed eval_strategy later; 4.42 has both
    bnb, _, _ = rec["params"]["transformers.utils.quantization_config.BitsAndBytesConfig"]
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


def _template_source(wheel):
    import zipfile
    with zipfile.ZipFile(wheel) as z:
        return z.read("xtuner/utils/templates.py").decode("utf-8")


def test_keys_of_xtuner_templates_follow_reexports(xtuner_records, real_releases, tmp_path):
    """PROMPT_TEMPLATE.<key> as a config uses it: the keys of the ConfigDict in xtuner/utils/templates.py,
    found both there and where xtuner.utils re-exports it, and where each key exists among releases."""
    from envdoctor.history.build import split
    from envdoctor.history.members import member_defined, member_range

    new = _template_source(real_releases("xtuner", "0.1.23"))
    old = _template_source(real_releases("xtuner", "0.1.19"))
    assert "deepseek_v2=dict(" in new and "deepseek_v2=dict(" not in old  # what the release files say
    assert "internlm2_chat=dict(" in new and "internlm2_chat=dict(" in old
    rec = xtuner_records["0.1.23"]["members"]
    assert rec["xtuner.utils.PROMPT_TEMPLATE"] == rec["xtuner.utils.templates.PROMPT_TEMPLATE"]
    assert {"deepseek_v2", "internlm2_chat", "llama3_chat"} <= set(rec["xtuner.utils.PROMPT_TEMPLATE"])
    assert "alpaca" in rec["xtuner.utils.SYSTEM_TEMPLATE"]
    assert not any(k.startswith("xtuner.tools.chat.PROMPT") for k in rec)  # a module that only uses it

    # the shipped layout (main file and shards) in a --kb folder's history/, read by the public lookup
    main, shards = split(merge_package("xtuner", list(xtuner_records.values())))
    folder = tmp_path / "history" / "xtuner"
    folder.mkdir(parents=True)
    for key, shard in shards.items():
        (folder / (key + ".json")).write_text(json.dumps(shard))
    (tmp_path / "history" / "xtuner.json").write_text(json.dumps(main))
    kb = [str(tmp_path)]
    found = member_range("xtuner", "xtuner.utils", "PROMPT_TEMPLATE", "deepseek_v2", kb)
    assert found.defined == ("0.1.23",) and found.known == ("0.1.19", "0.1.23")
    assert found.specifier() == ">=0.1.23"
    assert member_defined("xtuner", "xtuner.utils", "PROMPT_TEMPLATE", "deepseek_v2", "0.1.19", kb) is False
    assert member_defined("xtuner", "xtuner.utils.templates", "PROMPT_TEMPLATE", "deepseek_v2", "0.1.23", kb) is True
    # near misses: a key both have, a release between two that disagree, a name that is no literal dict
    assert member_defined("xtuner", "xtuner.utils", "PROMPT_TEMPLATE", "internlm2_chat", "0.1.19", kb) is True
    assert member_defined("xtuner", "xtuner.utils", "PROMPT_TEMPLATE", "deepseek_v2", "0.1.21", kb) is None
    assert member_range("xtuner", "xtuner.utils", "IGNORE_INDEX", "x", kb) is None


def test_dict_keys_that_cannot_all_be_seen_are_unknown():
    from envdoctor.history.scan import scan_source

    s = scan_source("from mmengine.config import ConfigDict\n"
                    "A = ConfigDict(a=dict(x=1), b=2)\nA['c'] = 3\nA.d = 4\n"
                    "B = dict(**A)\nC = {'k': 1}\nC.update(m=2)\n"
                    "try:\n    D = {'d': 1}\nexcept ImportError:\n    pass\n"
                    "E = {'e': 1}\nE[name] = 2\nF = {'f': 1}\nfrom .x import F\n", "pkg.mod", False)
    assert s.members == {"A": ("a", "b", "c", "d"), "C": None, "E": None}
    assert ("F", "pkg.x", "F") in s.reexports


def test_a_decorator_that_may_take_more_keywords_opens_the_parameters():
    from envdoctor.history.scan import scan_source

    s = scan_source("class Trainer:\n    @deprecate_kwarg('tokenizer', new_name='processing_class')\n"
                    "    def __init__(self, model, processing_class=None): pass\n"
                    "class Plain:\n    @torch.no_grad()\n    def __init__(self, a): pass\n", "m", False)
    assert s.params["Trainer"].open and s.params["Trainer"].is_class
    assert not s.params["Plain"].open


def test_shipped_history_has_the_template_keys_of_real_releases(xtuner_records):
    from envdoctor.history.members import member_defined

    for version, rec in xtuner_records.items():
        for key in rec["members"]["xtuner.utils.PROMPT_TEMPLATE"]:
            assert member_defined("xtuner", "xtuner.utils", "PROMPT_TEMPLATE", key, version) is True
    assert member_defined("xtuner", "xtuner.utils", "PROMPT_TEMPLATE", "deepseek_v2", "0.1.19") is False


def test_shipped_history_fits_its_budget_in_the_wheel():
    """Issue 16: at most 5 MB inside the wheel. The wheel deflates each file; zlib at the same level
    gives the size a wheel entry has (within a few bytes of header per file)."""
    import zlib

    root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "knowledge", "history")
    total = files = 0
    for folder, _, names in os.walk(root):
        for name in names:
            with open(os.path.join(folder, name), "rb") as f:
                total += len(zlib.compress(f.read(), 6)) + 100  # + a zip entry's headers
            files += 1
    assert files > 100 and total < 5 * 1024 * 1024, (files, total)
