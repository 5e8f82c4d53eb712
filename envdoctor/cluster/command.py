"""The two cluster commands, between the command line and the analysis: compare (report
files) and check --distributed (reports gathered from the ranks). Rendering and printing are
the caller's (``render`` and ``emit``)."""

import gc
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from envdoctor.cluster.drift import Cluster, analyse
from envdoctor.cluster.nodes import NodeReport, read, validate
from envdoctor.kb.load import KnowledgeBase, load_kb
from envdoctor.options import CheckOptions

Render = Callable[[Cluster], str]


def compare(paths: Sequence[str], kb: KnowledgeBase, fail_on: str, require_gpu: bool = False) -> Cluster:
    """Raises nodes.ReportError (a file is not a report) or table.TableError."""
    # Reports are trees of dicts and strings, no cycles: the cycle collector would only scan
    # the growing heap again and again (measured: about a third of the time at 10,000 nodes).
    paused = gc.isenabled()
    gc.disable()
    try:
        shared: Dict[Any, Any] = {}
        nodes = [read(path, shared=shared) for path in paths]
        return analyse(nodes, kb, fail_on, require_gpu)
    finally:
        if paused:
            gc.enable()


def check_distributed(options: CheckOptions, fail_on: str, timeout: float, render: Render,
                      emit: Callable[[str], None]) -> int:
    """Take part in the job; on rank 0, print the cluster report. The exit code every rank shares.

    Raises launch.LaunchError or distributed.DistributedError when the job cannot be joined."""
    from envdoctor import check
    from envdoctor.cluster import distributed
    from envdoctor.render.json import report_dict

    kb = load_kb(options.extra_kb)

    def probe() -> Dict[str, Any]:
        report = check.run(options, kb)
        return report_dict(report._replace(fail_on=fail_on))

    def finish(missing: List[str], gathered: List[Tuple[str, List[int], Optional[Dict[str, Any]]]]) -> int:
        nodes = []
        for label, ranks, report in gathered:
            if report is None:  # cannot happen with an honest LOCAL_RANK; say so if it does
                missing.append("%s (ranks %s): no rank with local rank 0 sent a report" % (label, ranks))
                continue
            nodes.append(NodeReport(label, validate(report, label), tuple(sorted(ranks))))
        cluster = analyse(nodes, kb, fail_on, options.require_gpu, missing, source="torch.distributed")
        emit(render(cluster))
        return cluster.exit_code

    return distributed.run(probe, finish, timeout)
