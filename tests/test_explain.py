"""envdoctor explain: real logs written to disk, run as a subprocess, against real venvs."""

import gzip
import json
import os
import random
import subprocess
import sys

import pytest

from builders import REPO, envdoctor

sys.path.insert(0, REPO)

from envdoctor.kb.load import load, shipped_dir  # noqa: E402
from envdoctor.logscan import MAX_LINE  # noqa: E402

SHIPPED = load([shipped_dir()]).records
# Weak symptoms (everyday lines) never name a record without an environment: tested apart.
WITH_SYMPTOMS = [r for r in SHIPPED if any(not s.weak for s in r.symptoms)]
WITH_WEAK = [r for r in SHIPPED if any(s.weak for s in r.symptoms)]
ASSERTION = "    assert position_ids is not None and (position_ids.max() + 1) >= kv_seq_len"
POSITION_IDS = {"XTUNER-POSITION-IDS-COLLATE", "XTUNER-POSITION-IDS-SP-PADDING", "XTUNER-POSITION-IDS-ASSERT-REMAINS"}


def noise(count: int, seed: int = 0) -> list:
    """Lines a fine-tuning run prints: mmengine progress, tqdm bars, HF loss dicts, warnings,
    tracebacks of other errors, and near-misses that mention the symptoms' words."""
    rng = random.Random(seed)
    out = []
    for step in range(count):
        kind = step % 9
        if kind in (0, 1, 2):
            out.append("2024/05/06 12:00:%02d - mmengine - INFO - Iter(train) [%4d/6000]  lr: 2.0000e-05  eta: 3:01:%02d  "
                       "time: %.4f  data_time: 0.0123  memory: 18321  loss: %.4f" % (step % 60, step, step % 60, rng.random(), rng.random() * 2))
        elif kind == 3:
            out.append("\r".join(" %3d%%|%-10s| %d/100 [00:%02d<00:30, 3.1it/s]" % (p, "#" * (p // 10), p, p % 60) for p in range(0, 100, 25)))
        elif kind == 4:
            out.append("{'loss': %.4f, 'grad_norm': 1.25, 'learning_rate': 1.9e-05, 'epoch': %.2f}" % (rng.random(), step / 100.0))
        elif kind == 5:
            out.append("/usr/lib/python3.10/site-packages/torch/utils/checkpoint.py:429: UserWarning: torch.utils.checkpoint: "
                       "please pass in use_reentrant=True or use_reentrant=False explicitly.")
        elif kind == 6:
            out += ["Traceback (most recent call last):",
                    '  File "/usr/lib/python3.10/site-packages/datasets/arrow_dataset.py", line 2795, in __getitem__',
                    "    return self._getitem(key)",
                    "KeyError: 'conversation'"]
        elif kind == 7:
            out.append("\x1b[33mWARNING\x1b[0m: `use_cache=True` is incompatible with gradient checkpointing. Setting `use_cache=False`.")
        else:
            out.append(rng.choice([
                "position_ids will be built with arange; kv_seq_len = 4096",
                "NVIDIA driver version 535.104.05 found, CUDA 12.2",
                "Requirement already satisfied: xtuner==0.1.20 in /usr/lib/python3.10/site-packages",
                "assert position_ids is not None",
                "[INFO] PTX JIT cache at /root/.nv/ComputeCache",
            ]))
    return out


def write(path, lines, newline="\n", encoding="utf-8") -> str:
    with open(str(path), "wb") as out:
        out.write((newline.join(lines) + newline).encode(encoding, "surrogateescape"))
    return str(path)


def explain_json(*args, **kw) -> dict:
    done = envdoctor("explain", "--format", "json", *args, **kw)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode in (0, 1), done.stderr + done.stdout
    report = json.loads(done.stdout)
    assert report["schema"] == "envdoctor.explain/1"
    assert report["exit_code"] == done.returncode
    return report


def matched(report: dict) -> dict:
    """record id -> (its entry, the match it belongs to)."""
    return {r["id"]: (r, m) for m in report["matches"] for r in m["records"]}


# -- every shipped record's symptom is found ------------------------------------------------------


@pytest.fixture(scope="module")
def every_example(tmp_path_factory):
    """One noisy log holding every shipped example, each inside a traceback; where each landed."""
    lines = noise(400, seed=1)
    where = {}
    for i, record in enumerate(WITH_SYMPTOMS):
        for j, symptom in enumerate(record.symptoms):
            if symptom.weak:
                continue
            assert symptom.example, "%s: symptom %d has no example, so no test can show it is found" % (record.path, j)
            lines += noise(50, seed=10 + i)
            lines += ["Traceback (most recent call last):", '  File "train.py", line 188, in main', "    trainer.train()"]
            lines.append(symptom.example)
            where.setdefault(record.id, []).append(len(lines))
    lines += noise(200, seed=2)
    log = write(tmp_path_factory.mktemp("every") / "train.log", lines)
    return explain_json(log, "--log-only"), where


@pytest.mark.parametrize("record", WITH_SYMPTOMS, ids=[r.id for r in WITH_SYMPTOMS])
def test_every_record_with_symptoms_is_found_in_a_noisy_log(every_example, record):
    report, where = every_example
    # A record with several symptoms is in several matches, one per symptom's lines.
    mine = [(r, m) for m in report["matches"] for r in m["records"] if r["id"] == record.id]
    assert mine, "%s was not found" % record.id
    numbers = {line["line"] for _, m in mine for line in m["lines"]}
    assert set(where[record.id]) <= numbers
    assert all(r["status"] == "not examined" for r, _ in mine)
    assert report["exit_code"] == 1


# -- weak symptoms: an everyday line is not a diagnosis --------------------------------------------


@pytest.mark.parametrize("record", WITH_WEAK, ids=[r.id for r in WITH_WEAK])
def test_a_weak_symptom_alone_exits_0_and_names_nothing_without_an_environment(tmp_path, record):
    lines = noise(60, seed=21)
    for symptom in record.symptoms:
        if symptom.weak:
            lines += ["Traceback (most recent call last):", '  File "train.py", line 188, in main', symptom.example]
    report = explain_json(write(tmp_path / "weak.log", lines + noise(20, seed=22)), "--log-only")
    assert report["exit_code"] == 0
    assert record.id not in matched(report), "a weak symptom named %s with no environment examined" % record.id


OOM = "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 16.00 GiB. GPU 0 has a total capacity of 79.15 GiB"


def test_weak_oom_is_no_known_issue_where_the_record_does_not_hold(tmp_path, pins):
    log = write(tmp_path / "oom.log", noise(80, seed=23) + [OOM] + noise(10, seed=24))
    report = explain_json(log, "-r", pins("transformers==4.39.3"), "--fact", "model.type=llama")
    assert report["exit_code"] == 0 and report["matches"] == []
    done = envdoctor("explain", log, "-r", pins("transformers==4.39.3"))
    assert done.returncode == 0 and "no known issue" in done.stdout and "No known issue" in done.stdout


def test_weak_oom_is_a_candidate_where_the_record_holds_and_still_exits_0(tmp_path, pins):
    log = write(tmp_path / "oom.log", noise(80, seed=23) + [OOM] + noise(10, seed=24))
    report = explain_json(log, "-r", pins("transformers==4.38.1"), "--fact", "model.type=llama")
    assert report["exit_code"] == 0
    (match,) = report["matches"]
    assert match["verdict"] == "candidate" and match["weak"] is True
    assert [(r["id"], r["status"], r["weak"]) for r in match["records"]] == [("TRANSFORMERS-438-CAUSAL-MASK", "confirmed", True)]
    assert "not a known issue by itself" in match["conclusion"]
    done = envdoctor("explain", log, "-r", pins("transformers==4.38.1"))  # model type unknown: possible
    assert done.returncode == 0
    assert "[candidate] TRANSFORMERS-438-CAUSAL-MASK" in done.stdout and "1 common error line with a candidate cause" in done.stdout


def test_a_weak_line_beside_a_known_symptom_still_exits_1(tmp_path, pins):
    log = write(tmp_path / "both.log", noise(40, seed=25) + [OOM, ASSERTION, "AssertionError"])
    report = explain_json(log, "-r", pins("transformers==4.38.1", "xtuner==0.1.17"))
    assert report["exit_code"] == 1
    assert [m["verdict"] == "candidate" for m in report["matches"]] == [True, False]


def test_nothing_known_in_a_noisy_log_with_near_misses(tmp_path):
    log = write(tmp_path / "clean.log", noise(3000, seed=3))
    report = explain_json(log)
    assert report["matches"] == [] and report["exit_code"] == 0
    assert report["lines_read"] == 3000 + 3000 // 9 * 3  # each traceback is 4 lines
    text = envdoctor("explain", log)
    assert text.returncode == 0 and "No known issue" in text.stdout


# -- the position_ids assertion: three records, the environment decides --------------------------


@pytest.fixture(scope="module")
def assertion_log(tmp_path_factory):
    lines = noise(300, seed=4) + [
        "Traceback (most recent call last):",
        '  File "/usr/lib/python3.10/site-packages/xtuner/tools/train.py", line 188, in main',
        "    trainer.train(resume_from_checkpoint=args.resume)",
        '  File "/usr/lib/python3.10/site-packages/xtuner/model/modules/dispatch/internlm2.py", line 154, in internlm2_attn_forward',
        ASSERTION,
    ]
    line = len(lines)
    lines += ["AssertionError"] + noise(20, seed=5)
    return write(tmp_path_factory.mktemp("assertion") / "train.log", lines), line


def test_position_ids_on_xtuner_0117_points_at_the_collate_cause(venvs, assertion_log):
    log, line = assertion_log
    report = explain_json(log, "--python", venvs("xtuner==0.1.17", "transformers==4.40.0").python)
    found = matched(report)
    assert POSITION_IDS <= set(found)
    collate, match = found["XTUNER-POSITION-IDS-COLLATE"]
    assert [entry["line"] for entry in match["lines"]] == [line]
    assert {r["id"] for r in match["records"]} >= POSITION_IDS  # one symptom, judged together
    assert collate["status"] == "possible"
    assert "model.type" in {u["fact"] for u in collate["undecided"]}
    assert found["XTUNER-POSITION-IDS-SP-PADDING"][0]["status"] == "not firing"
    assert any("0.1.17 is installed" in reason for reason in found["XTUNER-POSITION-IDS-SP-PADDING"][0]["unmet"])
    assert found["XTUNER-POSITION-IDS-ASSERT-REMAINS"][0]["status"] == "not firing"
    assert match["verdict"] == "decide"
    assert "XTUNER-POSITION-IDS-COLLATE" in match["conclusion"] and "model.type" in match["conclusion"]
    assert report["exit_code"] == 1
    markdown = envdoctor("explain", log, "--python", venvs("xtuner==0.1.17", "transformers==4.40.0").python, "--format", "markdown")
    assert markdown.returncode == 1
    assert "- **may apply** `XTUNER-POSITION-IDS-COLLATE`" in markdown.stdout
    assert "- **not here** `XTUNER-POSITION-IDS-SP-PADDING`" in markdown.stdout


def test_position_ids_on_xtuner_0120_says_the_assertion_remains(venvs, assertion_log):
    log, _ = assertion_log
    done = envdoctor("explain", log, "--python", venvs("xtuner==0.1.20", "transformers==4.40.0").python)
    assert done.returncode == 1, done.stderr
    conclusion = [line for line in done.stdout.splitlines() if line.startswith("=> ")]
    assert len(conclusion) == 1
    assert "XTUNER-POSITION-IDS-ASSERT-REMAINS" in conclusion[0]
    assert "COLLATE" not in conclusion[0] and "SP-PADDING" not in conclusion[0]
    assert "[not here] XTUNER-POSITION-IDS-COLLATE" in done.stdout


def test_position_ids_without_xtuner_none_applies(venvs, assertion_log):
    log, _ = assertion_log
    report = explain_json(log, "--python", venvs("transformers==4.40.0").python)
    match = matched(report)["XTUNER-POSITION-IDS-COLLATE"][1]
    assert match["verdict"] == "none applies"
    assert all(r["status"] == "not firing" for r in match["records"])
    assert all(any("not installed" in u for u in r["unmet"]) for r in match["records"] if r["id"] in POSITION_IDS)


def test_position_ids_with_model_and_config_confirms_the_collate_cause(venvs, assertion_log, tmp_path):
    log, _ = assertion_log
    model = tmp_path / "internlm2-chat-1_8b"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "internlm2", "architectures": ["InternLM2ForCausalLM"]}))
    config = tmp_path / "internlm2_chat_1_8b_qlora_alpaca_e3.py"
    config.write_text("use_varlen_attn = False\nsequence_parallel_size = 1\nmax_length = 2048\npack_to_max_length = True\n")
    report = explain_json(log, "--python", venvs("xtuner==0.1.17", "transformers==4.40.0").python,
                          "--model", str(model), "--config", str(config), "--gpus", "1")
    collate, match = matched(report)["XTUNER-POSITION-IDS-COLLATE"]
    assert collate["status"] == "confirmed"
    assert match["verdict"] == "applies"


def test_a_failed_probe_is_exit_2_but_the_lines_are_still_shown(assertion_log, tmp_path):
    log, line = assertion_log
    done = envdoctor("explain", log, "--python", str(tmp_path / "no-such-python"))
    assert done.returncode == 2
    assert "Line %d" % line in done.stdout
    assert "Traceback" not in done.stderr + done.stdout


# -- input of every shape ---------------------------------------------------------------------------


def test_crlf_ansi_and_progress_bars(tmp_path):
    example = ASSERTION.strip()
    lines = noise(30, seed=6)
    lines.append(" 10%|#         | 1/10 [00:01<00:09]\r 20%|##        | 2/10 [00:02<00:08]\r" + example)
    lines.append("\x1b[31m\x1b[1mRuntimeError: The NVIDIA driver on your system is too old (found version 11040).\x1b[0m")
    log = write(tmp_path / "windows.log", lines, newline="\r\n")
    report = explain_json(log, "--log-only")
    found = matched(report)
    pos = found["XTUNER-POSITION-IDS-COLLATE"][1]["lines"][0]
    assert pos == {"line": 31 + 30 // 9 * 3, "text": example}  # the bar's own parts are not part of the line
    drv = found["CUDA-DRIVER-TOO-OLD"][1]["lines"][0]
    assert drv["text"] == "RuntimeError: The NVIDIA driver on your system is too old (found version 11040)."
    assert drv["line"] == pos["line"] + 1


def test_invalid_utf8_and_binary_noise_are_read_not_fatal(tmp_path):
    rng = random.Random(7)
    junk = bytes(rng.randrange(256) for _ in range(200000))
    data = junk + b"\n\xff\xfe garbage \xc3(\n" + ASSERTION.encode() + b" \xe9t\xe9\n" + junk
    log = tmp_path / "mixed.log"
    log.write_bytes(data)
    report = explain_json(str(log), "--log-only")
    hit = matched(report)["XTUNER-POSITION-IDS-COLLATE"][1]["lines"][0]
    assert hit["line"] == junk.count(b"\n") + 3
    assert "\ufffd" in hit["text"]
    assert any("binary data" in p["message"] for p in report["problems"])


def test_pure_binary_file_is_no_match_with_a_note(tmp_path):
    log = tmp_path / "model.safetensors"
    log.write_bytes(b"\x00" * 4096 + os.urandom(1 << 20))
    done = envdoctor("explain", str(log))
    assert done.returncode == 0, done.stderr
    assert "binary data" in done.stdout and "Traceback" not in done.stderr


def test_huge_line_without_newline_bounded_memory_and_matches_at_the_cuts(tmp_path):
    """200 MB with no line break; symptoms straddle a piece boundary and sit deep inside."""
    log = tmp_path / "one-line.log"
    first = ASSERTION.strip().encode()
    second = b"RuntimeError: The NVIDIA driver on your system is too old (found version 11040)"
    block = b"x" * (1 << 20)
    with open(str(log), "wb") as out:
        out.write(block[: MAX_LINE - 20] + first)  # crosses the first cut
        for i in range(200):
            out.write(block)
            if i == 150:
                out.write(second)
    probe = ("import resource, subprocess, sys;"
             "done = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE);"
             "sys.stdout.write(done.stdout.decode());"
             "sys.stderr.write('maxrss=%d rc=%d' % (resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, done.returncode))")
    env = dict(os.environ, PYTHONPATH=REPO)
    done = subprocess.run([sys.executable, "-c", probe, sys.executable, "-m", "envdoctor", "explain", str(log), "--log-only", "--format", "json"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, timeout=300)
    info = dict(part.split("=") for part in done.stderr.split()[-2:])
    assert info["rc"] == "1", done.stderr
    assert int(info["maxrss"]) < 64 * 1024, "peak RSS %s KiB" % info["maxrss"]  # ru_maxrss is in KiB on Linux
    report = json.loads(done.stdout)
    found = matched(report)
    for record_id in ("XTUNER-POSITION-IDS-COLLATE", "CUDA-DRIVER-TOO-OLD"):
        match = found[record_id][1]
        assert match["line_count"] == 1 and match["lines"][0]["line"] == 1
        assert len(match["lines"][0]["text"]) < 400
    assert report["lines_read"] == 1


def test_gzip_by_name_and_by_magic_bytes_and_from_stdin(tmp_path):
    text = ("\n".join(noise(500, seed=8) + [ASSERTION]) + "\n").encode()
    packed = gzip.compress(text)
    for name in ("train.log.gz", "train.log"):  # the second has no .gz: found by its magic bytes
        path = tmp_path / name
        path.write_bytes(packed)
        report = explain_json(str(path), "--log-only")
        assert "XTUNER-POSITION-IDS-COLLATE" in matched(report)
    full = subprocess.run([sys.executable, "-m", "envdoctor", "explain", "-", "--log-only", "--format", "json"], input=packed,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=REPO), cwd=REPO)
    assert full.returncode == 1, full.stderr
    assert json.loads(full.stdout)["log"] == "-"
    plain = envdoctor("explain", "--log-only", input=text.decode())  # no LOG: standard input
    assert plain.returncode == 1 and "Line %d" % text.count(b"\n") in plain.stdout


def test_truncated_gzip_reports_what_it_read(tmp_path):
    lines = [ASSERTION] + noise(40000, seed=9)
    packed = gzip.compress(("\n".join(lines) + "\n").encode())
    cut = tmp_path / "cut.log.gz"
    cut.write_bytes(packed[: len(packed) // 2])
    done = envdoctor("explain", str(cut), "--log-only")
    assert done.returncode == 1, done.stderr
    assert "Line 1:" in done.stdout and "truncated" in done.stdout
    clean = tmp_path / "clean.log.gz"
    clean.write_bytes(gzip.compress(("\n".join(noise(40000, seed=9)) + "\n").encode())[:-5000])
    done = envdoctor("explain", str(clean), "--log-only", "--format", "json")
    assert done.returncode == 2  # read only in part, nothing found: no clean bill of health
    report = json.loads(done.stdout)
    assert report["complete"] is False and report["lines_read"] > 0
    assert "truncated" in done.stderr and "Traceback" not in done.stderr


def test_corrupt_gzip(tmp_path):
    bad = tmp_path / "bad.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00" + os.urandom(5000))
    done = envdoctor("explain", str(bad))
    assert done.returncode == 2
    assert "bad.gz" in done.stdout and "Traceback" not in done.stderr + done.stdout


@pytest.mark.parametrize("kind", ["missing", "folder", "empty", "unreadable"])
def test_files_that_are_not_logs(tmp_path, kind):
    path = tmp_path / "train.log"
    if kind == "folder":
        path.mkdir()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "unreadable":
        path.write_text("x\n")
        path.chmod(0)
        if os.access(str(path), os.R_OK):
            pytest.skip("running as root: permissions do not stop reading")
    done = envdoctor("explain", str(path))
    assert "Traceback" not in done.stderr + done.stdout
    if kind == "empty":
        assert done.returncode == 0 and "empty" in done.stdout
        return
    assert done.returncode == 2
    assert done.stderr.startswith("envdoctor: %s: " % path)
    assert len(done.stderr.strip().splitlines()) == 1
    assert {"missing": "No such file", "folder": "folder", "unreadable": "ermission"}[kind] in done.stderr


# -- your own records: patterns the literal shortcut cannot serve --------------------------------


def test_own_records_with_case_insensitive_and_anchored_patterns(tmp_path):
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "oom.toml").write_text('''
id = "LOCAL-OOM"
summary = "Out of GPU memory"
severity = "warning"
details = "The batch does not fit."
[when]
"gpu.count" = { above = 0 }
[[symptoms]]
pattern = '(?i)cuda out of memory'
example = "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"
[[symptoms]]
pattern = '^\\s*Killed$'
example = "Killed"
[remedy]
summary = "Lower the batch size"
[[references]]
url = "https://pytorch.org/docs/stable/notes/cuda.html"
''')
    lines = noise(100, seed=11) + ["torch.OutOfMemoryError: Cuda Out Of Memory. Tried to allocate 2.00 GiB",
                                    " 99%|#########9| 99/100\r  Killed", "not Killed here", "Killed"]
    report = explain_json(write(tmp_path / "oom.log", lines), "--kb", str(kb), "--log-only")
    oom = [m for m in report["matches"] if any(r["id"] == "LOCAL-OOM" for r in m["records"])]
    numbers = sorted(line["line"] for m in oom for line in m["lines"])
    first = 100 + 100 // 9 * 3 + 1
    assert numbers == [first, first + 1, first + 3]


# -- rival causes: ranked by the environment, then by the log's other lines ----------------------


def _traceback(*frames):
    out = ["Traceback (most recent call last):"]
    for path in frames:
        out += ['  File "/opt/conda/lib/python3.10/site-packages/%s", line 88, in forward' % path, "    out = layer(x)"]
    return out


def test_rivals_ranked_by_the_version_the_log_prints(tmp_path):
    # pip's line names the release; the shipped position_ids records differ only by xtuner version.
    lines = noise(50, seed=31)
    lines = [line for line in lines if "Requirement already satisfied" not in line]
    lines += ["Successfully installed xtuner-0.1.18 transformers-4.39.3"]
    lines += _traceback("xtuner/model/modules/dispatch/internlm2.py") + [ASSERTION, "AssertionError"]
    report = explain_json(write(tmp_path / "rivals.log", lines), "--log-only")
    (match,) = [m for m in report["matches"] if POSITION_IDS & {r["id"] for r in m["records"]}]
    ids = [r["id"] for r in match["records"]]
    assert ids[0] == "XTUNER-POSITION-IDS-SP-PADDING", ids  # 0.1.18 is inside >=0.1.18,<0.1.20
    first = match["records"][0]["log_evidence"]
    assert first == ["the log prints xtuner 0.1.18 (line %d), inside >=0.1.18,<0.1.20" % (len(lines) - 5)]
    assert all("outside" in r["log_evidence"][0] for r in match["records"][1:])
    assert match["decided_by"] is None  # the printed version decided it
    # Without the printed version, the three stay level: the xtuner version would decide.
    bare = explain_json(write(tmp_path / "bare.log", lines[:-6] + lines[-5:]), "--log-only")
    (match,) = [m for m in bare["matches"] if POSITION_IDS & {r["id"] for r in m["records"]}]
    assert match["decided_by"].startswith("the xtuner version (")
    assert "XTUNER-POSITION-IDS-COLLATE needs >=0.1.16,<0.1.18" in match["decided_by"]
    assert "it turns on the xtuner version" in match["conclusion"]


def test_the_environment_ranks_before_the_log(tmp_path, pins):
    lines = ["Successfully installed xtuner-0.1.20"] + _traceback("xtuner/model/modules/dispatch/internlm2.py") + [ASSERTION]
    report = explain_json(write(tmp_path / "env.log", lines), "-r", pins("xtuner==0.1.17", "transformers==4.39.3"))
    (match,) = report["matches"]
    assert [r["id"] for r in match["records"]][0] == "XTUNER-POSITION-IDS-COLLATE"
    assert match["records"][0]["status"] == "possible"
    assert "outside" in match["records"][0]["log_evidence"][0]  # the log was made elsewhere


RIVAL = '''
id = "{id}"
summary = "{id} summary"
severity = "error"
details = "Two packages raise the same AttributeError."
[[affected]]
package = "{package}"
introduced = "1.0"
[[symptoms]]
pattern = "object has no attribute 'get_max_length'"
example = "AttributeError: 'DynamicCache' object has no attribute 'get_max_length'"
{traceback}
[remedy]
summary = "Upgrade"
[[references]]
url = "https://example.org/{id}"
'''


@pytest.fixture()
def rival_kb(tmp_path):
    kb = tmp_path / "kb" / "records"
    for area, rid, package, frame in (("peft", "PEFT-RIVAL", "peft", 'traceback = "peft/tuners/"'),
                                      ("model", "MODEL-RIVAL", "transformers", 'traceback = "transformers_modules/"')):
        (kb / area).mkdir(parents=True)
        (kb / area / "r.toml").write_text(RIVAL.format(id=rid, package=package, traceback=frame))
    return str(tmp_path / "kb")


@pytest.mark.parametrize("frame,first", [("peft/tuners/lora/model.py", "PEFT-RIVAL"),
                                         ("transformers_modules/phi3/modeling_phi3.py", "MODEL-RIVAL")])
def test_rivals_ranked_by_the_traceback_path(tmp_path, rival_kb, frame, first):
    error = "AttributeError: 'DynamicCache' object has no attribute 'get_max_length'"
    lines = noise(30, seed=32) + _traceback("xtuner/tools/train.py", frame) + [error]
    report = explain_json(write(tmp_path / "tb.log", lines), "--log-only", "--kb", rival_kb)
    (match,) = [m for m in report["matches"] if m["records"][0]["id"].endswith("-RIVAL")]
    assert [r["id"] for r in match["records"]][0] == first
    assert match["records"][0]["log_evidence"][0].startswith("the traceback passes through")
    assert match["records"][1]["log_evidence"] == []
    assert match["decided_by"] is None


def test_rivals_level_name_the_traceback_as_the_deciding_fact(tmp_path, rival_kb):
    lines = noise(30, seed=33) + ["AttributeError: 'DynamicCache' object has no attribute 'get_max_length'"]
    report = explain_json(write(tmp_path / "level.log", lines), "--log-only", "--kb", rival_kb)
    (match,) = [m for m in report["matches"] if m["records"][0]["id"].endswith("-RIVAL")]
    decided = match["decided_by"]
    assert "which package the traceback passes through (transformers_modules/ for MODEL-RIVAL; peft/tuners/ for PEFT-RIVAL)" in decided
    assert "the peft version (MODEL-RIVAL needs any version; PEFT-RIVAL needs >=1.0)" in decided
    text = envdoctor("explain", write(tmp_path / "level2.log", lines), "--log-only", "--kb", rival_kb)
    assert text.returncode == 1 and "it turns on" in text.stdout


def test_rivals_from_standard_input_are_ranked_by_the_environment_alone(tmp_path, rival_kb):
    lines = _traceback("peft/tuners/lora/model.py") + ["AttributeError: 'DynamicCache' object has no attribute 'get_max_length'"]
    done = envdoctor("explain", "-", "--log-only", "--kb", rival_kb, "--format", "json", input="\n".join(lines) + "\n")
    report = json.loads(done.stdout)
    assert any("standard input was read once" in p["message"] for p in report["problems"])
    assert done.returncode == 1
