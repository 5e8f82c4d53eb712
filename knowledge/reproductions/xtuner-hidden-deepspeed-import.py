"""XTUNER-HIDDEN-DEEPSPEED-IMPORT: which xtuner commands work without deepspeed installed.

Runs in a venv holding one XTuner release and its declared requirements (no deepspeed).
Prints one line per step; the symptom is the ModuleNotFoundError of `import xtuner.utils`, which
xtuner.model, xtuner.dataset and so `xtuner train` import (tools/train.py).
"""
import os
import subprocess
import sys

XTUNER = [sys.executable, "-c", "from xtuner.entry_point import cli; cli()"]


def step(name, cmd):
    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    last = done.stdout.strip().splitlines()[-1:] or [""]
    print("%s: exit %d: %s" % (name, done.returncode, last[0][:300]))
    return done.returncode


print("deepspeed importable:", subprocess.run([sys.executable, "-c", "import deepspeed"],
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0)
step("import xtuner", [sys.executable, "-c", "import xtuner; print('ok', xtuner.__version__)"])
step("xtuner list-cfg", XTUNER + ["list-cfg", "-p", "internlm2_chat_1_8b_qlora_alpaca_e3"])
step("xtuner copy-cfg", XTUNER + ["copy-cfg", "internlm2_chat_1_8b_qlora_alpaca_e3", os.getcwd()])
step("import xtuner.utils (xtuner train)", [sys.executable, "-c", "import xtuner.utils; print('ok')"])
