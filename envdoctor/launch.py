"""What a training command line says about the training it starts: the XTuner config, the
launcher and the number of processes (one per GPU).

Reads the words of the command only (and the environment it will get); runs nothing, opens
no file. Understood: ``xtuner train CONFIG [--deepspeed X]``, ``torchrun`` /
``python -m torch.distributed.run|launch`` (``--nproc_per_node``, ``--nnodes``),
``deepspeed`` (``--num_gpus``, ``--num_nodes``), ``srun`` (``-n``/``--ntasks``), ``python
SCRIPT ... --deepspeed CFG`` (the Hugging Face Trainer's switch), and the wrappers ``env
VAR=VALUE``, ``nohup``, ``time``. Anything else is a plain command: nothing is read from it.
"""

import os
from typing import Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from envdoctor.sources import run as run_facts


class Launch(NamedTuple):
    program: str  # the command's own program name, e.g. "xtuner"
    config: Optional[str] = None  # the XTuner config file named on the command line
    launcher: Optional[str] = None  # deepspeed, torchrun or slurm; None: the command does not say
    gpus: Optional[int] = None  # processes the launch starts, from its options or its environment
    notes: Tuple[str, ...] = ()  # what was seen but could not be used, in words
    python: Optional[str] = None  # the interpreter the command runs: itself, or its script's #! line


# srun options that take no value (the rest take one, as `-n 8` or `--ntasks 8`).
SRUN_FLAGS = {"-l", "--label", "-u", "--unbuffered", "-v", "--verbose", "-Q", "--quiet", "-O", "--overcommit",
              "--exclusive", "--pty", "-K", "--kill-on-bad-exit", "-X", "--disable-status", "-Z", "--no-allocate",
              "-E", "--preserve-env", "-k", "--no-kill", "-s", "--oversubscribe", "-H", "--hold", "--multi-prog"}
# torchrun and deepspeed options that take no value.
TORCHRUN_FLAGS = {"--standalone", "--no-python", "--no_python", "-m", "--module", "--run-path", "--run_path",
                  "--no_local_rank", "--no-local-rank", "--use_env", "--use-env"}
DEEPSPEED_FLAGS = {"--no_python", "--no_local_rank", "--force_multi", "--autotuning", "--elastic_training",
                   "--no_ssh_check", "--save_pid", "--enable_each_rank_log", "--bind_cores_to_rank", "-m", "--module"}
WRAPPERS = {"nohup", "time", "stdbuf", "nice", "numactl", "taskset"}


def _option(args: Sequence[str], i: int, names: Sequence[str]) -> Tuple[Optional[str], int]:
    """The value of option ``args[i]`` when it is one of ``names`` (``--x V`` or ``--x=V``), and
    how many words it took (0: not one of them)."""
    word = args[i]
    for name in names:
        if word == name:
            return (args[i + 1] if i + 1 < len(args) else None), 2
        if word.startswith(name + "=") and name.startswith("--"):
            return word[len(name) + 1:], 1
        if len(name) == 2 and word.startswith(name) and len(word) > 2 and not name.startswith("--"):
            return word[2:], 1  # -n8
    return None, 0


def _split_launcher(args: Sequence[str], flags: set, wanted: Dict[str, Sequence[str]]) -> Tuple[Dict[str, str], int]:
    """Read a launcher's own options up to the program it starts: (values of ``wanted``, index of
    the program). An option not in ``flags`` takes the next word as its value."""
    found: Dict[str, str] = {}
    i = 0
    while i < len(args):
        word = args[i]
        if word == "--":
            return found, i + 1
        if not word.startswith("-") or word == "-":
            return found, i
        taken = 0
        for key, names in wanted.items():
            value, taken = _option(args, i, names)
            if taken:
                if value is not None:
                    found[key] = value
                break
        if not taken:
            taken = 1 if word in flags or "=" in word else 2
            if word.startswith("-") and not word.startswith("--") and len(word) > 2:
                taken = 1  # -n8, -lv: value or flags joined to the letter
        i += taken
    return found, len(args)


def _count(text: Optional[str], what: str, notes: List[str]) -> Optional[int]:
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        notes.append("%s %s: not a number of processes; the count is unknown" % (what, text))
        return None
    return value if value >= 1 else None


def _nodes(text: Optional[str], what: str, notes: List[str]) -> Optional[int]:
    """``--nnodes 2`` or an elastic range ``1:4`` (then unknown: the count changes as nodes come)."""
    if text is not None and ":" in text:
        low, _, high = text.partition(":")
        if low == high:
            return _count(low, what, notes)
        notes.append("%s %s: an elastic range; the process count is unknown" % (what, text))
        return None
    return _count(text, what, notes)


def _strip_wrappers(argv: Sequence[str], env: Dict[str, str]) -> List[str]:
    """Drop ``env VAR=V``, ``nohup``, ``time`` and the like in front of the real program."""
    args = list(argv)
    while args:
        name = os.path.basename(args[0])
        if name == "env":
            args = args[1:]
            while args and (args[0].startswith("-") or "=" in args[0]):
                if "=" in args[0] and not args[0].startswith("-"):
                    key, _, value = args[0].partition("=")
                    env[key] = value
                args = args[1:]
        elif name in WRAPPERS:
            args = args[1:]
            while args and args[0].startswith("-"):
                args = args[1:]
        else:
            return args
    return args


def _python_module(args: Sequence[str]) -> Tuple[Optional[str], List[str]]:
    """For ``python [-u ...] -m MOD ARGS`` or ``python SCRIPT ARGS``: (MOD or SCRIPT, ARGS)."""
    i = 1
    while i < len(args):
        word = args[i]
        if word == "-m" and i + 1 < len(args):
            return args[i + 1], list(args[i + 2:])
        if word.startswith("-m") and len(word) > 2:
            return word[2:], list(args[i + 1:])
        if word in ("-c", "-"):
            return None, []
        if word.startswith("-"):
            i += 2 if word in ("-W", "-X") else 1
            continue
        return word, list(args[i + 1:])
    return None, []


def _is_python(name: str) -> bool:
    return name == "python" or (name.startswith("python") and name[6:].replace(".", "").isdigit())


def _xtuner_train(args: Sequence[str], launch: Dict[str, object]) -> None:
    """``xtuner train`` (or XTuner's tools/train.py) arguments: the config and --deepspeed."""
    for i, word in enumerate(args):
        if word == "--deepspeed" or word.startswith("--deepspeed="):
            launch["launcher"] = "deepspeed"
        if "config" not in launch and not word.startswith("-") and (i == 0 or not args[i - 1].startswith("--")):
            launch["config"] = word


def _script(script: str, args: Sequence[str], launch: Dict[str, object]) -> None:
    """A training script: XTuner's own train entry, or any script (--deepspeed marks DeepSpeed)."""
    normal = script.replace("\\", "/")
    if normal in ("xtuner.tools.train",) or normal.endswith("xtuner/tools/train.py"):
        _xtuner_train(args, launch)
    elif any(w == "--deepspeed" or w.startswith("--deepspeed=") for w in args):
        launch["launcher"] = "deepspeed"


def _program(args: List[str], launch: Dict[str, object], notes: List[str], depth: int = 0) -> None:
    if not args or depth > 4:
        return
    name = os.path.basename(args[0])
    if name != "srun":
        launch["program"] = args[0]
    if name == "xtuner":
        if len(args) > 1 and args[1] == "train":
            _xtuner_train(args[2:], launch)
        return
    if name == "srun":
        found, start = _split_launcher(args[1:], SRUN_FLAGS, {"ntasks": ("-n", "--ntasks")})
        launch.setdefault("launcher", "slurm")
        launch.setdefault("gpus", _count(found.get("ntasks"), "srun --ntasks", notes))
        _program(args[1 + start:], launch, notes, depth + 1)
        return
    module = None
    if _is_python(name):
        module, rest = _python_module(args)
        if module in ("torch.distributed.run", "torch.distributed.launch"):
            args, name = ["torchrun"] + rest, "torchrun"
        elif module is not None:
            _script(module, rest, launch)
            return
    if name == "torchrun":
        found, start = _split_launcher(args[1:], TORCHRUN_FLAGS, {
            "nproc": ("--nproc_per_node", "--nproc-per-node"), "nnodes": ("--nnodes",)})
        _launched(found, "torchrun", ("--nproc_per_node", "--nnodes"), launch, notes)
        launch["launcher"] = "torchrun"
        if start < len(args) - 1:
            _script(args[1 + start], args[2 + start:], launch)
        return
    if name == "deepspeed":
        found, start = _split_launcher(args[1:], DEEPSPEED_FLAGS, {
            "nproc": ("--num_gpus", "--num-gpus"), "nnodes": ("--num_nodes", "--num-nodes")})
        _launched(found, "deepspeed", ("--num_gpus", "--num_nodes"), launch, notes)
        launch["launcher"] = "deepspeed"
        if start < len(args) - 1:
            _script(args[1 + start], args[2 + start:], launch)


def _launched(found: Dict[str, str], program: str, names: Tuple[str, str], launch: Dict[str, object], notes: List[str]) -> None:
    per_node = found.get("nproc")
    if per_node in ("gpu", "auto", "cpu"):
        notes.append("%s %s=%s: the count comes from the machine; pass --gpus N" % (program, names[0], per_node))
        return
    nproc = _count(per_node, "%s %s" % (program, names[0]), notes)
    nodes = _nodes(found.get("nnodes"), "%s %s" % (program, names[1]), notes) if "nnodes" in found else 1
    if nproc is not None and nodes is not None:
        launch["gpus"] = nproc * nodes  # the launcher's count wins over srun's tasks around it


def read(argv: Sequence[str], environ: Mapping[str, str]) -> Launch:
    """The facts the command line ``argv`` gives, with ``environ`` the environment it runs in."""
    env = dict(environ)
    args = _strip_wrappers(argv, env)
    launch: Dict[str, object] = {}
    notes: List[str] = []
    _program(args, launch, notes)
    if launch.get("gpus") is None:
        launch.pop("gpus", None)
        from_env = run_facts.gather(None, None, env)
        gpus = from_env.values.get("run.gpus")
        if isinstance(gpus, int):
            launch["gpus"] = gpus
        if "launcher" not in launch and "run.launcher" in from_env.values:
            launch["launcher"] = from_env.values["run.launcher"]
    program = str(launch.get("program") or (args[0] if args else ""))
    return Launch(os.path.basename(program), launch.get("config"), launch.get("launcher"), launch.get("gpus"),  # type: ignore[arg-type]
                  tuple(notes), interpreter(program, env.get("PATH")))


def interpreter(program: str, path: Optional[str]) -> Optional[str]:
    """The Python that ``program`` runs: itself when it is one, else the interpreter on its
    ``#!`` line (``xtuner``, ``torchrun``, ``deepspeed`` are such scripts). Reads the first
    line only; None when it is not a Python program or cannot be found."""
    import shutil

    found = shutil.which(program, path=path) if program else None
    if found is None:
        return None
    if _is_python(os.path.basename(found)):
        return found
    try:
        with open(found, "rb") as stream:
            first = stream.readline(512)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode("utf-8", "replace").split()
    if words and os.path.basename(words[0]) == "env":
        words = [w for w in words[1:] if not w.startswith("-")]
        return shutil.which(words[0], path=path) if words and _is_python(words[0]) else None
    return words[0] if words and _is_python(os.path.basename(words[0])) else None
