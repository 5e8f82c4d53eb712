"""The parsed-TOML cache: an optimisation that must never change an answer."""

import json
import os

from builders import envdoctor
from envdoctor.tomlcache import TOMLError, TomlCache

RECORD = '''id = "TEAM-ONE"
summary = "%s"
severity = "warning"
details = "d"
[when]
"model.type" = "internlm2"
[remedy]
summary = "x"
[[references]]
url = "https://example.org/x"
'''


def test_edited_file_is_parsed_again(tmp_path):
    cache_path = str(tmp_path / "cache" / "toml.json")
    record = tmp_path / "r.toml"
    record.write_text(RECORD % "first")
    cache = TomlCache(cache_path)
    assert cache.load(str(record))["summary"] == "first"
    cache.save()
    assert os.path.exists(cache_path)
    record.write_text(RECORD % "second")
    again = TomlCache(cache_path)
    assert again.load(str(record))["summary"] == "second"


def test_invalid_toml_is_an_error_not_a_cache_entry(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("id = [\n")
    cache = TomlCache(str(tmp_path / "c.json"))
    try:
        cache.load(str(bad))
        raise AssertionError("no error")
    except TOMLError as exc:
        assert "not valid TOML" in str(exc)
    assert not cache.dirty


def test_corrupt_or_unwritable_cache_changes_nothing(tmp_path):
    team = tmp_path / "kb"
    team.mkdir()
    (team / "one.toml").write_text(RECORD % "from the team")
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    from envdoctor import __version__
    import sys

    (corrupt / ("toml-%s-py%d%d.json" % (__version__, sys.version_info[0], sys.version_info[1]))).write_text("{not json")
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("")
    outputs = []
    for cache_dir in (str(corrupt), str(blocked / "sub"), "off"):
        done = envdoctor("kb", "list", "--kb", str(team), "--format", "json", env={"ENVDOCTOR_CACHE_DIR": cache_dir})
        assert done.returncode == 0, done.stderr
        outputs.append(json.loads(done.stdout))
    assert outputs[0] == outputs[1] == outputs[2]
    assert any(r["id"] == "TEAM-ONE" for r in outputs[0]["records"])
