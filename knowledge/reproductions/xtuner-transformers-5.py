"""XTUNER-TRANSFORMERS-5: does `import xtuner.utils` (which xtuner.model and so xtuner train
import) work with this transformers? Prints the installed versions and the import's outcome."""
import subprocess
import sys
from importlib import metadata

for name in ("xtuner", "transformers", "deepspeed", "torch"):
    try:
        print(name, metadata.version(name))
    except metadata.PackageNotFoundError:
        print(name, "not installed")
done = subprocess.run([sys.executable, "-c", "import xtuner.utils; print('ok')"],
                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
print("import xtuner.utils: exit %d: %s" % (done.returncode, (done.stdout.strip().splitlines() or [""])[-1][:300]))
