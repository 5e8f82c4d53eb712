"""scripts/reproduce.py on a small case built here: two releases of a made-up library, one with
the bug; no download (a local wheel folder, --no-index)."""

import os
import subprocess
import sys

from builders import REPO, envdoctor, make_wheel

SCRIPT = os.path.join(REPO, "scripts", "reproduce.py")

RECORD = '''id = "TEAM-DEMO-IMPORT"
summary = "demo-lib 1.0 lacks thing"
severity = "error"
evidence_level = "reproduced"
details = "demo-lib 1.0 does not define thing; 2.0 does."

[[affected]]
package = "demo-lib"
fixed = "2.0"

[[symptoms]]
pattern = "cannot import name 'thing'"
example = "ImportError: cannot import name 'thing' from 'demo_lib'"

[remedy]
summary = "Upgrade demo-lib"
requires = ["demo-lib>=2.0"]

[[references]]
url = "https://example.org/demo"

[reproduction]
script = "demo.py"
python = "%(python)s"
symptom = "%(symptom)s"
affected = ["demo-lib==1.0"]
fixed = ["demo-lib==2.0"]
'''

DEMO = "from demo_lib import thing\nprint('imported', thing)\n"


def _setup(tmp_path, symptom="cannot import name 'thing'"):
    wheels = str(tmp_path / "wheels")
    make_wheel(wheels, "demo-lib", "1.0", files={"demo_lib/__init__.py": "other = 1\n"})
    make_wheel(wheels, "demo-lib", "2.0", files={"demo_lib/__init__.py": "thing = 2\n"})
    kb = tmp_path / "kb"
    (kb / "records").mkdir(parents=True)
    (kb / "reproductions").mkdir()
    python = "%d.%d" % sys.version_info[:2]
    (kb / "records" / "demo.toml").write_text(RECORD % {"python": python, "symptom": symptom})
    (kb / "reproductions" / "demo.py").write_text(DEMO)
    return str(kb), wheels


def _reproduce(kb, wheels, cache, *ids):
    return subprocess.run([sys.executable, SCRIPT, *(ids or ("TEAM-DEMO-IMPORT",)), "--kb", kb, "--cache", cache,
                           "--python", sys.executable, "--no-index", "--find-links", wheels],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=300)


def test_a_confirmed_reproduction_is_recorded_and_satisfies_lint(tmp_path):
    kb, wheels = _setup(tmp_path)
    before = envdoctor("kb", "lint", kb)  # "reproduced" with no outcome yet
    assert before.returncode == 1 and "has no confirming outcome" in before.stdout, before.stdout
    cache = str(tmp_path / "cache")
    done = _reproduce(kb, wheels, cache)
    assert done.returncode == 0, done.stdout
    assert "TEAM-DEMO-IMPORT: confirmed (affected: symptom seen; fixed: symptom not seen)" in done.stdout
    with open(os.path.join(kb, "reproductions", "outcomes.toml")) as handle:
        text = handle.read()
    assert 'verdict = "confirmed"' in text and 'affected_installed = ["demo-lib 1.0"]' in text
    assert 'fixed_installed = ["demo-lib 2.0"]' in text and "affected_symptom = true" in text
    assert envdoctor("kb", "lint", kb).returncode == 0
    # An edited script is a new reproduction: the old outcome no longer counts.
    with open(os.path.join(kb, "reproductions", "demo.py"), "a") as handle:
        handle.write("print('more')\n")
    assert "has no confirming outcome" in envdoctor("kb", "lint", kb).stdout
    # The venvs are cached: a second run installs nothing (the index is gone, and it still works).
    os.rename(wheels, wheels + "-gone")
    again = _reproduce(kb, wheels + "-gone", cache)
    assert again.returncode == 0 and "confirmed" in again.stdout, again.stdout


def test_a_reproduction_that_does_not_show_the_symptom_contradicts_the_record(tmp_path):
    kb, wheels = _setup(tmp_path, symptom="No module named 'demo_lib'")
    done = _reproduce(kb, wheels, str(tmp_path / "cache"))
    assert done.returncode == 1
    assert "TEAM-DEMO-IMPORT: contradicted (affected: symptom not seen; fixed: symptom not seen)" in done.stdout
    with open(os.path.join(kb, "reproductions", "outcomes.toml")) as handle:
        assert 'verdict = "contradicted"' in handle.read()
    assert "has no confirming outcome" in envdoctor("kb", "lint", kb).stdout


def test_an_unknown_record_is_a_usage_error(tmp_path):
    kb, wheels = _setup(tmp_path)
    done = _reproduce(kb, wheels, str(tmp_path / "cache"), "NOT-A-RECORD")
    assert done.returncode == 2 and "no reproduction for NOT-A-RECORD" in done.stdout


def _reproduce_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("reproduce_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_output_kept_in_an_outcome_names_no_path_of_this_machine():
    clean = _reproduce_module().clean
    home = os.path.expanduser("~")
    text = ('  File "%s/knowledge/reproductions/demo.py", line 3\n'
            "ImportError: cannot import name 'x' (%s/.cache/envdoctor-build/repro/demo-lib-1.0-py3.11.7-0a1b2c3d/lib/x.py)\n"
            "Copy to /tmp/tmpabc123/config.py" % (REPO, home))
    cleaned = clean(text)
    assert '"<repo>/knowledge/reproductions/demo.py"' in cleaned
    assert "(<venv>/lib/x.py)" in cleaned and "Copy to <tmp>/config.py" in cleaned
    assert REPO not in cleaned and home not in cleaned


def test_the_shipped_outcomes_name_no_path_of_the_machine_that_ran_them():
    with open(os.path.join(REPO, "knowledge", "reproductions", "outcomes.toml"), encoding="utf-8") as handle:
        text = handle.read()
    for prefix in ("/work/", "/tmp/", "/root/", "/home/", os.path.expanduser("~") + "/"):
        assert prefix not in text, prefix
