"""Where this process stands in a job, from the variables its launcher set.

torchrun (and any launcher of the torch.distributed "env://" kind) sets RANK, WORLD_SIZE,
LOCAL_RANK, LOCAL_WORLD_SIZE, GROUP_RANK (the node), MASTER_ADDR and MASTER_PORT. srun sets
SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_NODEID and the node list, but no master:
the first node of the step holds it, on a port derived from the job id (MASTER_ADDR and
MASTER_PORT, when exported by the job script, win).
"""

import re
import socket
from typing import Mapping, NamedTuple, Optional

DEFAULT_PORT = 29500


class LaunchError(ValueError):
    """The environment does not describe a job we can join; one line for the user."""


class Launch(NamedTuple):
    rank: int
    world: int
    local_rank: Optional[int]  # None: the launcher does not say, so every rank probes
    local_world: Optional[int]
    node: str  # the node's name in the report: its rank among nodes, else its host name
    host: str
    master_addr: str
    master_port: int
    launcher: str  # "torchrun" or "slurm"

    @property
    def probes(self) -> bool:
        """One probe per node: the node's local rank 0 (every rank when that is not known)."""
        return self.local_rank in (None, 0)

    @property
    def label(self) -> str:
        return self.host if self.node == self.host else "node %s (%s)" % (self.node, self.host)


def _int(environ: Mapping[str, str], name: str) -> Optional[int]:
    raw = environ.get(name, "").strip()
    if not raw:
        return None
    match = re.match(r"^(\d+)", raw)  # SLURM_NTASKS_PER_NODE may read "4(x2)"
    if not match:
        raise LaunchError("--distributed: %s=%r is not a number" % (name, raw))
    return int(match.group(1))


def first_host(nodelist: str) -> Optional[str]:
    """The first host of a Slurm node list: "gpu[03-05,09],cpu1" -> "gpu03"."""
    nodelist = nodelist.strip()
    if not nodelist:
        return None
    depth, end = 0, len(nodelist)
    for i, char in enumerate(nodelist):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            end = i
            break
    head = nodelist[:end]
    if "[" not in head:
        return head
    prefix, rest = head.split("[", 1)
    inner, _, suffix = rest.partition("]")
    return prefix + re.split(r"[,-]", inner)[0] + suffix


def from_environ(environ: Mapping[str, str], host: Optional[str] = None) -> Launch:
    host = host or socket.gethostname()
    if environ.get("RANK", "").strip() and environ.get("WORLD_SIZE", "").strip():
        launcher = "torchrun"
        rank, world = _int(environ, "RANK"), _int(environ, "WORLD_SIZE")
        local_rank, local_world = _int(environ, "LOCAL_RANK"), _int(environ, "LOCAL_WORLD_SIZE")
        node = environ.get("GROUP_RANK", "").strip()
    elif environ.get("SLURM_PROCID", "").strip() and environ.get("SLURM_NTASKS", "").strip():
        launcher = "slurm"
        rank, world = _int(environ, "SLURM_PROCID"), _int(environ, "SLURM_NTASKS")
        local_rank, local_world = _int(environ, "SLURM_LOCALID"), _int(environ, "SLURM_NTASKS_PER_NODE")
        node = environ.get("SLURM_NODEID", "").strip()
    else:
        raise LaunchError("--distributed: no RANK and WORLD_SIZE (torchrun) nor SLURM_PROCID and SLURM_NTASKS (srun) "
                          "in the environment; start envdoctor with the job's launcher")
    assert rank is not None and world is not None
    if world < 1 or not 0 <= rank < world:
        raise LaunchError("--distributed: rank %d is outside a world of %d" % (rank, world))
    addr = environ.get("MASTER_ADDR", "").strip()
    port = _int(environ, "MASTER_PORT")
    if launcher == "slurm":
        addr = addr or first_host(environ.get("SLURM_STEP_NODELIST") or environ.get("SLURM_JOB_NODELIST") or "") or ""
        if port is None:
            job = _int(environ, "SLURM_JOB_ID") or 0
            port = 20000 + job % 20000  # the same on every task of the job, apart between jobs
    if not addr:
        raise LaunchError("--distributed: MASTER_ADDR is not set (the host of rank 0)")
    if port is None:
        port = DEFAULT_PORT
    if not 0 < port < 65536:
        raise LaunchError("--distributed: MASTER_PORT=%d is not a port" % port)
    return Launch(rank, world, local_rank, local_world, node or host, host, addr, port, launcher)
