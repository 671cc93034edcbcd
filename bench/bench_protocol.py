"""The request-path cost of serve.py's hardened HTTP protocol, in-process, without sockets.

    python bench/bench_protocol.py [--requests 20000] [--repeats 11]

Feeds the same keep-alive POST (one segment, as on a LAN) to uvicorn's HttpToolsProtocol and
to retraining.serving.guard.GuardedHttpToolsProtocol, each driving a trivial ASGI app on
a fake transport, alternating which goes first. Reports the process CPU time per request
(time.process_time: what other processes on a shared machine move least); the difference
is what the timeouts, the head cap and the connection cap add to a request.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's library, whatever is installed
from retraining.serving.guard import GuardedHttpToolsProtocol, Limits

REQUEST = b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


async def trivial(scope, receive, send) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"{}"})


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.closing, self.writes = False, 0

    def get_extra_info(self, name, default=None):
        return {"peername": ("127.0.0.1", 1), "sockname": ("127.0.0.1", 2)}.get(name, default)

    def write(self, data) -> None:
        self.writes += 1

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def cpu_per_request(cls, n: int) -> float:
    """Microseconds of process CPU per request, ``n`` requests on one keep-alive connection."""
    config = Config(trivial, http=cls, lifespan="off", access_log=False, log_config=None)
    config.load()
    config.limits = Limits()
    protocol = cls(config=config, server_state=ServerState(), app_state={})
    transport = FakeTransport()
    protocol.connection_made(transport)
    start = time.process_time()
    for _ in range(n):
        protocol.data_received(REQUEST)
        await asyncio.sleep(0)  # the request's task runs and answers
    spent = time.process_time() - start
    assert transport.writes >= n and not transport.closing
    return spent / n * 1e6


async def measure(n: int, repeats: int) -> dict:
    out: dict = {HttpToolsProtocol: [], GuardedHttpToolsProtocol: []}
    for r in range(repeats):
        for cls in list(out) if r % 2 == 0 else list(out)[::-1]:
            out[cls].append(await cpu_per_request(cls, n))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=20000)
    p.add_argument("--repeats", type=int, default=11)
    args = p.parse_args(argv)
    results = asyncio.run(measure(args.requests, args.repeats))
    base = statistics.median(results[HttpToolsProtocol])
    for cls, runs in results.items():
        med = statistics.median(runs)
        print(f"{cls.__name__:28} median {med:6.2f} µs CPU/request, min {min(runs):6.2f}, +{med - base:.2f} µs over uvicorn's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
