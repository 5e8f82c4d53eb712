"""Source: how the training will be launched (``run.gpus``, ``run.launcher``).

From ``--gpus`` / ``--launcher`` when given, else from the variables the launchers set or
read (``WORLD_SIZE``; XTuner's ``NPROC_PER_NODE`` and ``NNODES``; Slurm's
``SLURM_NTASKS``). What cannot be told stays unknown with the option that supplies it.
DeepSpeed cannot be seen from the environment (``xtuner train --deepspeed`` runs under
torchrun), so ``run.launcher = deepspeed`` comes from ``--launcher deepspeed`` only.
"""

from typing import Dict, List, Mapping, Optional

from envdoctor.facts import Gathered, Problem, Unknown, Value

LAUNCHERS = ("deepspeed", "torchrun", "slurm", "none")


def gather(gpus: Optional[int], launcher: Optional[str], environ: Mapping[str, str]) -> Gathered:
    values: Dict[str, Value] = {}
    unknown: Dict[str, Unknown] = {}
    problems: List[Problem] = []

    if gpus is not None:
        values["run.gpus"] = gpus
    else:
        count = _gpus_from(environ, problems)
        if count is None:
            unknown["run.gpus"] = Unknown("not given, and no WORLD_SIZE, NPROC_PER_NODE or SLURM_NTASKS in the environment")
        else:
            values["run.gpus"] = count

    if launcher is not None:
        values["run.launcher"] = launcher
    else:
        guess = _launcher_from(environ)
        if guess is None:
            unknown["run.launcher"] = Unknown("not given, and the environment does not say")
        else:
            values["run.launcher"] = guess
    return Gathered(values, unknown, tuple(problems))


def _int(environ: Mapping[str, str], name: str, problems: List[Problem]) -> Optional[int]:
    raw = environ.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        problems.append(Problem("run", "environment variable %s=%r is not a number; ignored" % (name, raw)))
        return None
    if value < 1:
        problems.append(Problem("run", "environment variable %s=%r is below 1; ignored" % (name, raw)))
        return None
    return value


def _gpus_from(environ: Mapping[str, str], problems: List[Problem]) -> Optional[int]:
    world = _int(environ, "WORLD_SIZE", problems)
    if world is not None:
        return world
    per_node = _int(environ, "NPROC_PER_NODE", problems)
    if per_node is not None:
        return per_node * (_int(environ, "NNODES", problems) or 1)
    return _int(environ, "SLURM_NTASKS", problems)


def _launcher_from(environ: Mapping[str, str]) -> Optional[str]:
    if environ.get("SLURM_NTASKS") or environ.get("SLURM_JOB_ID"):
        return "slurm"
    if environ.get("TORCHELASTIC_RUN_ID") or environ.get("NPROC_PER_NODE"):
        return "torchrun"
    return None
