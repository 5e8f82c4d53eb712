"""The strict kb lint, as a contributor runs it: every mistake of a file, with its line."""

import os
import re
import sys

from builders import GOOD_RECORD, REPO, envdoctor, kb_folder

sys.path.insert(0, REPO)

from envdoctor.kb import vocabulary  # noqa: E402
from envdoctor.kb.regex_risk import backtracking_risk, slow_patterns  # noqa: E402


def _line(text, marker, nth=1):
    """The 1-based line of the nth line of ``text`` holding ``marker``."""
    found = [i for i, t in enumerate(text.splitlines(), 1) if marker in t]
    return found[nth - 1]


def _lines(done):
    return [line for line in done.stdout.splitlines() if ".toml:" in line]


def test_every_mistake_of_a_record_is_reported_with_its_line(tmp_path):
    bad = (GOOD_RECORD.replace('details = "why"\n', 'details = "why"\ncolour = "red"\n')
           .replace('introduced = "0.1.16"', 'introduced = "0.1.0+x"')
           .replace('"model.type" = "internlm2"', '"modle.type" = "internlm2"\n"gpu.capability" = ">=8.0"\n"run.gpus" = "8"\n"torch.cuda" = "12.x"')
           .replace("pattern = 'boom \\d+'", "pattern = '(\\w+\\s?)+$'")
           .replace('title = "an issue"', 'titel = "an issue"'))
    kb = kb_folder(tmp_path / "kb", [("bad.toml", bad)])
    done = envdoctor("kb", "lint", kb)
    assert done.returncode == 1, done.stdout + done.stderr
    text = bad.splitlines()
    # Each mistake is reported at the line that holds it.
    for marker, field in (("colour", "colour"), ("0.1.0+x", "affected[0].introduced"), ("modle.type", "when.modle.type"),
                          ("gpu.capability", "when.gpu.capability"), ("run.gpus", "when.run.gpus"), ("pattern =", "symptoms[0].pattern"),
                          ("titel", "references[0].titel"), ("12.x", "when.torch.cuda")):
        line = next(i for i, t in enumerate(text, 1) if marker in t)
        assert "bad.toml:%d: %s:" % (line, field) in done.stdout, (marker, done.stdout)
    assert len(_lines(done)) == 8, done.stdout
    out = done.stdout
    assert "colour: unknown field" in out
    assert "affected[0].introduced: '0.1.0+x': a local version label" in out
    assert "when.modle.type: 'modle.type' is not a fact envdoctor gathers" in out
    assert "when.gpu.capability: '>=8.0' looks like a version specifier, but gpu.capability is not a version fact" in out
    assert "when.run.gpus: run.gpus holds values of type int; '8' can never equal it" in out
    assert "symptoms[0].pattern: can backtrack catastrophically" in out
    assert "references[0].titel: unknown field(s) titel" in out
    assert "0 records valid, 1 invalid" in out
    assert "Traceback" not in done.stderr


def test_the_same_mistakes_in_a_kb_folder_stop_check_with_exit_2(tmp_path):
    bad = GOOD_RECORD.replace('"model.type"', '"modle.type"')
    kb = kb_folder(tmp_path / "kb", [("bad.toml", bad)])
    done = envdoctor("check", "--kb", kb)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "bad.toml:%d: when.modle.type: 'modle.type' is not a fact envdoctor gathers" % _line(bad, "modle.type") in done.stdout
    assert "Traceback" not in done.stderr


def test_a_malformed_table_is_named_by_lint_and_stops_check(tmp_path):
    table = '[[toolkit]]\ncuda = "12.1"\nminimum = "530.30.02"\n\n[[toolkit]]\ncuda = "12.x"\nminmum = "1"\n'
    kb = kb_folder(tmp_path / "kb", [("good.toml", GOOD_RECORD)], [("cuda-driver.toml", table)])
    done = envdoctor("kb", "lint", kb)
    assert done.returncode == 1
    assert "cuda-driver.toml:6: toolkit[1].cuda: '12.x' is not a version" in done.stdout
    assert "cuda-driver.toml:7: toolkit[1].minmum: unknown field" in done.stdout
    assert "cuda-driver.toml:5: toolkit[1].minimum: missing" in done.stdout
    assert "1 records valid, 0 invalid" in done.stdout and "1 table invalid" in done.stdout
    checked = envdoctor("check", "--kb", kb, "--driver", "535.54.03")
    assert checked.returncode == 2 and "toolkit[1].cuda: '12.x' is not a version" in checked.stdout
    assert "Traceback" not in checked.stderr and "internal error" not in checked.stderr


def test_a_table_that_is_not_toml_is_named_with_its_line(tmp_path):
    kb = kb_folder(tmp_path / "kb", [("good.toml", GOOD_RECORD)], [("torch-python.toml", '[[torch]]\nminor = "2.1"\npython = \n')])
    done = envdoctor("kb", "lint", kb)
    assert done.returncode == 1 and "torch-python.toml:3: not valid TOML" in done.stdout, done.stdout


def test_an_id_shipped_with_envdoctor_is_a_duplicate(tmp_path):
    kb = kb_folder(tmp_path / "kb", [("mine.toml", GOOD_RECORD.replace("TEAM-GOOD", "XTUNER-POSITION-IDS-COLLATE"))])
    done = envdoctor("kb", "lint", kb)
    assert done.returncode == 1
    assert "mine.toml:1: id: XTUNER-POSITION-IDS-COLLATE duplicates a record shipped with envdoctor" in done.stdout


def test_a_pattern_slow_on_a_long_line_is_rejected_and_a_fast_one_passes(tmp_path):
    slow = GOOD_RECORD.replace("pattern = 'boom \\d+'", "pattern = '(.*,){6}x'").replace('example = "RuntimeError: boom 42"', 'example = "a,b,c,d,e,f,x"')
    kb = kb_folder(tmp_path / "kb", [("slow.toml", slow), ("fast.toml", GOOD_RECORD.replace("TEAM-GOOD", "TEAM-FAST"))])
    done = envdoctor("kb", "lint", kb)
    assert done.returncode == 1
    assert "slow.toml:%d: symptoms[0].pattern: takes longer than 1s on a long hostile line" % _line(slow, "pattern =") in done.stdout, done.stdout
    assert "fast.toml" not in done.stdout


def test_backtracking_shapes():
    for risky in (r"(a+)+b", r"(\w+\s?)+$", r"(a|ab)*c", r"(\d+|x)*", r"([a-z]+)*$"):
        assert backtracking_risk(risky), risky
    for fine in (r"(foo|bar)*", r"(?:\w+\s)*x", r"(\d+\.)+\d+", r"^(\s*\w+,)*$", r"xtuner \S+ (has requirement|requires) "):
        assert backtracking_risk(fine) is None, fine
    assert slow_patterns([("boom", "boom"), (r"\s*\s*\s*x$", "   x")], budget=1.0) == [1]


def test_the_shipped_knowledge_and_the_readme_template_pass():
    done = envdoctor("kb", "lint", env={"ENVDOCTOR_CACHE_DIR": "off"})
    assert done.returncode == 0, done.stdout
    assert "0 invalid" in done.stdout


def test_a_broken_readme_template_fails_lint(tmp_path):
    kb = kb_folder(tmp_path / "kb", [("good.toml", GOOD_RECORD)])
    readme = "# mine\n\n```toml\n" + GOOD_RECORD.replace('"model.type" = "internlm2"', '"model.type" = "a"\n"model.type" = "b"') + "```\n"
    with open(os.path.join(kb, "README.md"), "w") as handle:
        handle.write(readme)
    done = envdoctor("kb", "lint", kb)
    line = _line(readme, '"model.type"', 2)
    assert done.returncode == 1 and "README.md:%d: the record template is not valid TOML" % line in done.stdout, done.stdout


def test_the_vocabulary_and_docs_facts_md_name_the_same_facts():
    with open(os.path.join(REPO, "docs", "facts.md"), encoding="utf-8") as handle:
        rows = [line for line in handle if line.startswith("| `")]
    documented = set()
    for row in rows:
        documented.update(re.findall(r"`([^`]+)`", row.split("|")[1]))
    named = set(vocabulary.FACTS) | {pattern for pattern, _ in vocabulary.PATTERNS}
    assert named == documented, (sorted(named - documented), sorted(documented - named))


def test_a_default_for_a_fact_envdoctor_does_not_know_is_named(tmp_path):
    table = '[[default]]\nkey = "train.use_varlen_atn"\nvalue = false\nsays = "x"\nsource = "https://example.org/x"\nwhy = "y"\n'
    kb = kb_folder(tmp_path / "kb", [("good.toml", GOOD_RECORD)], [("fact-defaults.toml", table)])
    done = envdoctor("kb", "lint", kb)
    assert done.returncode == 1
    assert "fact-defaults.toml:2: default[0].key: 'train.use_varlen_atn' is not a fact of docs/facts.md" in done.stdout
    # Near miss: the fact spelled right passes.
    kb2 = kb_folder(tmp_path / "ok" / "kb", [("good.toml", GOOD_RECORD)], [("fact-defaults.toml", table.replace("varlen_atn", "varlen_attn"))])
    assert envdoctor("kb", "lint", kb2).returncode == 0
