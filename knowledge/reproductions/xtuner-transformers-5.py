"""XTUNER-TRANSFORMERS-5: does `import xtuner.model` (what xtuner train loads) work with this
transformers? Prints the installed versions and the import's outcome (its last line)."""
import subprocess
import sys
from importlib import metadata

for name in ("xtuner", "transformers", "deepspeed", "torch"):
    try:
        print(name, metadata.version(name))
    except metadata.PackageNotFoundError:
        print(name, "not installed")
done = subprocess.run([sys.executable, "-c", "import xtuner.model; print('import xtuner.model: ok')"],
                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
print("import xtuner.model: exit %d: %s" % (done.returncode, (done.stdout.strip().splitlines() or [""])[-1][:300]))
