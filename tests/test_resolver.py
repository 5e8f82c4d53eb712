"""The resolver: real uv runs, offline against wheel folders made here."""

import os

import pytest

from envdoctor.fix.locktypes import Index

from builders import make_wheel
from envdoctor.fix import resolve as resolver


@pytest.fixture(scope="module")
def links(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("links"))
    # An upper bound uv itself ignores (it reads only the lower bound of Requires-Python).
    make_wheel(folder, "trainer", "0.1.18", ["model-lib>=4.36"], ">=3.8, <3.11")
    make_wheel(folder, "trainer", "0.2.0", ["model-lib==4.48.0"], ">=3.8, <3.13")
    make_wheel(folder, "model-lib", "4.40.0", [], ">=3.8")
    make_wheel(folder, "model-lib", "4.48.0", [], ">=3.9")
    return folder


def _resolve(lines, python, links, tmp_path, constraints=()):
    return resolver.resolve(lines, list(constraints), resolver.Target(python), Index(find_links=(links,), no_index=True),
                            120, str(tmp_path))


def test_a_set_that_installs_gives_its_pins(links, tmp_path):
    done = _resolve(["trainer==0.1.18"], "3.10", links, tmp_path)
    assert done.ok, done.reason
    assert dict(done.pins) == {"trainer": "0.1.18", "model-lib": "4.48.0"}


def test_a_requires_python_upper_bound_is_held_although_uv_ignores_it(links, tmp_path):
    done = _resolve(["trainer==0.1.18"], "3.12", links, tmp_path)
    assert not done.ok
    assert done.reason == "trainer 0.1.18 needs Python >=3.8,<3.11 (the target is 3.12)"


def test_a_lower_bound_failure_is_uvs_own_verdict_in_one_line(links, tmp_path):
    done = _resolve(["trainer==0.2.0"], "3.8", links, tmp_path)
    assert not done.ok
    assert done.reason == "model-lib 4.48.0 needs Python >=3.9"


def test_constraints_take_part(links, tmp_path):
    done = _resolve(["trainer==0.1.18"], "3.10", links, tmp_path, constraints=["model-lib<4.48"])
    assert done.ok and dict(done.pins)["model-lib"] == "4.40.0"


def test_a_missing_release_is_named(links, tmp_path):
    done = _resolve(["trainer==0.1.99"], "3.10", links, tmp_path)
    assert not done.ok and "trainer" in done.reason and "0.1.99" in done.reason


def test_uv_is_found_beside_this_interpreter_or_named(tmp_path, monkeypatch):
    found = resolver.find_uv()
    assert os.access(found, os.X_OK)
    with pytest.raises(resolver.ResolverError, match="uv not found there"):
        resolver.find_uv(str(tmp_path / "no-uv"))


@pytest.mark.parametrize("output, words", [
    ("error: No solution found\n  cause: Because torch==2.1.2 has no wheels with a matching Python ABI tag (e.g., `cp312`) and you "
     "require torch==2.1.2, we can conclude that your requirements are unsatisfiable.", "torch 2.1.2 has no cp312 wheels"),
    ("  cause: Because the requested Python version (>=3.8) does not satisfy Python>=3.9.0 and transformers==4.48.0 depends on "
     "Python>=3.9.0, we can conclude", "transformers 4.48.0 needs Python >=3.9.0"),
    ("something else entirely\n", "something else entirely"),
])
def test_failures_in_one_line(output, words):
    assert resolver.explain_failure(output) == words


def test_requires_python_from_the_index_is_asked_once_per_release(tmp_path, monkeypatch):
    # A real (local) HTTP index: the first lookup reads the release's simple page; a second run
    # answers from the cache without asking; another release of the package is asked again.
    import http.server
    import threading

    page = tmp_path / "simple" / "trainer"
    page.mkdir(parents=True)
    (page / "index.html").write_text(
        '<a href="trainer-0.1.18-py3-none-any.whl" data-requires-python="&gt;=3.8, &lt;3.11">trainer-0.1.18</a>\n'
        '<a href="trainer-0.2.0-py3-none-any.whl" data-requires-python="&gt;=3.8, &lt;3.13">trainer-0.2.0</a>\n')
    asked = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, *args):
            asked.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("ENVDOCTOR_CACHE_DIR", str(tmp_path / "cache"))
    try:
        url = ["http://127.0.0.1:%d/simple/" % server.server_address[1]]
        assert resolver.index_requires_python(url, {"trainer": "0.1.18"}, 10) == {"trainer": ">=3.8, <3.11"}
        assert asked == ["/simple/trainer/"]
        assert resolver.index_requires_python(url, {"trainer": "0.1.18"}, 10) == {"trainer": ">=3.8, <3.11"}
        assert asked == ["/simple/trainer/"]
        assert resolver.index_requires_python(url, {"trainer": "0.2.0"}, 10) == {"trainer": ">=3.8, <3.13"}
        assert len(asked) == 2
    finally:
        server.shutdown()
        server.server_close()


def _counting_uv(tmp_path):
    """The real uv behind a script that logs each run's arguments, to count them."""
    log = tmp_path / "uv-runs.log"
    script = tmp_path / "uv"
    script.write_text('#!/bin/sh\necho "$*" >> "%s"\nexec "%s" "$@"\n' % (log, resolver.find_uv()))
    script.chmod(0o755)
    return str(script), lambda: log.read_text().splitlines() if log.exists() else []


def test_a_run_resolves_each_set_once_and_answers_from_the_cache_what_it_has_fetched(links, tmp_path):
    uv, runs = _counting_uv(tmp_path)
    memo = resolver.Memo()
    sources = Index(find_links=(links,), no_index=True)

    def ask(lines, python="3.10", cached=True):
        return resolver.resolve(lines, [], resolver.Target(python), sources, 120, str(tmp_path), uv, annotate=True, memo=memo,
                                cached=cached)

    first = ask(["model-lib==4.40.0"])
    assert first.ok and len(runs()) == 1 and "--offline" not in runs()[0]  # nothing fetched yet: the index is asked
    assert ask(["model-lib==4.40.0"], cached=False) == first and len(runs()) == 1  # the lockfile's resolve of the same set
    # trainer's page was not fetched in this run: the cache's answer is not taken, the index is asked.
    plan = ask(["trainer==0.1.18"])
    assert plan.ok and dict(plan.pins) == {"trainer": "0.1.18", "model-lib": "4.48.0"}
    assert "--offline" not in runs()[-1]
    # Both pages fetched now: another set of the same packages is answered from uv's cache alone,
    # as the index would answer it, a failure included.
    count = len(runs())
    other = ask(["trainer==0.1.18", "model-lib==4.40.0"])
    assert other.ok and dict(other.pins) == {"trainer": "0.1.18", "model-lib": "4.40.0"}
    failed = ask(["trainer==0.2.0"], python="3.8")
    assert not failed.ok and failed.reason == "model-lib 4.48.0 needs Python >=3.9"
    assert len(runs()) == count + 2 and all("--offline" in r for r in runs()[count:])
    # The lockfile's own resolve never takes an answer from the cache alone.
    assert ask(["trainer==0.1.18", "model-lib==4.40.0"], cached=False) == other and "--offline" not in runs()[-1]
