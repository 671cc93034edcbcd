"""A job that hangs, with a grandchild process, so that killing only the child is not enough."""

import subprocess
import sys
import time
from pathlib import Path

grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
Path("pids.txt").write_text(f"{grandchild.pid}\n")
print("hanging", flush=True)
time.sleep(600)
