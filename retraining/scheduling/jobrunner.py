"""Run one retrain as a child process: its own process group, a timeout, a tree kill.

A crash, a leak or a hang in training stays in the child; the scheduler only watches
it. The child's output goes to a file so that the tail can be logged on failure and a
chatty child can never block on a full pipe.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

IS_WINDOWS = os.name == "nt"


@dataclass
class ChildRun:
    """One attempt of a job: the process, when it started, where its output goes."""

    argv: list[str]
    cwd: Path
    output_path: Path
    timeout: float
    attempt: int = 1
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    proc: subprocess.Popen | None = None
    _started_mono: float = 0.0
    timed_out: bool = False

    def start(self) -> ChildRun:
        self.output_path.parent.mkdir(parents=True, exist_ok=True)
        out = self.output_path.open("wb")
        kwargs: dict = {}
        if IS_WINDOWS:  # pragma: no cover - exercised on Windows only
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
        else:
            kwargs["start_new_session"] = True  # its own process group: kill the whole tree
        try:
            self.proc = subprocess.Popen(self.argv, cwd=self.cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **kwargs)
        finally:
            out.close()
        self._started_mono = time.monotonic()
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def poll(self) -> int | None:
        """The exit code once finished; kills the tree when past the timeout."""
        assert self.proc is not None
        code = self.proc.poll()
        if code is None and time.monotonic() - self._started_mono > self.timeout:
            self.timed_out = True
            self.kill_tree(grace=5.0)
            code = self.proc.wait()
        return code

    def terminate(self, grace: float) -> int:
        """Ask the whole tree to stop, wait up to ``grace`` seconds, then kill it."""
        return self.kill_tree(grace)

    def kill_tree(self, grace: float) -> int:
        assert self.proc is not None
        if self.proc.poll() is not None:
            _kill_group(self.proc.pid, hard=True)  # stray grandchildren of a finished child
            return self.proc.returncode
        _kill_group(self.proc.pid, hard=False)
        try:
            return self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _kill_group(self.proc.pid, hard=True)
            return self.proc.wait()
        finally:
            _kill_group(self.proc.pid, hard=True)

    def tail(self, lines: int = 20) -> str:
        try:
            with self.output_path.open("rb") as fh:
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                fh.seek(max(0, size - 16384))
                text = fh.read().decode("utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _kill_group(pid: int, hard: bool) -> None:
    """Signal a child's whole process group (POSIX) or tree (Windows, via taskkill)."""
    if IS_WINDOWS:  # pragma: no cover - exercised on Windows only
        if hard:
            subprocess.run(["taskkill", "/F", "/T", "/PID", str(pid)], capture_output=True, check=False)
        else:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.CTRL_BREAK_EVENT)
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL if hard else signal.SIGTERM)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (best effort on Windows)."""
    if pid <= 0:
        return False
    if IS_WINDOWS:  # pragma: no cover
        out = subprocess.run(["tasklist", "/FI", f"PID eq {pid}", "/NH"], capture_output=True, text=True, check=False).stdout
        return str(pid) in out
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def python_argv(script: Path, args: list[str]) -> list[str]:
    return [sys.executable, str(script), *args]
