"""fix --write-lock: real pip-compile, offline against a local wheel folder; the lockfile
installs into a fresh venv that envdoctor then finds clean."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from builders import check_json, envdoctor, finding_ids, make_venv, make_wheel, pyenv_python

INTERNLM2 = ("--fact", "model.type=internlm2", "--fact", "train.use_varlen_attn=false")
# The machine's pip configuration (extra indexes, find-links, constraints) must not leak in.
OFFLINE = {"PIP_CONFIG_FILE": os.devnull}
MAGIC = "# envdoctor lockfile"

# pip-tools comes with the test extra: on PATH, or beside this interpreter when its venv is
# not activated (then envdoctor is given that folder on PATH as well).
_BESIDE = os.path.join(os.path.dirname(sys.executable), "pip-compile")
PIP_COMPILE = shutil.which("pip-compile") or (_BESIDE if os.access(_BESIDE, os.X_OK) else None)
pytestmark = pytest.mark.skipif(PIP_COMPILE is None, reason="pip-tools is not installed (neither on PATH nor beside %s)" % sys.executable)


def fix(*args, env=None, cwd=None):
    full = dict(OFFLINE)
    if PIP_COMPILE:
        full["PATH"] = os.path.dirname(PIP_COMPILE) + os.pathsep + os.environ.get("PATH", "")
    full.update(env or {})
    return envdoctor("fix", *args, env=full, timeout=900, cwd=cwd)


def _pins_of(path):
    return sorted(l.strip() for l in open(path) if "==" in l and not l.lstrip().startswith("#"))


def _install(venv_root, wheelhouse, lock):
    venv = make_venv(venv_root)
    subprocess.run([sys.executable, "-m", "pip", "--python", venv.python, "install", "-q", "--no-index",
                    "--find-links", wheelhouse, "-r", lock], check=True, env=dict(os.environ, **OFFLINE),
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return venv


def test_lock_round_trip_installs_into_a_clean_environment(pins, wheelhouse, tmp_path):
    lock = str(tmp_path / "requirements.lock")
    path = pins("xtuner==0.1.17", "transformers==4.40.0")
    # The real uv behind a script that counts its runs.
    from envdoctor.fix.resolve import find_uv

    uv, runs = tmp_path / "uv", tmp_path / "uv-runs.log"
    uv.write_text('#!/bin/sh\necho run >> "%s"\nexec "%s" "$@"\n' % (runs, find_uv()))
    uv.chmod(0o755)
    done = fix("-r", path, "--write-lock", lock, "--no-index", "--find-links", wheelhouse, "--uv", str(uv), *INTERNLM2)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "resolves with uv" in done.stdout
    # The plan was put to uv before it was shown; the lockfile takes that answer, not a second run.
    assert len(runs.read_text().splitlines()) == 1
    assert done.stderr == ""  # no progress when stderr is not a terminal
    text = open(lock).read()
    assert text.startswith(MAGIC + "\n")
    assert "# level resolved: uv pip compile for Python %d.%d" % sys.version_info[:2] in text
    assert "level consistent" not in text and "level imports" not in text  # --verify was not asked
    assert "static check of these pins: no error" in text
    assert _pins_of(lock) == ["transformers==4.48.0", "xtuner==0.2.0"]
    venv = _install(str(tmp_path / "venv"), wheelhouse, lock)
    report = check_json("--python", venv.python, *INTERNLM2)
    assert report["facts"]["pkg.xtuner"] == "0.2.0"
    assert not [f for f in report["findings"] if f["severity"] == "error" and f["status"] == "confirmed"]
    # The same environment before the plan had errors: the check can fail.
    assert finding_ids(check_json("-r", path, *INTERNLM2)) >= {"XTUNER-POSITION-IDS-COLLATE"}


@pytest.fixture(scope="session")
def pip_compile_310(tmp_path_factory, index_available):
    """pip-tools in a Python 3.10 venv (pip-compile resolves for the Python it runs on)."""
    python = pyenv_python("3.10")
    if python is None:
        pytest.skip("no Python 3.10 interpreter under pyenv on this machine")
    if not index_available:
        pytest.skip("pip-tools for Python 3.10 comes from the package index, which is not reachable")
    venv = make_venv(str(tmp_path_factory.mktemp("piptools310") / "venv"), python=python, with_pip=True)
    subprocess.run([venv.python, "-m", "pip", "install", "-q", "pip-tools>=7"], check=True,
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return python, os.path.join(venv.root, "bin", "pip-compile")


@pytest.mark.parametrize("resolver", ["uv", "pip-tools"])
def test_python_310_lock_for_the_position_ids_case(pins, wheelhouse, tmp_path, pip_compile_310, resolver):
    """An envdoctor on this Python locks for a 3.10 target: uv resolves for 3.10 directly; with
    pip-tools, pip-compile runs on a 3.10 interpreter."""
    python, program = pip_compile_310
    lock = str(tmp_path / "py310.lock")
    path = pins("xtuner==0.1.17", "transformers==4.36.2", "torch==2.1.2+cu121")
    how = ("--resolver", "uv") if resolver == "uv" else ("--resolver", "pip-tools", "--pip-compile", program)
    done = fix("-r", path, "--python-version", "3.10", *how, "--write-lock", lock,
               "--no-index", "--find-links", wheelhouse, "--format", "json", "--fact", "run.gpus=1", *INTERNLM2)
    assert done.returncode == 0, done.stdout + done.stderr
    plan = json.loads(done.stdout)
    assert plan["lock"]["level"] == "resolved" and plan["lock"]["cuda"] == "CUDA 12.1 (torch 2.1.2+cu121)"
    assert "torch==2.1.2+cu121" in _pins_of(lock) and "xtuner==0.1.18" in _pins_of(lock)
    venv = make_venv(str(tmp_path / "venv"), python=python)
    subprocess.run([sys.executable, "-m", "pip", "--python", venv.python, "install", "-q", "--no-index", "--find-links", wheelhouse,
                    "-r", lock], check=True, env=dict(os.environ, **OFFLINE), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    report = check_json("--python", venv.python, *INTERNLM2)
    assert not [f for f in report["findings"] if f["severity"] == "error" and f["status"] == "confirmed"]


def test_pip_compile_on_the_wrong_python_is_explained(pins, wheelhouse, tmp_path):
    lock = tmp_path / "x.lock"
    path = pins("xtuner==0.1.18", "transformers==4.40.0")
    done = fix("-r", path, "--python-version", "3.10", "--write-lock", str(lock), "--no-index", "--find-links", wheelhouse,
               "--resolver", "pip-tools", "--pip-compile", PIP_COMPILE)
    if sys.version_info[:2] == (3, 10):
        pytest.skip("this interpreter is the target")
    assert done.returncode == 2
    assert "xtuner needs Python <3.11,>=3.8, but pip-compile runs on Python" in done.stderr
    assert "Traceback" not in done.stderr and not lock.exists()


def test_a_find_links_folder_relative_to_the_working_folder(pins, wheelhouse, tmp_path):
    # uv runs in a scratch folder: the folder the user named relative to where they are must be found.
    lock = tmp_path / "relative.lock"
    done = fix("-r", pins("transformers==4.40.0"), "--write-lock", str(lock), "--no-index", "--find-links",
               os.path.basename(wheelhouse), cwd=os.path.dirname(wheelhouse))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "transformers==4.40.0" in _pins_of(lock)


def test_an_existing_foreign_file_is_kept_without_force(pins, wheelhouse, tmp_path):
    lock = tmp_path / "requirements.txt"
    lock.write_text("my own notes\n")
    path = pins("transformers==4.40.0")
    done = fix("-r", path, "--write-lock", str(lock), "--no-index", "--find-links", wheelhouse)
    assert done.returncode == 2 and "not an envdoctor lockfile; pass --force" in done.stderr
    assert lock.read_text() == "my own notes\n"
    assert fix("-r", path, "--write-lock", str(lock), "--no-index", "--find-links", wheelhouse, "--force").returncode == 0
    assert lock.read_text().startswith(MAGIC)
    # An envdoctor lockfile is replaced without --force.
    again = fix("-r", pins("transformers==4.42.4"), "--write-lock", str(lock), "--no-index", "--find-links", wheelhouse)
    assert again.returncode == 0 and "transformers==4.42.4" in lock.read_text()
    assert [p for p in os.listdir(str(tmp_path)) if p.startswith(".envdoctor-")] == []


def test_failures_leave_the_existing_lockfile_untouched(pins, wheelhouse, tmp_path):
    lock = tmp_path / "requirements.lock"
    assert fix("-r", pins("transformers==4.40.0"), "--write-lock", str(lock), "--no-index", "--find-links", wheelhouse).returncode == 0
    before = lock.read_text()
    # A conflict no version can satisfy, between packages the knowledge base does not know (a
    # conflict it knows, e.g. a range XTuner declares, the plan resolves before pip-compile runs).
    make_wheel(wheelhouse, "acme-trainer", "1.0", ["acme-core<2"], ">=3.8")
    make_wheel(wheelhouse, "acme-core", "2.0", [], ">=3.8")
    conflicting = pins("acme-trainer==1.0", "acme-core==2.0")
    conflict = fix("-r", conflicting, "--write-lock", str(lock), "--no-index", "--find-links", wheelhouse, "--resolver", "pip-tools")
    assert conflict.returncode == 2
    line = conflict.stderr.strip()
    assert line.count("\n") == 0 and "Traceback" not in line
    assert line.startswith("envdoctor: pip-compile could not resolve the plan:")
    assert "the requirements conflict" in line and "acme-core==2.0 (requested) vs acme-core<2 (from acme_trainer 1.0)" in line
    # uv (the default) says it in one line too.
    by_uv = fix("-r", conflicting, "--write-lock", str(lock), "--no-index", "--find-links", wheelhouse).stderr.strip()
    assert by_uv.count("\n") == 0 and by_uv.startswith("envdoctor: uv could not resolve the plan for Python")
    assert "acme-core" in by_uv and "Traceback" not in by_uv
    # No version at all.
    missing = fix("-r", pins("transformers==4.40.0", "no-such-package==1.0"), "--write-lock", str(lock), "--no-index", "--find-links", wheelhouse)
    assert missing.returncode == 2 and "no-such-package" in missing.stderr and "Traceback" not in missing.stderr
    assert lock.read_text() == before
    assert [p for p in os.listdir(str(tmp_path)) if p.startswith(".envdoctor-")] == []


def test_static_check_refuses_a_resolved_set_that_trips_a_record(pins, wheelhouse, tmp_path):
    kb = tmp_path / "kb" / "records"
    kb.mkdir(parents=True)
    (kb / "t.toml").write_text(
        'id = "TEST-OLD-TRANSFORMERS"\nsummary = "test: transformers before 4.43 fails with this model"\nseverity = "error"\n'
        'details = "test record"\n[[affected]]\npackage = "transformers"\nfixed = "4.43.0"\n[when]\n"model.type" = "internlm2"\n'
        '[remedy]\nsummary = "upgrade"\n[[references]]\nurl = "https://example.org/test"\n')
    lock = tmp_path / "out.lock"
    done = fix("-r", pins("transformers<4.42"), "--kb", str(tmp_path / "kb"), "--write-lock", str(lock),
               "--no-index", "--find-links", wheelhouse, *INTERNLM2)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "trips TEST-OLD-TRANSFORMERS; nothing written" in done.stderr
    assert not lock.exists()


@pytest.mark.parametrize("where,needle", [
    ("{tmp}", "is a folder"),
    ("{tmp}/afile/lock.txt", "is not a folder"),
    ("{tmp}/no/such/dir/lock.txt", "does not exist"),
    ("/proc/envdoctor-lock.txt", "cannot write"),
])
def test_unusable_lock_paths(pins, wheelhouse, tmp_path, where, needle):
    (tmp_path / "afile").write_text("x")
    path = where.format(tmp=str(tmp_path))
    done = fix("-r", pins("transformers==4.40.0"), "--write-lock", path, "--no-index", "--find-links", wheelhouse)
    assert done.returncode == 2 and needle in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_a_missing_resolver_is_one_line(pins, tmp_path):
    lock = tmp_path / "l.txt"
    path = pins("transformers==4.40.0")
    no_uv = fix("-r", path, "--write-lock", str(lock), "--uv", str(tmp_path / "no-uv"))
    assert no_uv.returncode == 2 and no_uv.stderr.strip() == "envdoctor: %s: uv not found there" % (tmp_path / "no-uv")
    # pip-tools needs an interpreter of the target Python; there is no 3.14 here.
    no_python = fix("-r", path, "--python-version", "3.14", "--write-lock", str(lock), "--resolver", "pip-tools")
    assert no_python.returncode == 2 and "--resolver pip-tools needs a Python 3.14 interpreter" in no_python.stderr
    assert "Traceback" not in no_uv.stderr + no_python.stderr and not lock.exists()


def test_pip_compile_that_fails_is_one_line(pins, tmp_path):
    fake = tmp_path / "pip-compile"
    fake.write_text("#!/bin/sh\necho 'Traceback (most recent call last):' >&2\necho '  File x' >&2\necho 'RuntimeError: index exploded' >&2\nexit 1\n")
    fake.chmod(0o755)
    done = fix("-r", pins("transformers==4.40.0"), "--write-lock", str(tmp_path / "l.txt"), "--pip-compile", str(fake))
    assert done.returncode == 2
    assert done.stderr.strip() == "envdoctor: pip-compile could not resolve the plan: RuntimeError: index exploded"


# --verify: a tiny stack whose modules import, and one whose modules do not.

@pytest.fixture(scope="session")
def import_wheelhouse(tmp_path_factory):
    """Two folders holding XTuner 0.2.0 and transformers: one stack imports, one does not."""
    folders = {}
    for kind in ("good", "bad"):
        folders[kind] = str(tmp_path_factory.mktemp("import-wheels-" + kind))
        make_wheel(folders[kind], "transformers", "4.48.0", [], ">=3.9.0", files={"transformers/__init__.py": "__version__ = '4.48.0'\n"})
    good = {
        "xtuner/__init__.py": "",
        "xtuner/model/__init__.py": "",
        "xtuner/model/sft.py": "import transformers\n",
        "xtuner/dataset/__init__.py": "",
        "xtuner/engine/__init__.py": "",
    }
    make_wheel(folders["good"], "xtuner", "0.2.0", ["transformers==4.48.0"], ">=3.8, <3.13", files=good)
    # As in XTuner 0.1.20-0.1.23: a module imports deepspeed, which the release does not declare.
    bad = dict(good)
    bad["xtuner/engine/__init__.py"] = "import deepspeed\n"
    make_wheel(folders["bad"], "xtuner", "0.2.0", ["transformers==4.48.0"], ">=3.8, <3.13", files=bad)
    return folders


def test_verify_reaches_imports(pins, import_wheelhouse, tmp_path):
    lock = tmp_path / "ok.lock"
    args = ("-r", pins("xtuner==0.2.0"), "--write-lock", str(lock), "--verify", "--no-index", "--find-links", import_wheelhouse["good"],
            "--format", "json")
    done = fix(*args, "--verify-level", "imports")
    assert done.returncode == 0, done.stdout + done.stderr
    info = json.loads(done.stdout)["lock"]
    assert [lv["name"] for lv in info["levels"]] == ["resolved", "consistent", "imports"]
    text = lock.read_text()
    assert "# level imports: xtuner.model.sft, xtuner.dataset, xtuner.engine, transformers imported without a GPU" in text
    assert "Python %d.%d.%d" % sys.version_info[:3] in text
    # "imports" is not "works": asked for the smoke level (the default), this stack has no torch to
    # run a step with, so the lockfile stays at imports, says why, and the exit code is 1.
    short = fix(*args)
    assert short.returncode == 1, short.stdout + short.stderr
    assert json.loads(short.stdout)["lock"]["level"] == "imports"
    assert "# not reached: smoke: numpy round trip: ModuleNotFoundError: No module named " in lock.read_text()


def test_verify_stays_at_consistent_when_an_import_fails(pins, import_wheelhouse, tmp_path):
    lock = tmp_path / "bad.lock"
    done = fix("-r", pins("xtuner==0.2.0"), "--write-lock", str(lock), "--verify", "--no-index", "--find-links", import_wheelhouse["bad"])
    assert done.returncode == 1, done.stdout + done.stderr
    text = lock.read_text()
    assert "# level consistent:" in text and "# level imports" not in text
    assert "# not reached: imports: xtuner.engine (ModuleNotFoundError: No module named 'deepspeed')" in text


def test_only_the_users_own_index_options_reach_the_lockfile(pins, wheelhouse, tmp_path):
    lock = tmp_path / "idx.lock"
    config = tmp_path / "pip.conf"
    config.write_text("[global]\nextra-index-url = file:///machine/local/mirror/simple\n")
    done = fix("-r", pins("transformers==4.40.0"), "--write-lock", str(lock), "--no-index", "--find-links", wheelhouse,
               "--extra-index-url", "https://download.pytorch.org/whl/cu121", env={"PIP_CONFIG_FILE": str(config)})
    assert done.returncode == 0, done.stderr
    text = lock.read_text()
    assert "--extra-index-url https://download.pytorch.org/whl/cu121" in text
    assert "/machine/local/mirror" not in text and wheelhouse not in text.split("# command:")[1].split("\n", 1)[1]


def test_the_pip_compile_beside_the_target_interpreter_is_preferred(venvs, tmp_path):
    # It resolves for the target's Python, which the one on PATH may not.
    venv = venvs("transformers==4.40.0")
    beside = os.path.join(os.path.dirname(venv.python), "pip-compile")
    with open(beside, "w") as handle:
        handle.write("#!/bin/sh\necho 'ERROR: the venv pip-compile ran' >&2\nexit 1\n")
    os.chmod(beside, 0o755)
    try:
        done = fix("--python", venv.python, "--write-lock", str(tmp_path / "v.lock"), "--resolver", "pip-tools")
    finally:
        os.unlink(beside)
    assert done.returncode == 2 and "the venv pip-compile ran" in done.stderr


def _pip_find_links():
    """The local folders pip is configured to find release files in (its config files and PIP_FIND_LINKS):
    where this machine keeps the CPU torch wheel, named by the machine, not by us."""
    import re

    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    values = re.findall(r"find-links='([^']*)'", listed) + [os.environ.get("PIP_FIND_LINKS", "")]
    return sorted({f for value in values for f in value.split() if os.path.isdir(f)})


def test_verify_reaches_the_smoke_level_with_the_real_cpu_stack(tmp_path, index_available):
    """torch (the CPU wheel on this machine's disk), transformers, peft and numpy from the index:
    the lockfile installs, imports and runs a forward and backward step of a tiny model."""
    import glob

    wheels = [w for f in _pip_find_links() for w in glob.glob(os.path.join(f, "torch-2.13.0*cp311*.whl"))]
    if sys.version_info[:2] != (3, 11) or not wheels:
        pytest.skip("the local torch 2.13.0 CPU wheel is for Python 3.11 (in a find-links folder of pip's "
                    "configuration); any other torch downloads gigabytes")
    if not index_available:
        pytest.skip("transformers, peft and torch's own requirements come from the package index, which is not reachable")
    pins = tmp_path / "stack.txt"
    pins.write_text("torch==2.13.0+cpu\ntransformers\npeft\nnumpy\n")
    lock = tmp_path / "cpu.lock"
    done = fix("-r", str(pins), "--write-lock", str(lock), "--verify", "--find-links", os.path.dirname(wheels[0]), "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["lock"]["level"] == "smoke"
    text = lock.read_text()
    assert ("# level smoke: numpy round trip, tiny model, LoRA adapter (peft), batch, forward and backward "
            "(not locked: xtuner) on the CPU") in text
