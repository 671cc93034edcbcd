"""A job that succeeds: records its arguments and working folder, then exits 0."""

import json
import os
import sys
import time
from pathlib import Path

out = Path(os.environ.get("JOB_RECORD", "job_record.jsonl"))
with out.open("a") as fh:
    fh.write(json.dumps({"argv": sys.argv[1:], "cwd": os.getcwd(), "t": time.time(), "pid": os.getpid()}) + "\n")
time.sleep(float(os.environ.get("JOB_SLEEP", "0")))
if os.environ.get("JOB_FAIL_ARG") and os.environ["JOB_FAIL_ARG"] in sys.argv[1:]:  # one model of a fleet fails
    print("job failed on purpose", file=sys.stderr)
    sys.exit(3)
print("job ok")
sys.exit(int(os.environ.get("JOB_EXIT", "0")))
