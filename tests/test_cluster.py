"""The cluster check: check --distributed under a real torchrun (gloo, CPU torch), and
compare on reports made here, bad ones included."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

from builders import REPO, check_json, envdoctor

# Each rank runs this wrapper: it sets the rank's own probe inputs (as a node's own
# environment would differ), runs envdoctor as a child and records its exit code and
# output, then exits 0 itself so that torchrun lets the other ranks finish.
WRAPPER = textwrap.dedent("""\
    import json, os, subprocess, sys
    rank = int(os.environ["RANK"])
    plan = json.load(open(sys.argv[1]))
    mine = plan["ranks"][str(rank)]
    if mine.get("skip"):
        sys.exit(0)  # this rank leaves before it joins
    env = dict(os.environ)
    for key, value in mine.get("env", {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    done = subprocess.run([sys.executable, "-m", "envdoctor", "check", "--distributed"] + mine.get("args", []) + plan["args"],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = os.path.join(plan["out"], "rank%d" % rank)
    with open(out + ".json", "w") as handle:
        json.dump({"rc": done.returncode, "stdout": done.stdout, "stderr": done.stderr}, handle)
""")


def torchrun(torch_venv, tmp_path, ranks, args=(), nproc=3):
    """Run the wrapper under torchrun; each rank's {rc, stdout, stderr}."""
    wrapper = tmp_path / "wrapper.py"
    wrapper.write_text(WRAPPER)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"ranks": {str(r): v for r, v in ranks.items()}, "args": list(args), "out": str(tmp_path)}))
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS="1", NO_COLOR="1")
    done = subprocess.run([torch_venv.python, "-m", "torch.distributed.run", "--nproc_per_node=%d" % nproc,
                           "--standalone", str(wrapper), str(plan)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=str(tmp_path), timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    out = {}
    for rank, spec in ranks.items():
        if not spec.get("skip"):
            with open(str(tmp_path / ("rank%d.json" % rank))) as handle:
                out[rank] = json.load(handle)
    return out


def as_node(rank, **env):
    """A rank that acts as a node of its own: local rank 0 of node number `rank`."""
    env.update(LOCAL_RANK="0", LOCAL_WORLD_SIZE="1", GROUP_RANK=str(rank))
    return env


def test_distributed_names_drift_values_and_ranks(torch_venv, venvs, tmp_path):
    """Three nodes; node 2 has another NVIDIA driver and another transformers."""
    common = venvs("xtuner==0.1.18", "transformers==4.42.4", "torch==2.1.2+cu121").python
    other = venvs("xtuner==0.1.18", "transformers==4.40.0", "torch==2.1.2+cu121").python
    ranks = {
        0: {"env": as_node(0, ENVDOCTOR_CUDA_DRIVER="535.104.05"), "args": ["--python", common]},
        1: {"env": as_node(1, ENVDOCTOR_CUDA_DRIVER="535.104.05"), "args": ["--python", common]},
        2: {"env": as_node(2, ENVDOCTOR_CUDA_DRIVER="470.57.02"), "args": ["--python", other]},
    }
    runs = torchrun(torch_venv, tmp_path, ranks, ["--format", "json", "--timeout", "120"])
    assert {r["rc"] for r in runs.values()} == {1}, runs  # drift: the same non-zero code on every rank
    assert runs[1]["stdout"] == runs[2]["stdout"] == ""  # rank 0 alone reports
    report = json.loads(runs[0]["stdout"])
    assert report["schema"] == "envdoctor.cluster/1" and report["source"] == "torch.distributed"
    assert [n["ranks"] for n in report["nodes"]] == [[0], [1], [2]]
    drift = {d["fact"]: d for d in report["drift"]}
    driver = drift["cuda.driver"]
    assert driver["must_agree"] is True
    assert [(v["value"], v["ranks"]) for v in driver["values"]] == [("535.104.05", [0, 1]), ("470.57.02", [2])]
    assert [(v["value"], v["ranks"]) for v in drift["pkg.transformers"]["values"]] == [("4.42.4", [0, 1]), ("4.40.0", [2])]
    assert drift["python.executable"]["must_agree"] is False  # another venv path: harmless by the table
    assert report["environments"] == 2
    # Findings once per distinct environment: the old driver's finding only on rank 2's node.
    ids = [f["id"] for f in report["findings"]]
    assert len(ids) == len(set(ids))
    old_driver = [f for f in report["findings"] if f["id"] == "CUDA-DRIVER-TOO-OLD"]
    assert old_driver and old_driver[0]["ranks"] == [2]


def test_distributed_probes_once_per_node(torch_venv, venvs, tmp_path):
    """One node, three local ranks: only local rank 0 probes, so the other ranks' inputs do not count."""
    python = venvs("transformers==4.42.4").python
    ranks = {0: {"env": {"ENVDOCTOR_CUDA_DRIVER": "535.104.05"}},
             1: {"env": {"ENVDOCTOR_CUDA_DRIVER": "470.57.02"}},
             2: {"env": {"ENVDOCTOR_CUDA_DRIVER": "not-a-driver"}}}  # would fail the probe, were it run
    runs = torchrun(torch_venv, tmp_path, ranks, ["--python", python, "--timeout", "120"])
    assert {r["rc"] for r in runs.values()} == {0}, runs
    text = runs[0]["stdout"]
    assert "check --distributed: 1 node (3 ranks), 1 distinct environment" in text
    assert "every fact that must agree does" in text
    assert "ranks 0-2" in text or "all 1 node" not in text


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_distributed_rank_that_never_joins(torch_venv, venvs, tmp_path):
    """Through Slurm's variables (as srun sets them), with rank 0 hosting the store: rank 2
    leaves before joining; the others name it and exit alike, within --timeout."""
    python = venvs("transformers==4.42.4").python
    port = str(free_port())

    def slurm(rank):
        env = {name: None for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK",
                                       "MASTER_ADDR", "TORCHELASTIC_USE_AGENT_STORE")}
        env.update(SLURM_PROCID=str(rank), SLURM_NTASKS="3", SLURM_LOCALID="0", SLURM_NODEID=str(rank),
                   SLURM_JOB_NODELIST="127.0.0.1", MASTER_PORT=port)
        return env

    ranks = {0: {"env": slurm(0), "args": ["--python", python]},
             1: {"env": slurm(1), "args": ["--python", python]},
             2: {"skip": True}}
    runs = torchrun(torch_venv, tmp_path, ranks, ["--timeout", "6"])
    assert {r["rc"] for r in runs.values()} == {2}, runs
    text = runs[0]["stdout"]
    assert "rank 2 never joined within --timeout 6s" in text
    assert "2 nodes (2 ranks)" in text  # the ranks that came are still compared
    assert "Traceback" not in runs[0]["stderr"] + runs[1]["stderr"]


def test_distributed_outside_a_launcher_is_one_line():
    done = envdoctor("check", "--distributed", env={"RANK": "", "WORLD_SIZE": "", "SLURM_PROCID": "", "SLURM_NTASKS": ""})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "envdoctor: --distributed: no RANK and WORLD_SIZE (torchrun) nor SLURM_PROCID and SLURM_NTASKS (srun) "
        "in the environment; start envdoctor with the job's launcher"]


def test_timeout_without_distributed_is_a_usage_error():
    done = envdoctor("check", "--timeout", "5")
    assert done.returncode == 2
    assert done.stderr.strip() == "envdoctor: --timeout applies only with --distributed (use --probe-timeout for nvidia-smi and nvcc)"


def test_distributed_without_torch_is_one_line(venvs):
    """The test interpreter has no torch: a clear line, exit 2 (on every rank alike)."""
    done = envdoctor("check", "--distributed", env={"RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29999"})
    assert done.returncode == 2
    assert done.stderr.startswith("envdoctor: --distributed needs torch in the interpreter that runs envdoctor")
    assert len(done.stderr.strip().splitlines()) == 1


# -- compare -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reports(venvs, tmp_path_factory):
    """Reports of `check --format json` from two environments, as files."""
    folder = tmp_path_factory.mktemp("reports")
    a = venvs("xtuner==0.1.18", "transformers==4.42.4", "torch==2.1.2+cu121").python
    b = venvs("xtuner==0.1.18", "transformers==4.40.0", "torch==2.1.2+cu121").python
    made = {
        "a1": check_json("--python", a, env={"ENVDOCTOR_CUDA_DRIVER": "535.104.05"}),
        "b": check_json("--python", b, env={"ENVDOCTOR_CUDA_DRIVER": "535.104.05"}),
    }
    paths = {}
    for name, report in made.items():
        paths[name] = str(folder / (name + ".json"))
        with open(paths[name], "w") as handle:
            json.dump(report, handle)
    return folder, made, paths


def write(folder, name, report):
    path = str(folder / name)
    with open(path, "w") as handle:
        json.dump(report, handle)
    return path


def compare_json(*args):
    done = envdoctor("compare", "--format", "json", *args)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def test_compare_names_the_drift(reports):
    folder, made, paths = reports
    code, out = compare_json(paths["a1"], paths["b"])
    assert code == 1
    drift = {d["fact"]: d for d in out["drift"]}
    assert [(v["value"], v["nodes"]) for v in drift["pkg.transformers"]["values"]] == [
        ("4.42.4", [paths["a1"]]), ("4.40.0", [paths["b"]])]
    text = envdoctor("compare", paths["a1"], paths["b"])
    assert text.returncode == 1
    assert "Must agree, but differ between nodes" in text.stdout and "pkg.transformers" in text.stdout
    markdown = envdoctor("compare", "--format", "markdown", paths["a1"], paths["b"])
    assert "| `pkg.transformers` | ❌ yes | 4.42.4 |" in markdown.stdout


def test_compare_identical_nodes_agree(reports, tmp_path):
    folder, made, paths = reports
    copy = write(tmp_path, "a2.json", made["a1"])
    code, out = compare_json(paths["a1"], copy)
    assert out["drift"] == [] and out["environments"] == 1
    assert code == made["a1"]["exit_code"]  # the nodes' own findings decide, nothing else
    for finding in out["findings"]:
        assert finding["nodes"] == [paths["a1"], copy]


def test_drift_table_decides_what_may_differ(reports, tmp_path):
    """nvcc may differ on nodes that train from wheels, not where DeepSpeed compiles with it."""
    folder, made, paths = reports
    one, two = json.loads(json.dumps(made["a1"])), json.loads(json.dumps(made["a1"]))
    one["facts"]["nvcc"], two["facts"]["nvcc"] = "12.1", "12.4"
    code, out = compare_json(write(tmp_path, "n1.json", one), write(tmp_path, "n2.json", two))
    assert [(d["fact"], d["must_agree"]) for d in out["drift"]] == [("nvcc", False)]
    assert code == made["a1"]["exit_code"]
    for report in (one, two):
        report["facts"]["pkg.deepspeed"] = "0.14.4"
    code, out = compare_json(write(tmp_path, "d1.json", one), write(tmp_path, "d2.json", two))
    assert [(d["fact"], d["must_agree"]) for d in out["drift"]] == [("nvcc", True)]
    assert code == 1
    # A team's own table (--kb DIR/tables/drift.toml) is consulted before the shipped one.
    kb = tmp_path / "kb" / "tables"
    kb.mkdir(parents=True)
    (kb / "drift.toml").write_text('[[rule]]\nkey = "nvcc"\nagree = false\nwhy = "we never compile on the nodes"\n')
    done = envdoctor("compare", "--kb", str(tmp_path / "kb"), "--format", "json", str(tmp_path / "d1.json"), str(tmp_path / "d2.json"))
    assert json.loads(done.stdout)["drift"][0]["why"] == "we never compile on the nodes"


@pytest.mark.parametrize("content, message", [
    ("TRUNCATED", "truncated: the JSON ends after"),
    ("{not json", "not valid JSON (line 1, column 2"),
    ("", "empty file, not a JSON report"),
    ("[1, 2]", "not an envdoctor check report (a JSON list, not an object)"),
    ('{"schema": "envdoctor.check/2", "facts": {}}', "report schema envdoctor.check/2, but this envdoctor reads envdoctor.check/1"),
    ('{"schema": "envdoctor.explain/1"}', "not an envdoctor check report (schema 'envdoctor.explain/1'"),
    ('{"schema": "envdoctor.check/1", "facts": [], "unknown_facts": {}, "problems": [], "findings": [], "exit_code": 0}',
     "malformed report: 'facts' is missing or not a JSON object"),
])
def test_compare_bad_report_is_one_line(reports, tmp_path, content, message):
    folder, made, paths = reports
    if content == "TRUNCATED":
        text = open(paths["a1"]).read()
        content = text[: len(text) // 2]
    bad = tmp_path / "node7.json"
    bad.write_text(content)
    done = envdoctor("compare", paths["a1"], str(bad))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("envdoctor: %s: " % bad), done.stderr
    assert message in lines[0]
    assert done.stdout == ""


def test_compare_missing_file_and_bad_table(reports, tmp_path):
    folder, made, paths = reports
    done = envdoctor("compare", paths["a1"], str(tmp_path / "absent.json"))
    assert done.returncode == 2 and done.stderr.strip() == "envdoctor: %s: cannot read (No such file or directory)" % (tmp_path / "absent.json")
    kb = tmp_path / "kb" / "tables"
    kb.mkdir(parents=True)
    (kb / "drift.toml").write_text('[[rule]]\nkey = "nvcc"\nagree = "no"\nwhy = "x"\n')
    done = envdoctor("compare", "--kb", str(tmp_path / "kb"), paths["a1"])
    assert done.returncode == 2 and done.stderr.strip() == "envdoctor: %s: rule[0]: agree must be true or false" % (kb / "drift.toml")
    lint = envdoctor("kb", "lint", str(tmp_path / "kb"))
    assert lint.returncode == 1 and "%s: rule[0]: agree must be true or false" % (kb / "drift.toml") in lint.stdout.splitlines()
    assert envdoctor("kb", "lint").returncode == 0  # the shipped table is valid


def test_launcher_variables():
    from envdoctor.cluster.launch import first_host, from_environ

    assert first_host("gpu[03-05,09],cpu1") == "gpu03"
    assert first_host("a1,b2") == "a1" and first_host("n[7]-ib") == "n7-ib"
    slurm = from_environ({"SLURM_PROCID": "5", "SLURM_NTASKS": "16", "SLURM_LOCALID": "1", "SLURM_NODEID": "1",
                          "SLURM_NTASKS_PER_NODE": "8(x2)", "SLURM_JOB_NODELIST": "gpu[03-04]", "SLURM_JOB_ID": "123456"}, host="gpu04")
    assert (slurm.rank, slurm.world, slurm.local_rank, slurm.local_world, slurm.master_addr, slurm.master_port) == (5, 16, 1, 8, "gpu03", 23456)
    assert not slurm.probes and slurm.label == "node 1 (gpu04)"
    plain = from_environ({"RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "h0"}, host="h0")
    assert plain.probes and plain.master_port == 29500 and plain.label == "h0"
