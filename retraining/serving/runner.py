"""Run the app under uvicorn: the hardened protocol, the connection cap, the worker supervisor.

What ``uvicorn.run`` does for one process or ``--workers N``, with two changes:

- the HTTP protocol is :class:`~retraining.serving.guard.GuardedHttpToolsProtocol` with its
  :class:`~retraining.serving.guard.Limits`, the connection cap taken below the process's
  file limit (:func:`connection_cap`);
- SIGHUP to the parent is passed on to every worker that has started (each looks at the
  production file at once, :meth:`ModelWatcher.wake`), instead of uvicorn's replacing
  every worker: a replaced worker closes its idle keep-alive connections, and a request
  a client sent on one at that moment was lost (6 of 18,923 in a review's run).
"""

from __future__ import annotations

import inspect
import logging
import os
import signal

from uvicorn.config import STARTUP_FAILURE
from uvicorn.server import Server
from uvicorn.supervisors import Multiprocess

from retraining.errors import UsageError
from retraining.serving.guard import FALLBACK_MAX_CONNECTIONS, GuardedConfig, GuardedHttpToolsProtocol, Limits

log = logging.getLogger(__name__)
RAISE = "Raise it (ulimit -n, LimitNOFILE= in the systemd unit, docker run --ulimit nofile=)"
RESERVED_FILES = 64  # descriptors a worker keeps for itself: the model and log files, the event loop, pipes, libraries


def file_limit() -> int | None:
    """The soft limit on open files of this process (RLIMIT_NOFILE); None where there is none to read (Windows)."""
    try:
        import resource
    except ImportError:
        return None
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else int(soft)


def connection_cap(requested: int | None, limit: int | None) -> int:
    """Connections one worker keeps open: ``requested`` or all the file limit allows, less a reserve.

    :class:`UsageError` if ``requested`` needs more descriptors than the limit has.
    """
    if limit is None:
        return requested or FALLBACK_MAX_CONNECTIONS
    room = limit - RESERVED_FILES
    if room < 16:
        raise UsageError(f"the file limit of this process is {limit} open files; serve.py needs at least {RESERVED_FILES + 16}. {RAISE}.")
    if requested is not None and requested > room:
        raise UsageError(
            f"--max-connections {requested} needs a file limit of at least {requested + RESERVED_FILES}; this process has {limit}. "
            f"{RAISE} or lower --max-connections."
        )
    return requested or room


class Supervisor(Multiprocess):
    """uvicorn's worker supervisor; SIGHUP makes every started worker look at the production file, nobody is replaced."""

    def handle_hup(self) -> None:
        sent = 0
        for process in self.processes:
            ready = getattr(process, "is_ready", process.is_alive)  # older uvicorn versions have only is_alive
            if process.pid is not None and ready(timeout=1):  # a starting worker loads production itself
                try:
                    os.kill(process.pid, signal.SIGHUP)
                    sent += 1
                except ProcessLookupError:  # it just ended; keep_subprocess_alive replaces it
                    continue
        log.info("SIGHUP passed on to %d of %d workers: each looks at the production file now", sent, len(self.processes))


def run(app: str, *, host: str, port: int, workers: int, limits: Limits, graceful_timeout: float) -> int:
    """Serve ``app`` (an import string of a factory) until SIGTERM/SIGINT; 0, or uvicorn's startup failure code."""
    config = GuardedConfig(
        app,
        limits,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        http=GuardedHttpToolsProtocol,
        lifespan="on",
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=graceful_timeout,
    )
    server = Server(config=config)
    if workers > 1:
        sockets = [config.bind_socket()]
        older = "target" in inspect.signature(Multiprocess.__init__).parameters  # older uvicorn versions take server.run too
        (Supervisor(config, target=server.run, sockets=sockets) if older else Supervisor(config, sockets=sockets)).run()
        return 0
    server.run()
    return 0 if server.started else STARTUP_FAILURE
