"""Many `airflow ...` commands in one Airflow process, for the tests' DAG runs.

Run with Airflow's own interpreter (``.venv-airflow``): it reads one JSON object per line on
stdin, ``{"argv": ["dags", "test", "catboost_monitor", "2026-11-29"], "env": {...}, "out": PATH}``,
runs the command exactly as ``airflow/__main__.py`` does (Airflow's own parser, then the
command's function), with ``env`` applied to ``os.environ`` and the process's stdout and
stderr (file descriptors 1 and 2, so also what subprocesses print) sent to ``out``, then
writes ``{"code": N}`` on its stdout. The exit code is what ``airflow`` would exit with.

Why: each ``airflow dags test`` process spends about 10 s of CPU before the first task runs
(importing Airflow, building its in-process execution API), once per process; a test that
runs five DAG runs in a row pays it once. The DAG file is read at each task's run, as it is
when ``airflow dags test`` runs; AIRFLOW_HOME and the other Airflow settings stay those the
process started with (``env`` may only change the DAG's own RETRAIN_* settings).
"""

from __future__ import annotations

import json
import os
import sys
import traceback

from airflow import configuration  # first, as airflow/__main__.py says
from airflow.cli import cli_parser
from airflow.cli.utils import redirect_stdout_log_handlers_to_stderr


def run(argv: list[str]) -> int:
    """What ``airflow/__main__.py``'s main() does with ``argv``; its exit code."""
    parser = cli_parser.get_parser()
    try:
        args = parser.parse_args(argv)
        if hasattr(args, "output"):
            redirect_stdout_log_handlers_to_stderr()
        if args.subcommand not in ["lazy_loaded", "version"]:
            configuration.write_default_airflow_configuration_if_needed()
        args.func(args)
    except SystemExit as exc:  # "DagRun failed", argparse's usage errors
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
            return 1
        return int(exc.code or 0)
    except Exception:  # what the airflow command would print before exiting 1
        traceback.print_exc()
        return 1
    return 0


def main() -> None:
    real_out = os.fdopen(os.dup(1), "w", buffering=1)
    for line in sys.stdin:
        cmd = json.loads(line)
        for key, value in cmd.get("env", {}).items():
            if not key.startswith("RETRAIN_"):
                raise SystemExit(f"only the DAG's RETRAIN_* settings may change between commands, not {key}")
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        saved = os.dup(1), os.dup(2)
        with open(cmd["out"], "w", encoding="utf-8") as out:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(out.fileno(), 1)
            os.dup2(out.fileno(), 2)
            try:
                code = run(cmd["argv"])
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
                os.close(saved[0])
                os.close(saved[1])
        real_out.write(json.dumps({"code": code}) + "\n")


if __name__ == "__main__":
    main()
