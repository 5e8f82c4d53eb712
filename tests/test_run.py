"""envdoctor run -- CMD: real commands run through a real envdoctor subprocess."""

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time

import pytest

from builders import REPO, envdoctor

sys.path.insert(0, REPO)

from envdoctor.launch import read as read_launch  # noqa: E402

DRIVER_ERROR = "RuntimeError: The NVIDIA driver on your system is too old (found version 11040)"
OLD_DRIVER = "520.61.05"  # below CUDA 12's floor: CUDA-DRIVER-TOO-OLD is confirmed for torch 2.1.2+cu121


def env_with_repo(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("NO_COLOR", None)
    env.update(extra)
    return env


def py(code: str) -> list:
    return [sys.executable, "-c", code]


@pytest.fixture(scope="module")
def cuda_venv(venvs):
    return venvs("torch==2.1.2+cu121").python


# -- running it untouched --------------------------------------------------------------------


def test_success_is_byte_identical_and_says_nothing(tmp_path):
    out = b"plain\n\x1b[32mgreen\x1b[0m\r 50%\r100%\n\xff\xfe not utf-8\n\x00nul\nno newline at the end"
    err = b"a warning\n"
    code = "import sys; sys.stdout.buffer.write(%r); sys.stderr.buffer.write(%r)" % (out, err)
    done = subprocess.run([sys.executable, "-m", "envdoctor", "run", "--no-check", "--", *py(code)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env_with_repo(), timeout=60)
    assert done.returncode == 0
    assert done.stdout == out
    assert done.stderr == err  # nothing of ours


@pytest.mark.parametrize("code", [0, 3, 255])
def test_exit_code_passes_through(code):
    done = envdoctor("run", "--no-check", "--", *py("raise SystemExit(%d)" % code))
    assert done.returncode == code, done.stderr


def test_stdin_passes_through():
    done = envdoctor("run", "--no-check", "--", *py("import sys; sys.stdout.write(sys.stdin.read().upper())"), input="hello\nworld\n")
    assert done.returncode == 0 and done.stdout == "HELLO\nWORLD\n"


def test_missing_command_is_127_in_one_line(tmp_path):
    done = envdoctor("run", "--no-check", "--", "no-such-command-envdoctor")
    assert done.returncode == 127
    assert done.stderr == "envdoctor: no-such-command-envdoctor: command not found\n"
    script = tmp_path / "script.sh"
    script.write_text("echo hi\n")  # not executable
    done = envdoctor("run", "--no-check", "--", str(script))
    assert done.returncode == 126
    assert done.stderr.count("\n") == 1 and "cannot run it" in done.stderr


def test_no_command_is_a_usage_error():
    done = envdoctor("run")
    assert done.returncode == 2 and "Traceback" not in done.stderr


def test_report_folder_missing_is_a_usage_error_before_starting(tmp_path):
    marker = tmp_path / "ran"
    done = envdoctor("run", "--no-check", "--report", str(tmp_path / "nope" / "r.json"), "--",
                     *py("open(%r, 'w')" % str(marker)))
    assert done.returncode == 2 and "does not exist" in done.stderr
    assert not marker.exists()


# -- a pseudo-terminal when ours is one -------------------------------------------------------


def _under_pty(argv, send=b"", wait_for=b"", timeout=30):
    """Run argv with a pseudo-terminal as its terminal; type ``send`` once ``wait_for`` was
    printed. Returns (everything printed, exit code)."""
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.environ.update(env_with_repo())
        os.execv(argv[0], argv)
    out, sent = b"", not send
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not sent and wait_for in out:
                os.write(fd, send)
                sent = True
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:  # EIO: every writer is gone
                    break
                if not data:
                    break
                out += data
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
    return out, code


def test_terminal_keeps_colours_progress_and_keyboard():
    code = ("import sys; print(sys.stdin.isatty(), sys.stdout.isatty(), sys.stderr.isatty()); "
            "sys.stdout.write('\\x1b[31mred\\x1b[0m  10%\\r 50%\\r100%\\n'); sys.stdout.flush(); "
            "print('typed:', input())")
    out, code = _under_pty([sys.executable, "-m", "envdoctor", "run", "--no-check", "--", *py(code)],
                           send=b"hello\n", wait_for=b"100%")
    assert code == 0, out
    assert b"True True True" in out
    assert b"\x1b[31mred\x1b[0m  10%\r 50%\r100%" in out  # colour and redraws as the command wrote them
    assert b"typed: hello" in out


def test_ctrl_c_at_the_terminal_reaches_the_command():
    code = "import time; print('ready', flush=True); time.sleep(60)"
    started = time.monotonic()
    out, code = _under_pty([sys.executable, "-m", "envdoctor", "run", "--no-check", "--", *py(code)],
                           send=b"\x03", wait_for=b"ready")
    assert code == 130, out
    assert time.monotonic() - started < 30
    assert b"envdoctor:" not in out  # stopped on purpose: no diagnosis


# -- signals reach the whole command ------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        with open("/proc/%d/stat" % pid) as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_ends_the_command_and_what_it_started(tmp_path, sig, code):
    pidfile = tmp_path / "grandchild.pid"
    grandchild = "import os, time; open(%r, 'w').write(str(os.getpid())); time.sleep(60)" % str(pidfile)
    child = "import subprocess, sys; subprocess.run([sys.executable, '-c', %r])" % grandchild
    proc = subprocess.Popen([sys.executable, "-m", "envdoctor", "run", "--no-check", "--", *py(child)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env_with_repo())
    try:
        deadline = time.monotonic() + 30
        while not (pidfile.exists() and pidfile.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        grandchild_pid = int(pidfile.read_text())
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    deadline = time.monotonic() + 5
    while _alive(grandchild_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild_pid), "the command's child was left running"
    assert b"envdoctor:" not in err


# -- bounded memory ------------------------------------------------------------------------------


def _printing_run(tmp_path, megabytes, **env):
    """envdoctor run over a command printing that many MiB of log lines (a driver error early on):
    (exit code, stderr, peak RSS of envdoctor in KiB, the --report)."""
    report = tmp_path / ("run-%d-%d.json" % (megabytes, len(list(tmp_path.iterdir()))))
    printer = ("import sys\n"
               "line = b'2024/05/06 12:00:00 - mmengine - INFO - Iter(train) [  10/60000]  lr: 2.0e-05  loss: 1.2345\\n'\n"
               "block = line * ((1 << 20) // len(line))\n"
               "out = sys.stdout.buffer\n"
               "for i in range(%d):\n"
               "    out.write(block)\n"
               "    if i == 5:\n"
               "        out.write(%r + b'\\n')\n"
               "sys.exit(1)\n" % (megabytes, DRIVER_ERROR.encode()))
    proc = subprocess.Popen([sys.executable, "-m", "envdoctor", "run", "--no-check", "--report", str(report), "--", *py(printer)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env_with_repo(**env))
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    return os.WEXITSTATUS(status), err, usage.ru_maxrss, json.loads(report.read_text())  # ru_maxrss: KiB on Linux


def test_a_gigabyte_of_output_in_bounded_memory(tmp_path):
    """1 GiB of log lines: envdoctor's peak memory is that of a run over 16 MiB, give or take a few
    MiB (what the diagnosis itself loads is the same for both), so it does not grow with the log."""
    code, err, small, _ = _printing_run(tmp_path, 16)
    assert code == 1, err
    code, err, peak, result = _printing_run(tmp_path, 1024)
    assert code == 1, err
    print("peak RSS %d KiB over 1 GiB, %d KiB over 16 MiB" % (peak, small))
    assert peak - small < 24 * 1024, "peak RSS %d KiB over 1 GiB against %d KiB over 16 MiB" % (peak, small)
    assert result["diagnosis"]["bytes_read"] > 10 ** 9
    match = [m for m in result["diagnosis"]["matches"] if any(r["id"] == "CUDA-DRIVER-TOO-OLD" for r in m["records"])]
    assert len(match) == 1 and match[0]["lines"][0]["text"] == DRIVER_ERROR
    assert b"CUDA-DRIVER-TOO-OLD" in err


def test_the_diagnosis_is_the_same_searched_later_or_as_it_comes(tmp_path):
    """The output waits in the spool and is searched once the command has failed; past the
    spool's limit (here 4 MiB, the driver error coming after it) or with none (0), lines are
    searched as they come. The three give the same diagnosis, line numbers and counts."""
    reports = []
    for spool in (None, 4 << 20, 0):
        code, err, _, result = _printing_run(tmp_path, 12, **({} if spool is None else {"ENVDOCTOR_RUN_SPOOL": str(spool)}))
        assert code == 1 and b"CUDA-DRIVER-TOO-OLD" in err, err
        reports.append((result["diagnosis"], result["tail"]))
    assert reports[0] == reports[1] == reports[2]
    (match,) = [m for m in reports[0][0]["matches"] if any(r["id"] == "CUDA-DRIVER-TOO-OLD" for r in m["records"])]
    assert match["lines"][0]["line"] == 6 * ((1 << 20) // 92) + 1  # after six blocks of whole 92-byte lines


# -- pre-flight and post-mortem ---------------------------------------------------------------------


def test_preflight_error_stops_the_command(cuda_venv, tmp_path):
    marker, report = tmp_path / "ran", tmp_path / "run.json"
    done = envdoctor("run", "--python", cuda_venv, "--driver", OLD_DRIVER, "--report", str(report), "--",
                     *py("open(%r, 'w')" % str(marker)))
    assert done.returncode == 1
    assert not marker.exists()
    assert "[error] CUDA-DRIVER-TOO-OLD" in done.stderr and "--keep-going" in done.stderr
    assert done.stdout == ""
    result = json.loads(report.read_text())
    assert result["schema"] == "envdoctor.run/1"
    assert result["started"] is False and result["stopped_by_preflight"] is True and result["exit_code"] == 1
    assert "CUDA-DRIVER-TOO-OLD" in {f["id"] for f in result["preflight"]["findings"]}


def test_keep_going_runs_it_and_the_failure_is_diagnosed(cuda_venv, tmp_path):
    report = tmp_path / "run.json"
    command = py("import sys; print('step 1', flush=True); sys.stderr.write(%r + '\\n'); sys.exit(3)" % DRIVER_ERROR)
    done = envdoctor("run", "--keep-going", "--python", cuda_venv, "--driver", OLD_DRIVER, "--report", str(report), "--", *command)
    assert done.returncode == 3
    assert done.stdout == "step 1\n"
    assert "starting the command anyway (--keep-going)" in done.stderr
    assert done.stderr.index(DRIVER_ERROR) < done.stderr.index("failed with exit code 3")  # diagnosis after the output
    assert "Cause here: CUDA-DRIVER-TOO-OLD" in done.stderr
    result = json.loads(report.read_text())
    assert result["exit_code"] == 3 and result["started"] is True and result["signal"] is None
    assert result["diagnosis"]["matches"][0]["verdict"] == "applies"
    assert result["tail"] == ["step 1", DRIVER_ERROR]
    assert not [name for name in os.listdir(str(tmp_path)) if name.startswith(".envdoctor-")]  # no temp file left


def test_no_check_still_judges_a_symptom_with_this_environment(cuda_venv):
    command = py("import sys; sys.stderr.write(%r + '\\n'); sys.exit(1)" % DRIVER_ERROR)
    done = envdoctor("run", "--no-check", "--python", cuda_venv, "--driver", OLD_DRIVER, "--", *command)
    assert done.returncode == 1
    assert "[error]" not in done.stderr.split(DRIVER_ERROR)[0]  # no pre-flight
    assert "Cause here: CUDA-DRIVER-TOO-OLD" in done.stderr


def test_failure_without_a_known_symptom_is_one_line():
    done = envdoctor("run", "--no-check", "--", *py("import sys; print('bad input'); sys.exit(2)"))
    assert done.returncode == 2
    assert done.stdout == "bad input\n"
    assert done.stderr.startswith("envdoctor: the command failed with exit code 2; no known issue's symptom")
    assert done.stderr.count("\n") == 1


def test_xtuner_train_command_line_gives_config_launcher_and_gpus(cuda_venv, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    xtuner = bin_dir / "xtuner"
    xtuner.write_text("#!/bin/sh\necho training \"$@\"\n")
    xtuner.chmod(0o755)
    config = tmp_path / "internlm2_chat_7b_qlora_e3.py"
    config.write_text("max_length = 4096\npack_to_max_length = True\nsequence_parallel_size = 2\nuse_varlen_attn = False\n"
                      "pretrained_model_name_or_path = 'internlm/internlm2-chat-7b'\n")
    report = tmp_path / "run.json"
    done = envdoctor("run", "--python", cuda_venv, "--report", str(report), "--",
                     "xtuner", "train", str(config), "--deepspeed", "deepspeed_zero2",
                     env={"PATH": str(bin_dir) + os.pathsep + os.environ["PATH"], "NPROC_PER_NODE": "8"})
    assert done.returncode == 0, done.stderr
    assert done.stdout == "training train %s --deepspeed deepspeed_zero2\n" % config
    result = json.loads(report.read_text())
    assert result["launch"] == {"program": "xtuner", "python": cuda_venv, "config": str(config), "launcher": "deepspeed",
                                "gpus": 8, "notes": []}
    facts = result["preflight"]["facts"]
    assert facts["train.max_length"] == 4096 and facts["train.sequence_parallel_size"] == 2
    assert facts["run.launcher"] == "deepspeed" and facts["run.gpus"] == 8
    assert result["diagnosis"] is None and result["tail"] == []


# -- facts read from the command line -------------------------------------------------------------


@pytest.mark.parametrize("argv,environ,expect", [
    (["xtuner", "train", "cfg.py", "--deepspeed", "deepspeed_zero2"], {}, ("cfg.py", "deepspeed", None)),
    (["xtuner", "train", "--deepspeed", "deepspeed_zero3", "cfg.py"], {"NPROC_PER_NODE": "4", "NNODES": "2"}, ("cfg.py", "deepspeed", 8)),
    (["xtuner", "train", "cfg.py"], {"NPROC_PER_NODE": "8"}, ("cfg.py", "torchrun", 8)),
    (["env", "NPROC_PER_NODE=2", "xtuner", "train", "cfg.py"], {}, ("cfg.py", "torchrun", 2)),
    (["torchrun", "--nproc_per_node=8", "--nnodes", "2", "train.py", "--lr", "1"], {}, (None, "torchrun", 16)),
    (["torchrun", "--nproc-per-node", "4", "/x/xtuner/tools/train.py", "c.py", "--deepspeed", "z2"], {}, ("c.py", "deepspeed", 4)),
    (["python", "-m", "torch.distributed.run", "--nproc_per_node", "2", "train.py"], {}, (None, "torchrun", 2)),
    (["torchrun", "--nnodes=1:4", "--nproc_per_node=8", "train.py"], {}, (None, "torchrun", None)),
    (["deepspeed", "--num_gpus", "4", "train.py", "--deepspeed", "ds.json"], {}, (None, "deepspeed", 4)),
    (["srun", "-N", "2", "--ntasks=16", "--gres=gpu:8", "python", "train.py"], {}, (None, "slurm", 16)),
    (["srun", "-n8", "-l", "xtuner", "train", "cfg.py", "--launcher", "slurm", "--deepspeed", "z2"], {}, ("cfg.py", "deepspeed", 8)),
    (["srun", "python", "train.py"], {"SLURM_NTASKS": "32", "SLURM_JOB_ID": "7"}, (None, "slurm", 32)),
    (["python", "train.py", "--deepspeed", "ds.json"], {"WORLD_SIZE": "4"}, (None, "deepspeed", 4)),
    (["nohup", "python", "-u", "-m", "xtuner.tools.train", "cfg.py"], {}, ("cfg.py", None, None)),
    (["make", "train"], {}, (None, None, None)),
])
def test_command_line_facts(argv, environ, expect):
    launch = read_launch(argv, environ)
    assert (launch.config, launch.launcher, launch.gpus) == expect


def test_the_environment_examined_is_the_one_the_command_runs(cuda_venv, tmp_path):
    """A script whose #! names another venv's Python (as xtuner's and torchrun's do), and that
    Python itself: the pre-flight examines that venv, not envdoctor's own."""
    tool = tmp_path / "train-tool"
    tool.write_text("#!%s\nprint('ran')\n" % cuda_venv)
    tool.chmod(0o755)
    report = tmp_path / "run.json"
    env = {"ENVDOCTOR_CUDA_DRIVER": OLD_DRIVER}
    for command in ([str(tool)], [cuda_venv, "-c", "print('ran')"]):
        done = envdoctor("run", "--report", str(report), "--", *command, env=env)
        assert done.returncode == 1, done.stderr
        assert done.stdout == "" and "[error] CUDA-DRIVER-TOO-OLD" in done.stderr
        result = json.loads(report.read_text())
        assert result["launch"]["python"] == cuda_venv
    done = envdoctor("run", "--", sys.executable, "-c", "print('ran')", env=env)  # envdoctor's own: no torch here
    assert done.returncode == 0 and done.stdout == "ran\n", done.stderr


def test_rival_causes_ranked_by_what_the_output_printed(cuda_venv, tmp_path):
    """Three records share the position_ids assertion; the xtuner version the output printed
    (line 21) ranks them, as explain does with a log file."""
    assertion = "    assert position_ids is not None and (position_ids.max() + 1) >= kv_seq_len"
    lines = ["step %d loss 1.0" % i for i in range(20)] + [
        "Successfully installed xtuner-0.1.18 transformers-4.39.3",
        "Traceback (most recent call last):",
        '  File "/opt/conda/lib/python3.10/site-packages/xtuner/model/modules/dispatch/internlm2.py", line 88, in forward',
        "    out = layer(x)", assertion, "AssertionError"]
    report = tmp_path / "run.json"
    command = py("import sys; print(%r); sys.exit(1)" % "\n".join(lines))
    done = envdoctor("run", "--no-check", "--python", cuda_venv, "--report", str(report), "--", *command)
    assert done.returncode == 1, done.stderr
    (match,) = json.loads(report.read_text())["diagnosis"]["matches"]
    assert match["lines"][0]["line"] == 25
    first = match["records"][0]
    assert first["id"] == "XTUNER-POSITION-IDS-SP-PADDING", [r["id"] for r in match["records"]]
    assert first["log_evidence"] == ["the log prints xtuner 0.1.18 (line 21), inside >=0.1.18,<0.1.20"]


def test_a_closed_reader_ends_the_command_as_without_us():
    """`envdoctor run -- CMD | head -1`: CMD meets the closed pipe (SIGPIPE), as it would bare."""
    printer = ("import itertools, signal\nsignal.signal(signal.SIGPIPE, signal.SIG_DFL)  # as a C program has it\n"
               "for i in itertools.count():\n    print(i)\n")
    proc = subprocess.Popen([sys.executable, "-m", "envdoctor", "run", "--no-check", "--", *py(printer)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env_with_repo())
    assert proc.stdout.readline() == b"0\n"
    proc.stdout.close()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGPIPE, err
    assert err == b""  # ended on purpose: no diagnosis


def test_report_hides_credentials_of_urls(tmp_path):
    report = tmp_path / "run.json"
    url = "https://user:s3cret@pypi.example.com/simple"
    done = envdoctor("run", "--no-check", "--report", str(report), "--", *py("import sys; print(%r); sys.exit(4)" % url), url)
    assert done.returncode == 4
    assert url in done.stdout  # the command's own output is its own
    text = report.read_text()
    assert "s3cret" not in text and "https://user:****@pypi.example.com/simple" in text


def test_an_ignored_hangup_stays_ignored_for_the_command():
    """Under nohup (SIGHUP ignored) the command must not lose that protection through us."""
    def ignore_hangup():
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    check = "import signal; print(signal.getsignal(signal.SIGHUP) == signal.SIG_IGN)"
    done = subprocess.run([sys.executable, "-m", "envdoctor", "run", "--no-check", "--", *py(check)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=env_with_repo(), preexec_fn=ignore_hangup, timeout=60)
    assert (done.returncode, done.stdout) == (0, b"True\n"), done.stderr
    done = subprocess.run([sys.executable, "-m", "envdoctor", "run", "--no-check", "--", *py(check)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=env_with_repo(), timeout=60)
    assert (done.returncode, done.stdout) == (0, b"False\n"), done.stderr


def test_a_slow_pattern_does_not_stall_the_command(tmp_path):
    """A user's record whose pattern backtracks on a long line of digits: bounded per line."""
    kb = tmp_path / "kb" / "mine"
    kb.mkdir(parents=True)
    (kb / "slow.toml").write_text(
        'id = "MY-SLOW"\nsummary = "slow"\nseverity = "error"\ndetails = "slow"\n'
        '[[affected]]\npackage = "xtuner"\nintroduced = "0.1.0"\n'
        '[[symptoms]]\npattern = \'\\d+\\s*\\w+x\'\nexample = "12 abx"\n'
        '[remedy]\nsummary = "none"\n[[references]]\nurl = "https://github.com/InternLM/xtuner/issues/1"\n')
    started = time.monotonic()
    done = envdoctor("run", "--no-check", "--kb", str(tmp_path / "kb"), "--",
                     *py("import sys; print('1' * 20000); print('done'); sys.exit(5)"), env={"ENVDOCTOR_PATTERN_BUDGET": "0.5"})
    assert time.monotonic() - started < 30
    assert done.returncode == 5, done.stderr
    assert done.stdout.endswith("done\n")
    assert "ran out of time (0.5s)" in done.stderr
