"""Benchmark: what one API-history lookup costs in a fresh process (goal, issue 16: under 50 ms).

    python bench/bench_history_lookup.py [--runs 7]

Each run is a new interpreter that imports the history loader and answers one question, so the
time includes reading the index, the package's main file and the one shard the question needs
(nothing is cached between runs but the OS's file cache). Reported: median wall time of the lookup
itself (from before the import to the answer) and the bytes of history files it read.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

LOOKUPS = {
    "transformers name": "h.package('transformers').has_name('transformers.models.llama.modeling_llama', "
                         "'LlamaFlashAttention2', '4.42.4')",
    "transformers keyword": "h.package('transformers').accepts('transformers.training_args.TrainingArguments', "
                            "'evaluation_strategy', '4.48.3')",
    "torch module": "h.package('torch').has_module('torch.distributed.fsdp', '2.4.1')",
    "xtuner template key": "member_defined('xtuner', 'xtuner.utils', 'PROMPT_TEMPLATE', 'internlm2_chat', '0.1.11')",
    "model type": "h.package('transformers').knows_model_type('qwen3', '4.50.3')",
}

PROGRAM = r"""
import builtins, json, os, sys, time
read = []
real_open = builtins.open
def counting_open(path, *a, **k):
    if isinstance(path, str) and os.sep + "history" + os.sep in path:
        read.append(os.path.getsize(path))
    return real_open(path, *a, **k)
builtins.open = counting_open
t = time.perf_counter()
from envdoctor.history.load import load_history
from envdoctor.history.members import member_defined
h = load_history()
answer = %s
took = time.perf_counter() - t
print(json.dumps({"seconds": took, "answer": answer, "bytes": sum(read), "files": len(read)}))
"""


def one(expr: str) -> dict:
    done = subprocess.run([sys.executable, "-c", PROGRAM % expr], cwd=REPO, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, check=True)
    return json.loads(done.stdout)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    print("%-22s %10s %8s %10s  %s" % ("lookup", "median ms", "files", "bytes", "answer"))
    for label, expr in LOOKUPS.items():
        runs = [one(expr) for _ in range(args.runs)]
        ms = statistics.median(r["seconds"] for r in runs) * 1000
        print("%-22s %10.1f %8d %10d  %s" % (label, ms, runs[0]["files"], runs[0]["bytes"], runs[0]["answer"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
