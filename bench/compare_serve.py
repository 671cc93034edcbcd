"""Two checkouts' serve.py on the same model, interleaved: what a change costs on the request path.

    python bench/compare_serve.py OTHER_CHECKOUT [--repeats 5] [--seconds 3] [--rows 5000] [--iterations 100]

Trains v1.0.0 as bench_serve.py does (a sample of the shipped dataset), starts this
checkout's serve.py and OTHER_CHECKOUT's on 127.0.0.1, and measures both with
bench_serve.py's closed-loop load (single-row dataframe_split bodies, keep-alive) at
concurrency 1 and 4, alternating which goes first. Prints medians: req/s, p50, p99 and
the server's CPU milliseconds per request (the figure least moved by other load).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import bench_serve as b  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("other", type=Path, help="the other checkout (its serve.py is compared with this one's)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--rows", type=int, default=5000)
    p.add_argument("--iterations", type=int, default=100)
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="compare-serve-"))
    servers: dict[str, b.Server] = {}
    try:
        b.prepare(work, args.rows, args.iterations)
        single = b.bodies(work, 1)
        for name, root in (("this", ROOT), ("other", args.other.resolve())):
            port = b.free_port()
            servers[name] = b.Server(f"compare_{name}", [sys.executable, str(root / "serve.py"), "--port", str(port)], port, work, "/ready")
        runs: dict = {(n, c): [] for n in servers for c in (1, 4)}
        for r in range(args.repeats):
            for c in (1, 4):
                for n in list(servers) if r % 2 == 0 else list(servers)[::-1]:
                    runs[(n, c)].append(servers[n].load(single, c, args.seconds, 50_000))
        print(f"{b.stamp()}, {b.machine()}, medians of {args.repeats} x {args.seconds:g} s; other = {args.other}")
        print(b.table_head("serve.py", "concurrency", "req/s", "p50 ms", "p99 ms", "server CPU ms/request", "errors"))
        for (n, c), rs in runs.items():
            med = {k: statistics.median(x[k] for x in rs) for k in ("rps", "p50", "p99", "cpu_ms")}
            print(b.table_row(n, c, f"{med['rps']:.0f}", f"{med['p50']:.3f}", f"{med['p99']:.3f}", f"{med['cpu_ms']:.3f}", sum(x["errors"] for x in rs)))
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
