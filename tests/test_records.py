"""Every record fires in one real environment and stays quiet in a near miss.

Each environment is a venv holding wheels with real names, versions and (for XTuner) the marker
lines of the release's code; each is examined once by `envdoctor check --python ... --format
json` in a subprocess. The table says, per environment, which records must fire (confirmed, or
possible where the record also needs a fact no venv holds, such as the model type) and with which
evidence, and which must stay quiet: usually the boundary version on the other side (0.1.17
fires, 0.1.18 does not).
"""

import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from collections import namedtuple

import pytest

from builders import check_json, make_venv, make_wheel, torch_version_py
from xtuner_code import xtuner_files

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from envdoctor.kb.load import load, shipped_dir  # noqa: E402
from envdoctor.kb.releases import find_release, release_table  # noqa: E402

KB = shipped_dir()
HAVE_GXX = shutil.which("g++") is not None
NEEDS_GXX = {"fa-abi-bad", "fa-abi-ok"}

# Wheels beyond conftest's STACK: (name, version, files). XTuner wheels get their release's
# marker lines and declared requirements from the release table.
EXTRA = [
    ("xtuner", "0.1.13", None),
    ("xtuner", "0.1.14", None),
    ("xtuner", "0.1.16", None),
    ("xtuner", "0.2.0rc0", None),
    ("transformers", "4.35.2", None),
    ("transformers", "4.37.2", None),
    ("transformers", "4.38.1", None),
    ("transformers", "4.39.3", None),
    ("transformers", "4.48.0", None),
    ("transformers", "5.0.0", None),
    ("peft", "0.13.2", {"peft/peft_model.py": "from transformers import PreTrainedModel\n"}),
    ("peft", "0.14.0", {"peft/peft_model.py": "from transformers import Cache, DynamicCache, EncoderDecoderCache, PreTrainedModel\n"}),
    ("deepspeed", "0.14.4", {"deepspeed/runtime/checkpoint_engine/torch_checkpoint_engine.py": "        partition = torch.load(path, map_location=map_location)\n"}),
    ("deepspeed", "0.16.2", {"deepspeed/runtime/checkpoint_engine/torch_checkpoint_engine.py": "        partition = torch.load(path, map_location=map_location, weights_only=False)\n"}),
    ("flash-attn", "1.0.9", None),
    ("mmengine", "0.10.7", {"mmengine/runner/checkpoint.py": "    checkpoint = torch.load(filename, map_location=map_location)\n"}),
]
TORCHES = [("1.12.1+cu116", "11.6"), ("1.13.1+cu117", "11.7"), ("2.0.1+cu118", "11.8"), ("2.5.1+cu124", "12.4"), ("2.6.0+cu124", "12.4"), ("2.8.0+cu128", "12.8"), ("2.12.0+cu132", "13.2")]

# Compiled libraries for the flash-attn / torch symbol check: which c10 symbol each exports or
# needs. The extension was built against a torch exporting c10::cuda::SetDevice(int); the
# "2.8.0" torch here exports SetDevice(signed char) instead (the mangled names users report,
# _ZN3c104cuda9SetDeviceEi / ...Ea, in Dao-AILab/flash-attention#853 and #1832).
LIBC10 = {"2.5.1+cu124": "namespace c10 { namespace cuda { void SetDevice(int) {} } }\n",
          "2.8.0+cu128": "namespace c10 { namespace cuda { void SetDevice(signed char) {} } }\n"}
FLASH_EXTENSION = ("namespace c10 { namespace cuda { void SetDevice(int); } }\n"
                   "extern \"C\" void flash_attn_init(void) { c10::cuda::SetDevice(0); }\n")
FLASH_SO = "flash_attn_2_cuda.cpython-311-x86_64-linux-gnu.so"

# A source install: `pip install -e` of a git checkout reports 0.1.22.dev0 whatever it carries.
SOURCE_INSTALLS = {"src-old-code": "0.1.17", "src-new-code": "0.1.22"}

Env = namedtuple("Env", "specs gpu args")


def env(*specs, gpu=None, args=()):
    return Env(specs, gpu, tuple(args))


ENVS = {
    "x0113": env("xtuner==0.1.13", "transformers==4.36.2", "torch==1.13.1+cu117"),
    "x0113-t435": env("xtuner==0.1.13", "transformers==4.35.2"),
    "x0114": env("xtuner==0.1.14", "transformers==4.36.2", "torch==2.0.1+cu118"),
    "x0115": env("xtuner==0.1.15", "transformers==4.39.3"),
    "x0116-t438": env("xtuner==0.1.16", "transformers==4.38.1"),
    "x0117": env("xtuner==0.1.17", "transformers==4.39.3", "torch==2.4.1+cu124"),
    "x0118": env("xtuner==0.1.18", "transformers==4.39.3", "torch==2.4.1+cu124"),
    "x0119": env("xtuner==0.1.19", "transformers==5.0.0"),
    "x0120": env("xtuner==0.1.20", "transformers==4.42.4", "peft==0.13.2"),
    "x0121": env("xtuner==0.1.21", "deepspeed==0.14.4", "flash-attn==1.0.9", gpu="7.5"),
    "x0122": env("xtuner==0.1.22", "transformers==4.37.2", "flash-attn==2.5.8", "deepspeed==0.14.4", gpu="7.5"),
    "x0122-t439": env("xtuner==0.1.22", "transformers==4.39.3", "flash-attn==2.5.8", "deepspeed==0.14.4", gpu="8.0"),
    "x0123-t448": env("xtuner==0.1.23", "transformers==4.48.0", "flash-attn==2.5.8", "deepspeed==0.14.4", "peft==0.14.0"),
    "x0123-t443": env("xtuner==0.1.23", "transformers==4.43.0", "flash-attn==2.5.8", "deepspeed==0.14.4", "torch==2.6.0+cu124", "peft==0.14.0"),
    "x0123-t442": env("xtuner==0.1.23", "transformers==4.42.4", "flash-attn==2.5.8", "deepspeed==0.14.4", "peft==0.14.0"),
    "x0123-t5": env("xtuner==0.1.23", "transformers==5.0.0", "deepspeed==0.14.4", "torch==2.5.1+cu124", "mmengine==0.10.7"),
    "x020rc0": env("xtuner==0.2.0rc0", "torch==2.6.0+cu124", "mmengine==0.10.7", "deepspeed==0.16.2"),
    "x020": env("xtuner==0.2.0", "transformers==5.0.0", "deepspeed==0.14.4", "torch==2.6.0+cu124"),
    "src-old-code": env("xtuner==0.1.22.dev0"),
    "src-new-code": env("xtuner==0.1.22.dev0"),
    "fa-abi-bad": env("flash-attn==2.7.4", "torch==2.8.0+cu128"),
    "fa-abi-ok": env("flash-attn==2.7.4", "torch==2.5.1+cu124"),
    "fa-abi-unread": env("flash-attn==2.7.4", "torch==2.6.0+cu124"),  # a torch wheel without libraries
    "torch-112": env("torch==1.12.1+cu116"),
    "driver-520": env("torch==2.1.2+cu121", args=("--driver", "520.61.05")),
    "driver-525": env("torch==2.1.2+cu121", args=("--driver", "525.60.13")),
    "driver-530": env("torch==2.1.2+cu121", args=("--driver", "530.30.02")),
    # CUDA 13.2 GA asks for 595.45.04; the 13.x family floor is 580.
    "driver-132-590": env("torch==2.12.0+cu132", args=("--driver", "590.44.01")),
    "driver-132-595": env("torch==2.12.0+cu132", args=("--driver", "595.45.04")),
}

C, P, NO = "confirmed", "possible", None
V, CODE, VC = "version", "code", "version and code"

# (record, environment, expected status, expected evidence or None to skip that check)
ROWS = [
    ("XTUNER-PYTHON-RANGE", "x0113", C, None),  # 0.1.13 declares <3.11; these venvs are 3.11+
    ("XTUNER-PYTHON-RANGE", "x020", NO, None),  # 0.2.0 declares <3.13
    ("XTUNER-PYTHON-RANGE", "src-old-code", NO, None),  # not a release: nothing declared to compare
    ("XTUNER-DECLARED-REQUIREMENTS", "x0117", C, None),  # torch 2.4.1 against torch<=2.1.2
    ("XTUNER-DECLARED-REQUIREMENTS", "x0116-t438", C, None),  # transformers 4.38.1 excluded
    ("XTUNER-DECLARED-REQUIREMENTS", "x020", C, None),  # transformers==4.48.0; deepspeed extra ==0.16.2
    ("XTUNER-DECLARED-REQUIREMENTS", "x0118", NO, None),  # 0.1.18 dropped the torch cap
    ("XTUNER-POSITION-IDS-COLLATE", "x0117", P, VC),
    ("XTUNER-POSITION-IDS-COLLATE", "src-old-code", P, CODE),  # 0.1.22.dev0 carrying 0.1.17's collate
    ("XTUNER-POSITION-IDS-COLLATE", "x0118", NO, None),
    ("XTUNER-POSITION-IDS-COLLATE", "src-new-code", NO, None),
    ("XTUNER-POSITION-IDS-SP-PADDING", "x0118", P, VC),
    ("XTUNER-POSITION-IDS-SP-PADDING", "x0119", P, VC),
    ("XTUNER-POSITION-IDS-SP-PADDING", "x0117", NO, None),
    ("XTUNER-POSITION-IDS-SP-PADDING", "x0120", NO, None),
    ("XTUNER-SP-GLOBAL-GROUP", "x0117", P, VC),  # possible: the GPU count and trainer are not known here
    ("XTUNER-SP-GLOBAL-GROUP", "x0119", P, VC),
    ("XTUNER-SP-GLOBAL-GROUP", "x0115", NO, None),  # no sequence parallelism before 0.1.16
    ("XTUNER-SP-GLOBAL-GROUP", "x0120", NO, None),
    ("XTUNER-SP-GLOBAL-GROUP-TRAINER", "x0117", P, VC),  # possible: the GPU count and trainer are not known here
    ("XTUNER-SP-GLOBAL-GROUP-TRAINER", "src-old-code", P, CODE),  # 0.1.22.dev0 carrying 0.1.17's collate
    ("XTUNER-SP-GLOBAL-GROUP-TRAINER", "x0118", NO, None),  # 0.1.18 pads instead (SP-PADDING)
    ("XTUNER-SP-GLOBAL-GROUP-TRAINER", "x0115", NO, None),
    ("XTUNER-POSITION-IDS-ASSERT-REMAINS", "x0120", P, VC),
    ("XTUNER-POSITION-IDS-ASSERT-REMAINS", "x0121", P, VC),
    ("XTUNER-POSITION-IDS-ASSERT-REMAINS", "x0119", NO, None),
    ("XTUNER-POSITION-IDS-ASSERT-REMAINS", "x0122", NO, None),
    ("XTUNER-POSITION-IDS-ASSERT-REMAINS", "src-old-code", NO, None),
    ("XTUNER-DYNAMIC-CACHE-TRANSFORMERS-436", "x0113", P, VC),
    ("XTUNER-DYNAMIC-CACHE-TRANSFORMERS-436", "x0114", NO, None),
    ("XTUNER-DYNAMIC-CACHE-TRANSFORMERS-436", "x0113-t435", NO, None),
    ("XTUNER-ROTARY-TRANSFORMERS-438", "x0115", P, VC),
    ("XTUNER-ROTARY-TRANSFORMERS-438", "x0116-t438", NO, None),
    ("XTUNER-ROTARY-TRANSFORMERS-438", "x0114", NO, None),  # transformers 4.36.2
    ("TRANSFORMERS-438-CAUSAL-MASK", "x0116-t438", P, V),
    ("TRANSFORMERS-438-CAUSAL-MASK", "x0117", NO, None),  # 4.39.3
    ("XTUNER-FLASH-ATTENTION-FORWARD-TRANSFORMERS-443", "x0123-t443", P, VC),
    ("XTUNER-FLASH-ATTENTION-FORWARD-TRANSFORMERS-443", "x0123-t442", NO, None),
    ("XTUNER-FLASH-ATTENTION-FORWARD-TRANSFORMERS-443", "x0123-t448", NO, None),  # 4.48 has no class to patch
    ("XTUNER-FLASH-ATTENTION-FORWARD-QWEN2-MOE", "x0123-t448", P, VC),  # Qwen2MoeFlashAttention2 stays
    ("XTUNER-FLASH-ATTENTION-FORWARD-QWEN2-MOE", "x0123-t443", P, VC),
    ("XTUNER-FLASH-ATTENTION-FORWARD-QWEN2-MOE", "x0123-t442", NO, None),
    ("XTUNER-SP-NOT-DISPATCHED-TRANSFORMERS-448", "x0123-t448", P, V),
    ("XTUNER-SP-NOT-DISPATCHED-TRANSFORMERS-448", "x0123-t443", NO, None),
    ("XTUNER-SP-NOT-DISPATCHED-TRANSFORMERS-448", "x020rc0", NO, None),
    ("XTUNER-TRANSFORMERS-5", "x0123-t5", C, VC),
    ("XTUNER-TRANSFORMERS-5", "x020", C, VC),
    ("XTUNER-TRANSFORMERS-5", "x0119", NO, None),
    ("XTUNER-TRANSFORMERS-5", "x0123-t442", NO, None),
    ("XTUNER-HIDDEN-DEEPSPEED-IMPORT", "x0120", C, VC),
    ("XTUNER-HIDDEN-DEEPSPEED-IMPORT", "src-new-code", C, VC),
    ("XTUNER-HIDDEN-DEEPSPEED-IMPORT", "x0121", NO, None),  # deepspeed installed
    ("XTUNER-HIDDEN-DEEPSPEED-IMPORT", "x0119", NO, None),
    ("XTUNER-HIDDEN-DEEPSPEED-IMPORT", "src-old-code", NO, None),  # 0.1.17's code has no such import
    ("XTUNER-STATIC-CACHE-TRANSFORMERS-438", "x0122", P, VC),
    ("XTUNER-STATIC-CACHE-TRANSFORMERS-438", "x0122-t439", NO, None),
    ("XTUNER-CONVERT-TORCH-26-WEIGHTS-ONLY", "x0123-t443", C, VC),
    ("XTUNER-CONVERT-TORCH-26-WEIGHTS-ONLY", "x020rc0", C, VC),
    ("XTUNER-CONVERT-TORCH-26-WEIGHTS-ONLY", "x020", NO, None),
    ("XTUNER-CONVERT-TORCH-26-WEIGHTS-ONLY", "x0123-t5", NO, None),  # torch 2.5.1
    ("PEFT-ENCODER-DECODER-CACHE", "x0123-t442", C, VC),
    ("PEFT-ENCODER-DECODER-CACHE", "x0120", NO, None),  # peft 0.13.2
    ("PEFT-ENCODER-DECODER-CACHE", "x0123-t443", NO, None),  # transformers 4.43.0
    ("MMENGINE-TORCH-26-WEIGHTS-ONLY", "x020rc0", C, VC),
    ("DEEPSPEED-TORCH-26-WEIGHTS-ONLY", "x0123-t443", C, VC),
    ("DEEPSPEED-TORCH-26-WEIGHTS-ONLY", "x020rc0", NO, None),  # deepspeed 0.16.2
    ("DEEPSPEED-TORCH-26-WEIGHTS-ONLY", "x0123-t5", NO, None),  # torch 2.5.1
    ("MMENGINE-TORCH-26-WEIGHTS-ONLY", "x0123-t5", NO, None),  # torch 2.5.1
    ("TORCH-PYTHON-RANGE", "torch-112", C, None),  # torch 1.12 has wheels up to cp310; these venvs are 3.11+
    ("TORCH-PYTHON-RANGE", "x0113", NO, None),  # torch 1.13.1 has cp311 wheels (the matrix said <= 3.10)
    ("TORCH-PYTHON-RANGE", "x0114", NO, None),  # torch 2.0 builds for 3.11
    ("FLASH-ATTN-PRE-AMPERE", "x0122", C, V),  # compute capability 7.5
    ("FLASH-ATTN-PRE-AMPERE", "x0122-t439", NO, None),  # 8.0
    ("FLASH-ATTN-PRE-AMPERE", "x0121", NO, None),  # flash-attn 1.x on 7.5
    ("FLASH-ATTN-BUILT-FOR-ANOTHER-TORCH", "fa-abi-bad", C, None),
    ("FLASH-ATTN-BUILT-FOR-ANOTHER-TORCH", "fa-abi-unread", P, None),
    ("FLASH-ATTN-BUILT-FOR-ANOTHER-TORCH", "fa-abi-ok", NO, None),
    ("FLASH-ATTN-BUILT-FOR-ANOTHER-TORCH", "x0121", NO, None),  # no torch installed
    ("CUDA-DRIVER-TOO-OLD", "driver-520", C, None),
    ("CUDA-DRIVER-TOO-OLD", "driver-525", NO, None),
    ("CUDA-DRIVER-BELOW-TOOLKIT", "driver-525", C, None),
    ("CUDA-DRIVER-BELOW-TOOLKIT", "driver-530", NO, None),
    ("CUDA-DRIVER-BELOW-TOOLKIT", "driver-132-590", C, None),
    ("CUDA-DRIVER-BELOW-TOOLKIT", "driver-132-595", NO, None),
    ("CUDA-DRIVER-TOO-OLD", "driver-132-590", NO, None),
]


def _compile(folder, name, source):
    """A shared library built by g++ from C++ source, as bytes."""
    src = os.path.join(folder, name + ".cpp")
    with open(src, "w") as handle:
        handle.write(source)
    out = os.path.join(folder, name + ".so")
    subprocess.run(["g++", "-shared", "-fPIC", "-o", out, src], check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    with open(out, "rb") as handle:
        return handle.read()


def _torch_wheel(folder, version, cuda, libc10=None):
    files = {
        "torch/__init__.py": "raise ImportError('envdoctor must not import torch')\n",
        "torch/version.py": torch_version_py(version, cuda),
    }
    if libc10:
        files["torch/lib/libc10.so"] = libc10
    make_wheel(folder, "torch", version, [], ">=3.8", files=files)


def _xtuner_wheel(folder, version, code_of):
    release = find_release(release_table(load([KB]).tables), "xtuner", code_of)
    requires = release.requires if release and version == code_of else ()
    python = release.requires_python if release and version == code_of else None
    make_wheel(folder, "xtuner", version, requires, python, files=xtuner_files(code_of))


@pytest.fixture(scope="session")
def record_venvs(wheelhouse, venvs, tmp_path_factory):
    """name -> Venv for every environment of the table."""
    for name, version, files in EXTRA:
        if name == "xtuner":
            _xtuner_wheel(wheelhouse, version, version)
        else:
            make_wheel(wheelhouse, name, version, [], ">=3.8", files=files)
    build = str(tmp_path_factory.mktemp("compiled"))
    libs = {v: _compile(build, "c10-" + v, src) for v, src in LIBC10.items()} if HAVE_GXX else {}
    for version, cuda in TORCHES:
        _torch_wheel(wheelhouse, version, cuda, libs.get(version))
    extension = {FLASH_SO: _compile(build, "flash", FLASH_EXTENSION)} if HAVE_GXX else {}
    make_wheel(wheelhouse, "flash-attn", "2.7.4", ["torch"], ">=3.9", files=dict(extension, **{"flash_attn/__init__.py": "__version__ = '2.7.4'\n"}))
    made = {}
    for name, spec in ENVS.items():
        if name in SOURCE_INSTALLS:
            made[name] = _source_install(tmp_path_factory, name, SOURCE_INSTALLS[name])
        else:
            made[name] = venvs(*spec.specs)
    return made


def _source_install(tmp_path_factory, name, code_of):
    folder = str(tmp_path_factory.mktemp(name))
    _xtuner_wheel(folder, "0.1.22.dev0", code_of)
    venv = make_venv(tempfile.mkdtemp(dir=folder))
    venv.install("--find-links", folder, "xtuner==0.1.22.dev0")
    return venv


@pytest.fixture(scope="session")
def fake_gpus(tmp_path_factory):
    """capability -> a folder holding an nvidia-smi that reports one GPU of that capability."""
    out = {}
    for capability in ("7.5", "8.0"):
        folder = str(tmp_path_factory.mktemp("gpu-" + capability))
        path = os.path.join(folder, "nvidia-smi")
        with open(path, "w") as handle:
            handle.write("#!/bin/sh\necho '550.54.14, Test GPU sm%s, %s, 16384'\n" % (capability.replace(".", ""), capability))
        os.chmod(path, os.stat(path).st_mode | stat.S_IEXEC)
        out[capability] = folder
    return out


@pytest.fixture(scope="session")
def reports(record_venvs, fake_gpus):
    """name -> the JSON report of `envdoctor check` on that environment (run on first use)."""
    cache = {}

    def get(name):
        if name not in cache:
            spec = ENVS[name]
            path = "/usr/bin:/bin" if spec.gpu is None else fake_gpus[spec.gpu] + os.pathsep + "/usr/bin:/bin"
            cache[name] = check_json("--python", record_venvs[name].python, *spec.args, env={"PATH": path})
        return cache[name]

    return get


@pytest.mark.parametrize("record_id,env_name,status,evidence", ROWS, ids=["%s@%s" % (r[0], r[1]) for r in ROWS])
def test_record_fires_or_stays_quiet(reports, record_id, env_name, status, evidence):
    if env_name in NEEDS_GXX and not HAVE_GXX:
        pytest.skip("g++ is needed to build the shared libraries of this environment")
    report = reports(env_name)
    found = {f["id"]: f for f in report["findings"]}
    if status is None:
        assert record_id not in found, "%s fired in %s: %s" % (record_id, env_name, found.get(record_id))
        return
    assert record_id in found, "%s did not fire in %s; findings: %s" % (record_id, env_name, sorted(found))
    finding = found[record_id]
    assert finding["status"] == status, finding
    assert finding["because"] or (status == "possible" and finding["undecided"]), "a finding says why it fired"
    if evidence is not None:
        assert finding["evidence"] == evidence, finding
    if status == "possible":
        undecided = {u["fact"] for u in finding["undecided"]}
        # Only facts no venv can hold leave it undecided: the installed stack itself matched.
        assert undecided and all(not k.startswith(("pkg.", "code.", "python")) for k in undecided), undecided


def test_declared_requirements_finding_names_the_violated_requirement(reports):
    finding = {f["id"]: f for f in reports("x0117")["findings"]}["XTUNER-DECLARED-REQUIREMENTS"]
    assert any("torch 2.4.1+cu124 does not satisfy torch<=2.1.2" in b for b in finding["because"]), finding["because"]
    extras = {f["id"]: f for f in reports("x020")["findings"]}["XTUNER-DECLARED-REQUIREMENTS"]
    text = " ".join(extras["because"])
    assert "transformers 5.0.0 does not satisfy transformers==4.48.0" in text
    assert "deepspeed 0.14.4 does not satisfy deepspeed==0.16.2" in text  # the deepspeed extra


def test_source_install_finding_says_the_code_decided(reports):
    finding = {f["id"]: f for f in reports("src-old-code")["findings"]}["XTUNER-POSITION-IDS-COLLATE"]
    assert finding["evidence"] == "code"
    assert any("defalut_collate_fn.py contains" in b for b in finding["because"])
    assert "xtuner reports 0.1.22.dev0, outside >=0.1.16,<0.1.18, but its installed code is the affected one" in finding["because"]
    assert reports("src-old-code")["facts"]["pkg.xtuner"] == "0.1.22.dev0"


@pytest.mark.skipif(not HAVE_GXX, reason="g++ is needed to build the shared libraries")
def test_flash_attn_finding_names_the_missing_symbol(reports):
    finding = {f["id"]: f for f in reports("fa-abi-bad")["findings"]}["FLASH-ATTN-BUILT-FOR-ANOTHER-TORCH"]
    assert finding["because"][-1] == "%s needs _ZN3c104cuda9SetDeviceEi, which the installed torch does not export" % FLASH_SO
    assert reports("fa-abi-ok")["facts"]["flash_attn.undefined_torch_symbols"] == 0


def test_every_record_fires_somewhere_and_has_a_near_miss():
    """Each record of the knowledge base has a row that fires and one that stays quiet, here or
    in another test module (model and config records are tested with --model / --config)."""
    others = ""
    for name in os.listdir(HERE):
        if name.startswith("test_") and name.endswith(".py") and name != os.path.basename(__file__):
            with open(os.path.join(HERE, name), encoding="utf-8") as handle:
                others += handle.read()
    base = load([KB])
    assert not base.errors, base.errors
    for record in base.records:
        fires = [r for r in ROWS if r[0] == record.id and r[2] is not None]
        quiet = [r for r in ROWS if r[0] == record.id and r[2] is None]
        if not (fires and quiet):
            assert record.id in others, "%s has no firing environment and near miss in any test" % record.id


def test_every_record_cites_a_source_and_shows_what_users_see():
    base = load([KB])
    for record in base.records:
        assert record.references and all(r.url.startswith("https://") for r in record.references), record.id
        for symptom in record.symptoms:
            assert symptom.example, "%s: a symptom needs the text users see as its example" % record.id
            assert re.search(symptom.pattern, symptom.example), record.id
