"""check --distributed: every node probes itself, rank 0 compares, every rank exits alike.

The job's own launcher and torch.distributed carry the reports; we build no transport. A
TCPStore (torchrun's agent store when it offers one, else one hosted by rank 0) counts who
arrived and passes the verdict; the reports travel in one gloo ``gather_object`` (no GPU
needed). Every wait has the deadline of ``--timeout``: a rank that never comes is named, and
the ranks that did come all exit with the same code. torch is imported here and only here.
"""

import json
import os
import time
import warnings
from datetime import timedelta
from typing import Any, Callable, Dict, List, Optional, Tuple

from envdoctor.cluster.launch import Launch, from_environ

POLL = 0.05  # seconds between looks at the store while waiting for the ranks
GOODBYE = 10.0  # seconds rank 0 waits for the others to take the verdict before leaving


class DistributedError(RuntimeError):
    """The job cannot be joined (no launcher, no torch, no rank 0); one line, exit 2."""


def _payload(launch: Launch, report: Optional[Dict[str, Any]]) -> str:
    """What each rank sends rank 0: its node and, on a probing rank, the node's report."""
    return json.dumps({"rank": launch.rank, "node": launch.node, "label": launch.label, "report": report})


def _import_torch():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Failed to initialize NumPy": noise for a probe
            import torch.distributed as dist
    except ImportError as exc:
        raise DistributedError("--distributed needs torch in the interpreter that runs envdoctor (%s)" % exc)
    if not dist.is_available() or not dist.is_gloo_available():
        raise DistributedError("--distributed needs torch.distributed with the gloo backend, which this torch build lacks")
    return dist


def _store(dist, launch: Launch, timeout: float):
    # torchrun's agent already hosts a store at MASTER_ADDR:MASTER_PORT (it says so in
    # TORCHELASTIC_USE_AGENT_STORE); every rank is then its client. Otherwise rank 0 hosts it.
    agent = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    host = launch.rank == 0 and not agent
    try:
        store = dist.TCPStore(launch.master_addr, launch.master_port, launch.world, is_master=host,
                              timeout=timedelta(seconds=timeout), wait_for_workers=False, multi_tenant=True)
    except Exception as exc:  # torch raises its own RuntimeError subclasses
        if host:
            raise DistributedError("rank 0 cannot listen on %s:%d: %s" % (launch.master_addr, launch.master_port, _first_line(exc)))
        raise DistributedError("rank %d cannot reach rank 0's store at %s:%d within %gs: %s" % (
            launch.rank, launch.master_addr, launch.master_port, timeout, _first_line(exc)))
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    return dist.PrefixStore("envdoctor/%s/" % attempt, store)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _left(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0.01)


def _wait_count(store, key: str, want: int, deadline: float) -> bool:
    while True:
        if store.add(key, 0) >= want:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL)


def _get(store, key: str, deadline: float) -> Optional[str]:
    try:
        store.wait([key], timedelta(seconds=_left(deadline)))
        return store.get(key).decode()
    except Exception:  # the store went away (rank 0 ended) or the deadline passed
        return None


def _missing(store, world: int, timeout: float) -> List[str]:
    out = []
    for rank in range(world):
        if store.check(["ready/%d" % rank]):
            continue
        if store.check(["joined/%d" % rank]):
            out.append("rank %d joined but did not finish its probe within --timeout %gs" % (rank, timeout))
        else:
            out.append("rank %d never joined within --timeout %gs" % (rank, timeout))
    return out


def run(probe: Callable[[], Dict[str, Any]], finish: Callable[[List[str], List[Tuple[str, List[int], Optional[Dict[str, Any]]]]], int],
        timeout: float, environ=None) -> int:
    """Take part in the job; the exit code every rank shares.

    ``probe`` makes this node's report (the JSON object of check --format json). ``finish``,
    called on rank 0 only, gets the missing ranks in words and each node's (label, ranks,
    report), prints the result and returns the exit code; it runs before any rank leaves.
    """
    launch = from_environ(os.environ if environ is None else environ)
    dist = _import_torch()
    try:
        return _run(dist, launch, probe, finish, timeout)
    except DistributedError:
        raise
    except Exception as exc:  # torch's errors: one line, and the others must not wait for us
        raise DistributedError("rank %d: torch.distributed failed: %s" % (launch.rank, _first_line(exc)))


def _run(dist, launch: Launch, probe, finish, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    # Rank 0 may start up to --timeout after us and then wait --timeout for the others.
    patience = deadline + timeout + GOODBYE
    store = _store(dist, launch, timeout)
    store.set("joined/%d" % launch.rank, launch.label)
    payload = _payload(launch, probe() if launch.probes else None)
    # Kept in the store too: should a rank never come, rank 0 still compares those that did.
    store.set("payload/%d" % launch.rank, payload)
    store.set("ready/%d" % launch.rank, "1")
    store.add("ready", 1)

    if launch.rank == 0:
        if not _wait_count(store, "ready", launch.world, deadline):
            came = [r for r in range(launch.world) if store.check(["ready/%d" % r])]
            present = [store.get("payload/%d" % r).decode("utf-8") for r in came]
            code = _finish(finish, store, launch, _missing(store, launch.world, timeout), _by_node(present))
            return _leave(store, launch, "abort %d" % code, code)
        store.set("start", "go")
    else:
        start = _get(store, "start", patience)
        if start is None:
            raise DistributedError("rank %d: rank 0 ended, or gave no start within --timeout %gs" % (launch.rank, timeout))
        if start != "go":
            return _take_verdict(store, int(start.split()[1]))

    try:
        gathered = _gather(dist, store, launch, payload, deadline)
    except Exception:
        if launch.rank == 0:
            _publish(store, "abort 2")
        raise
    if launch.rank == 0:
        code = _finish(finish, store, launch, [], _by_node(gathered or []))
        return _leave(store, launch, "done %d" % code, code)
    verdict = _get(store, "verdict", patience)
    if verdict is None:
        raise DistributedError("rank %d: rank 0 ended, or gave no verdict within --timeout %gs" % (launch.rank, timeout))
    return _take_verdict(store, int(verdict.split()[1]))


def _gather(dist, store, launch: Launch, payload: str, deadline: float) -> Optional[List[str]]:
    """Every rank's payload on rank 0, over gloo. Bytes in uint8 tensors: gather_object would
    pickle (and wants numpy, which a CPU torch may lack)."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dist.init_process_group("gloo", store=dist.PrefixStore("pg/", store), rank=launch.rank,
                                world_size=launch.world, timeout=timedelta(seconds=_left(deadline)))
    try:
        data = payload.encode("utf-8")
        size = torch.tensor([len(data)], dtype=torch.int64)
        sizes = [torch.zeros(1, dtype=torch.int64) for _ in range(launch.world)] if launch.rank == 0 else None
        dist.gather(size, sizes, dst=0)
        longest = torch.tensor([len(data)], dtype=torch.int64)
        dist.all_reduce(longest, op=dist.ReduceOp.MAX)
        mine = torch.zeros(int(longest.item()), dtype=torch.uint8)
        if data:
            mine[: len(data)] = torch.frombuffer(bytearray(data), dtype=torch.uint8)
        parts = [torch.zeros_like(mine) for _ in range(launch.world)] if launch.rank == 0 else None
        dist.gather(mine, parts, dst=0)
        if parts is None or sizes is None:
            return None
        return [bytes(p[: int(n.item())].tolist()).decode("utf-8") for p, n in zip(parts, sizes)]
    finally:
        dist.destroy_process_group()


def _by_node(gathered: List[str]) -> List[Tuple[str, List[int], Optional[Dict[str, Any]]]]:
    """(label, ranks, report) per node, in the order of each node's first rank."""
    nodes: Dict[str, Tuple[str, List[int], Optional[Dict[str, Any]]]] = {}
    for text in gathered:
        item = json.loads(text)
        label, ranks, report = nodes.setdefault(item["node"], (item["label"], [], None))
        ranks.append(item["rank"])
        if item["report"] is not None and report is None:
            nodes[item["node"]] = (label, ranks, item["report"])
    return list(nodes.values())


def _finish(finish, store, launch: Launch, missing, nodes) -> int:
    try:
        return finish(missing, nodes)
    except BaseException:  # the others must not wait for a verdict that will not come
        _publish(store, "abort 2")
        raise


def _publish(store, verdict: str) -> None:
    """Best effort, on the way out after a failure."""
    try:
        store.set("verdict", verdict)
        store.set("start", verdict)
    except Exception:
        pass


def _leave(store, launch: Launch, verdict: str, code: int) -> int:
    """Rank 0: publish the verdict, then wait (briefly) until every rank has taken it, since a
    store hosted here ends with this process."""
    store.set("verdict", verdict)
    if verdict.startswith("abort"):
        store.set("start", verdict)
    waiting = store.add("ready", 0) - 1  # the ranks that came; a missing one takes nothing
    _wait_count(store, "taken", waiting, time.monotonic() + GOODBYE)
    return code


def _take_verdict(store, code: int) -> int:
    try:
        store.add("taken", 1)
    except Exception:
        pass
    return code
