"""What the tests share (one copy of each): data, scripts run as a user would, in-process
``main(argv)``, file snapshots, free ports. Fixtures live in conftest.py and use these."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent  # on sys.path through pyproject.toml's pythonpath


def make_frame(n: int = 600, seed: int = 0, noise: bool = False, start_id: int = 0) -> pd.DataFrame:
    """A learnable binary problem: 3 numeric, 2 categorical features (or pure-noise labels)."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.normal(size=n)
    x3 = rng.integers(0, 50, size=n)
    c1 = rng.choice(["red", "green", "blue"], size=n)
    c2 = rng.choice(["north", "south"], size=n)
    logit = 1.8 * x1 - 1.2 * x2 + 1.5 * (c1 == "red") - 0.8
    target = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    if noise:
        target = rng.integers(0, 2, size=n)
    return pd.DataFrame(
        {
            "customer_id": np.arange(start_id, start_id + n),
            "x1": x1.round(5),
            "x2": x2.round(5),
            "x3": x3,
            "c1": c1,
            "c2": c2,
            "target": target,
        }
    )


def write_csv(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False)
    return path


def retrainer(project: Path, **kwargs):
    from retrain_model import ModelRetrainer

    defaults = {
        "data_path": project / "data.csv",
        "models_dir": project / "models",
        "production_path": project / "catboost_model.cbm",
        "iterations": 30,
        "lock_timeout": 5,
        "thread_count": 2,
        "progress_every": 0,
    }
    defaults.update(kwargs)
    return ModelRetrainer(**defaults)


def run_script(script: str, *args: str, cwd: Path, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run one of the repository's scripts as a user would, in ``cwd``."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run([sys.executable, str(ROOT / script), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full_env)


def interrupt_after(script: str, *args: str, cwd: Path, line: str, pause: float = 1.0) -> tuple[int, str, str]:
    """Run a script, press Ctrl+C (SIGINT) ``pause`` s after it logs a line containing ``line``; its exit code, stdout, stderr."""
    import signal
    import time

    proc = subprocess.Popen(
        [sys.executable, str(ROOT / script), *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        # a test run started in the background (``pytest &``, ``nohup``) passes SIGINT on as ignored, and
        # Python then installs no Ctrl+C handler: give the script the disposition a terminal would
        preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)) if os.name == "posix" else None,
    )
    seen = [proc.stderr.readline()]
    while seen[-1] and line not in seen[-1]:
        seen.append(proc.stderr.readline())
    time.sleep(pause)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, "".join(seen) + err


def snapshot(folder: Path, skip: tuple[str, ...] = ("logs",)) -> dict[str, str]:
    """sha256 of every file below ``folder`` (except ``skip``), to prove nothing changed."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if p.is_file() and rel.parts[0] not in skip:
            out[str(rel)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def retrain_script(cwd: Path, *args: str, data: str = "data.csv", env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python retrain_model.py --data data.csv --threads 1 --lock-timeout 5 ARGS`` in ``cwd``, notifications off unless ``env`` sets them."""
    base = ("--data", data, "--threads", "1", "--lock-timeout", "5")
    return run_script("retrain_model.py", *base, *args, cwd=cwd, timeout=timeout, env={"RETRAIN_NOTIFY": "", **(env or {})})


def retrain_main(cwd: Path, *args: str, data: str = "data.csv", env: dict | None = None) -> Ran:
    """:func:`retrain_script` in this process: ``main(argv)`` with the same flags and environment."""
    from retraining.cli.retrain import main

    base = ("--data", data, "--threads", "1", "--lock-timeout", "5")
    saved = dict(os.environ)
    os.environ.update({"RETRAIN_NOTIFY": "", **(env or {})})
    try:
        return run_main(main, *base, *args, cwd=cwd)
    finally:
        os.environ.clear()
        os.environ.update(saved)


@dataclass
class Ran:
    """What an in-process ``main(argv)`` did: its exit code and what it printed."""

    returncode: int
    stdout: str
    stderr: str


def run_main(main: Callable[[list[str]], int], *argv: str, cwd: Path) -> Ran:
    """Call a command line's ``main(argv)`` in this process, in ``cwd``, as the script would run it.

    Exit codes, messages and files are what the script gives; what only a process can
    show (signals, crashes, file modes, the interpreter's start) stays with :func:`run_script`.
    """
    out, err = io.StringIO(), io.StringIO()
    old = Path.cwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(argv))
            except SystemExit as exc:  # argparse's usage errors
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        os.chdir(old)
    return Ran(int(code), out.getvalue(), err.getvalue())


def reference_hash(text: str, salt: str) -> int:
    """The A/B entity hash of one id's text, written from the documented rule alone
    (retraining/ab/predlog.py's ``entity_hashes`` docstring), in plain Python: never the code under test.

    k = the first 8 bytes of blake2b(salt) as a little-endian uint64; the text (UTF-8,
    stripped), zero-padded to a multiple of 8 bytes, is read as little-endian uint64 words w;
    h = k, then h = fmix64(h ^ w) per word, then fmix64(h ^ (len(text) * 0x9E3779B97F4A7C15)).
    """
    mask = (1 << 64) - 1

    def fmix64(h: int) -> int:  # MurmurHash3's 64-bit finalizer
        h ^= h >> 33
        h = (h * 0xFF51AFD7ED558CCD) & mask
        h ^= h >> 33
        h = (h * 0xC4CEB9FE1A85EC53) & mask
        return h ^ (h >> 33)

    data = text.strip().encode("utf-8")
    padded = data + b"\0" * (-len(data) % 8)
    h = int.from_bytes(hashlib.blake2b(salt.encode("utf-8"), digest_size=8).digest(), "little")
    for i in range(0, len(padded), 8):
        h = fmix64(h ^ int.from_bytes(padded[i : i + 8], "little"))
    return fmix64(h ^ ((len(data) * 0x9E3779B97F4A7C15) & mask))


def reference_arms(ids, salt: str, share: float) -> list[str]:
    """The A/B arm of each id, from the documented rule alone (``assign_arms``'s docstring):
    the top 53 bits of :func:`reference_hash` of the id's text as a number in [0, 1) below
    ``share`` mean the challenger."""
    return ["challenger" if (reference_hash(str(value), salt) >> 11) / float(1 << 53) < share else "champion" for value in ids]
