"""serve.py against `mlflow models serve`: the same model file, the same requests, one run.

    python bench/bench_serve.py [--workers 1] [--concurrency 4] [--seconds 3] [--repeats 3]

Bounded load on 127.0.0.1 only: every measurement is a closed loop of ``--concurrency``
client processes (one keep-alive connection each, raw sockets, so the client costs little)
for ``--seconds`` seconds, at most ``--max-requests`` requests per client. Measurements of
the two servers are interleaved ``--repeats`` times and the medians reported. Prints
Markdown tables for bench/README.md. Linux; needs requirements-serve.txt and -mlflow.txt.

1. stack: a trivial endpoint as a plain ASGI app and as a Starlette route, both on uvicorn
   with httptools (how the HTTP stack of serve.py was chosen);
2. single rows and 100-row batches: serve.py vs MLflow (both POST /invocations with the
   same dataframe_split bodies);
3. the floor: serve.py's p50 at concurrency 1 vs predict_proba of the same row in-process;
4. hot swap: serve.py's p99 while production flips between two versions every 0.25 s;
5. shadow: serve.py with --shadow vs without an A/B test;
6. prodlog: serve.py without a log vs the production log (``--id-column``, #20) with
   ``--no-bake`` and with the bake shadow (production was rolled back from v1.1.0 to
   v1.0.0 just before, so v1.1.0 scores in shadow); ``--only prodlog`` starts only those
   three servers and prints their table (req/s against the no-log server as the ratio of
   the medians and as the median of each repeat's ratio, "paired", which a drifting load
   on a shared machine moves less), then in-process the request path's added cost and
   the log thread's CPU per row by requests per flush, with the ledger keys (run it as
   ``PYTHONPATH=. python bench/bench_serve.py --only prodlog`` so that part imports this
   checkout's package).
7. reload with workers: serve.py --workers 2 under load, SIGHUP to the parent every 0.25 s.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))  # the benchmark helpers; the library comes from the installed package (pip install -e .)
from measure import machine, stamp, table_head, table_row  # noqa: E402

TRIVIAL = """
import orjson
async def raw(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        m = await receive()
        body += m.get("body", b"")
        if not m.get("more_body"):
            break
    out = orjson.dumps({"predictions": [0.5], "n": len(body)})
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(out)).encode())]})
    await send({"type": "http.response.body", "body": out})

from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
async def invocations(request):
    body = await request.body()
    return Response(orjson.dumps({"predictions": [0.5], "n": len(body)}), media_type="application/json")
async def ping(request):
    return Response(b"{}", media_type="application/json")
starlette = Starlette(routes=[Route("/invocations", invocations, methods=["POST"]), Route("/ping", ping)])
"""


# -- the load generator ---------------------------------------------------------------------
def _read_response(f) -> int:
    status = int(f.readline().split()[1])
    length, chunked = 0, False
    while (line := f.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if not chunked:
        f.read(length)
        return status
    while (size := int(f.readline().split(b";")[0], 16)) > 0:
        f.read(size + 2)
    f.readline()
    return status


def _client(port: int, requests: list[bytes], seconds: float, max_requests: int, start_at: float, out) -> None:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = sock.makefile("rb")
    latencies, errors = [], 0
    while time.time() < start_at:
        time.sleep(0.001)
    end = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < end and i < max_requests:
        t = time.perf_counter()
        try:
            sock.sendall(requests[i % len(requests)])
            if _read_response(f) != 200:
                errors += 1
        except (OSError, ValueError, IndexError):  # a dropped connection is a failed request: counted, and a new connection
            errors += 1
            sock.close()
            sock = socket.create_connection(("127.0.0.1", port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            f = sock.makefile("rb")
        latencies.append(time.perf_counter() - t)
        i += 1
    sock.close()
    out.put((latencies, errors))


def load(port: int, bodies: list[bytes], concurrency: int, seconds: float, max_requests: int, path: str = "/invocations") -> dict:
    """Closed-loop load; throughput (requests/s), p50 and p99 latency (ms), errors."""
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    requests = [(head % len(b)).encode() + b for b in bodies]
    out = mp.Queue()
    start_at = time.time() + 0.3
    procs = [mp.Process(target=_client, args=(port, requests[k:] + requests[:k], seconds, max_requests, start_at, out)) for k in range(concurrency)]
    for p in procs:
        p.start()
    results = [out.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    lat = np.concatenate([np.array(r[0]) for r in results])
    wall = max(sum(r[0]) for r in results)
    return {
        "rps": len(lat) / wall,
        "p50": float(np.median(lat)) * 1e3,
        "p99": float(np.percentile(lat, 99)) * 1e3,
        "errors": sum(r[1] for r in results),
        "n": len(lat),
    }


# -- servers --------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, name: str, argv: list[str], port: int, cwd: Path, ready: str, env: dict | None = None) -> None:
        self.name, self.port = name, port
        self.out = (cwd / f"{name}.out").open("wb")
        self.proc = subprocess.Popen(argv, cwd=cwd, stdout=self.out, stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, **(env or {})})
        deadline = time.monotonic() + 180
        while not _answers(port, ready):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{name} did not start; see {cwd / (name + '.out')}")
            time.sleep(0.2)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) of every process of the server's group: MLflow's work happens in a child."""
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == self.proc.pid:  # the process group (start_new_session: the group id is our pid)
                total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def load(self, bodies: list[bytes], concurrency: int, seconds: float, max_requests: int) -> dict:
        """:func:`load` on this server, plus the server's CPU milliseconds per request."""
        before = self.cpu_seconds()
        result = load(self.port, bodies, concurrency, seconds, max_requests)
        result["cpu_ms"] = (self.cpu_seconds() - before) * 1e3 / result["n"]
        return result

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)  # the group this script started (mlflow runs uvicorn as a child)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.out.close()


def _answers(port: int, path: str) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            return s.makefile("rb").readline().split()[1] == b"200"
    except (OSError, IndexError):
        return False


def start_servers(work: Path, workers: int, only: set[str] | None = None) -> dict[str, Server]:
    py = sys.executable
    ours = ["--workers", str(workers), "--models-dir", "models", "--production", "catboost_model.cbm", "--reload-interval", "0.1"]
    shadow = ["--challenger", "v1.1.0", "--shadow", "--id-column", "id", "--log", str(work / "predictions.jsonl")]
    prodlog = ["--id-column", "id", "--log", str(work / "production" / "predictions.jsonl")]
    mlflow = [str(Path(py).parent / "mlflow"), "models", "serve", "-m", str(work / "mlflow_model"), "--env-manager", "local", "-h", "127.0.0.1"]
    (work / "trivial.py").write_text(TRIVIAL)
    specs = {
        "serve.py": ([py, str(ROOT / "serve.py"), *ours], "/ready"),
        "serve.py --shadow": ([py, str(ROOT / "serve.py"), *ours, *shadow], "/ready"),
        "serve.py --id-column --no-bake": ([py, str(ROOT / "serve.py"), *ours, *prodlog, "--no-bake"], "/ready"),
        "serve.py --id-column": ([py, str(ROOT / "serve.py"), *ours, *prodlog], "/ready"),
        "mlflow": ([*mlflow, "-w", str(workers)], "/ping"),
        "raw ASGI": ([py, "-m", "uvicorn", "trivial:raw", "--http", "httptools", "--no-access-log", "--log-level", "warning"], "/"),
        "Starlette": ([py, "-m", "uvicorn", "trivial:starlette", "--http", "httptools", "--no-access-log", "--log-level", "warning"], "/ping"),
    }
    servers = {}
    for name, (argv, ready) in specs.items():
        if only is not None and name not in only:
            continue
        port = free_port()
        argv = [*argv, "--port" if name != "mlflow" else "-p", str(port)]
        env = {"PATH": f"{Path(py).parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # mlflow runs `uvicorn` from PATH
        servers[name] = Server(name.replace(" ", "_").replace("-", ""), argv, port, work, ready, env)
    return servers


# -- the model, the requests ----------------------------------------------------------------
def prepare(work: Path, rows: int, iterations: int) -> None:
    """Two versions of the shipped dataset's model (v1.0.0 in production) and an MLflow copy of it."""
    import pandas as pd

    frame = pd.read_csv(ROOT / "featured_dataset.csv")
    frame.sample(n=min(rows, len(frame)) if rows else len(frame), random_state=0).to_csv(work / "data.csv", index=False)
    common = [sys.executable, str(ROOT / "retrain_model.py"), "--data", "data.csv", "--iterations", str(iterations), "--no-report", "-q"]
    for extra in ([], ["--seed", "7", "--force", "--min-improvement", "-1"], ["--promote", "v1.0.0"]):
        subprocess.run([*common, *extra], cwd=work, check=True, stdout=subprocess.DEVNULL)
    import mlflow.catboost
    from catboost import CatBoostClassifier

    model = CatBoostClassifier()
    model.load_model(str(work / "catboost_model.cbm"))
    mlflow.catboost.save_model(model, str(work / "mlflow_model"))


def bodies(work: Path, n_rows: int, count: int = 64, with_id: bool = False) -> list[bytes]:
    """``count`` dataframe_split bodies of ``n_rows`` rows each: the model's columns, in its order (MLflow needs that)."""
    import pandas as pd

    frame = pd.read_csv(work / "data.csv")[_feature_names(work)]
    if with_id:
        frame.insert(0, "id", np.arange(len(frame)))
    columns = list(frame.columns)
    data = frame.to_numpy(dtype=object).tolist()
    out = []
    for k in range(count):
        chunk = [data[(k * n_rows + j) % len(data)] for j in range(n_rows)]
        out.append(orjson.dumps({"dataframe_split": {"columns": columns, "data": chunk}}))
    return out


def _feature_names(work: Path) -> list[str]:
    from catboost import CatBoostClassifier

    model = CatBoostClassifier()
    model.load_model(str(work / "catboost_model.cbm"))
    return list(model.feature_names_)


def in_process(work: Path, count: int = 64, repeats: int = 2000) -> dict:
    """p50 (ms) of predict_proba on one row in-process: from a Pool of the row's values, and from a one-row DataFrame."""
    import pandas as pd
    from catboost import CatBoostClassifier, Pool

    model = CatBoostClassifier()
    model.load_model(str(work / "catboost_model.cbm"))
    names = list(model.feature_names_)
    cats = list(model.get_cat_feature_indices())
    rows = pd.read_csv(work / "data.csv")[names].head(count).to_numpy(dtype=object).tolist()  # the rows the requests send first
    frames = [pd.DataFrame([r], columns=names) for r in rows]
    out = {}
    for name, call in (("Pool", lambda i: model.predict_proba(Pool([rows[i]], cat_features=cats))), ("DataFrame", lambda i: model.predict_proba(frames[i]))):
        times = []
        for k in range(repeats):
            t = time.perf_counter()
            call(k % len(rows))
            times.append(time.perf_counter() - t)
        out[name] = float(np.median(times)) * 1e3
    return out


def request_path_cost(work: Path, count: int = 64, repeats: int = 20000) -> dict:
    """In-process, without HTTP: what the production log adds to one 1-row request, and its log thread's CPU per row.

    The request path: the id check and the hand-over of the scores to the log thread
    (``ProductionLogger.ids`` + ``record``), wall-clock µs, median and p99. The log thread:
    its CPU time (``time.thread_time``, so other processes' load counts little) per flush of
    1, 10, 100 and 1000 queued 1-row requests (a server answering N requests/s flushes
    N/5 of them every 0.2 s), with the ledger keys as serve.py computes them (``KeyBook``).
    """
    from retraining.ab.rowkeys import KeyBook
    from retraining.registry import Registry
    from retraining.serving.ab import PredictionLog
    from retraining.serving.inputs import decode, rows_for
    from retraining.serving.models import load_version
    from retraining.serving.production import ProductionLogger

    registry = Registry(work / "models", work / "catboost_model.cbm")
    model = load_version(registry, "v1.0.0")
    tables = [decode(b) for b in bodies(work, 1, count=count, with_id=True)]
    rows = [rows_for(t, model.features, model.cat_indices, model.nan_ok) for t in tables]
    scores = [model.score(r) for r in rows]
    plog = PredictionLog(work / "cost" / "predictions.jsonl", lambda experiment: "production", flush_interval=3600, keys=KeyBook(registry))
    prod = ProductionLogger(registry, plog, id_column="id", bake_hours=0)
    times = []
    for k in range(repeats):
        i = k % count
        t = time.perf_counter()
        prod.record(model, tables[i], rows[i], prod.ids(tables[i]), scores[i])
        times.append(time.perf_counter() - t)
    plog.close()  # writes the queued requests in one flush (and warms the log thread's imports)
    out = {"request_us": float(np.median(times)) * 1e6, "p99_us": float(np.percentile(times, 99)) * 1e6}
    for size in (1, 10, 100, 1000):
        batches = []
        for b in range(max(5, 4000 // size)):
            plog._pending = []
            for k in range(size):
                i = (b * size + k) % count
                prod.record(model, tables[i], rows[i], prod.ids(tables[i]), scores[i])
            batches.append(plog._pending)
        t = time.thread_time()
        for batch in batches:
            plog._write(batch)  # what the log thread does with one flush
        out[f"flush_{size}_us_per_row"] = (time.thread_time() - t) / (len(batches) * size) * 1e6
    return out


def swapping(work: Path, stop: threading.Event, every: float = 0.25) -> threading.Thread:
    """Flip production between v1.0.0 and v1.1.0 through the registry until ``stop``."""
    from retraining.registry import Registry

    def run() -> None:
        registry = Registry(work / "models", work / "catboost_model.cbm")
        k = 0
        while not stop.wait(every):
            with registry.locked():
                registry.promote(registry.read_log(), ("v1.1.0", "v1.0.0")[k % 2], "bench_serve.py hot swap")
            k += 1

    thread = threading.Thread(target=run)
    thread.start()
    return thread


# -- the run --------------------------------------------------------------------------------
def the_plan(work: Path, args) -> list:
    single, batch, with_id = bodies(work, 1), bodies(work, 100), bodies(work, 1, with_id=True)
    c = args.concurrency
    prodlog = ("serve.py", "serve.py --id-column --no-bake", "serve.py --id-column")
    plan = [
        ("stack c1", [("raw ASGI", single, 1), ("Starlette", single, 1)]),
        (f"stack c{c}", [("raw ASGI", single, c), ("Starlette", single, c)]),
        ("single", [("serve.py", single, c), ("mlflow", single, c)]),
        ("batch100", [("serve.py", batch, c), ("mlflow", batch, c)]),
        ("floor", [("serve.py", single, 1)]),
        ("shadow c1", [("serve.py", with_id, 1), ("serve.py --shadow", with_id, 1)]),
        (f"shadow c{c}", [("serve.py", with_id, c), ("serve.py --shadow", with_id, c)]),
        ("prodlog c1", [(name, with_id, 1) for name in prodlog]),
        (f"prodlog c{c}", [(name, with_id, c) for name in prodlog]),
    ]
    return [(scenario, variants) for scenario, variants in plan if not args.only or scenario.startswith(args.only)]


def measure_all(work: Path, servers: dict[str, Server], plan: list, args) -> dict:
    single = bodies(work, 1)
    c, s, m = args.concurrency, args.seconds, args.max_requests
    results: dict = {}
    for r in range(args.repeats):
        for scenario, variants in plan:
            for name, reqs, conc in variants if r % 2 == 0 else variants[::-1]:  # alternate who goes first
                results.setdefault(scenario, {}).setdefault(name, []).append(servers[name].load(reqs, conc, s, m))
        for phase in ("steady", "swapping") if not args.only else ():
            stop = threading.Event()
            thread = swapping(work, stop) if phase == "swapping" else None
            results.setdefault("swap", {}).setdefault(phase, []).append(servers["serve.py"].load(single, c, s, m))
            if thread is not None:
                stop.set()
                thread.join()
                _promote(work, "v1.0.0")  # production back to v1.0.0: the shadow test compares it with v1.1.0
        print(f"repeat {r + 1}/{args.repeats} done", file=sys.stderr)
    return results


def sighup_stream(work: Path, args) -> dict:
    """serve.py --workers 2 under load while its parent gets SIGHUP every 0.25 s and production flips every 1 s."""
    port = free_port()
    argv = [sys.executable, str(ROOT / "serve.py"), "--workers", "2", "--reload-interval", "0.1", "--port", str(port)]
    server = Server("serve_workers2", argv, port, work, "/ready")
    stop = threading.Event()
    flips = swapping(work, stop, every=1.0)

    def hup() -> None:
        while not stop.wait(0.25):
            server.proc.send_signal(signal.SIGHUP)
            result["sighups"] += 1

    result = {"sighups": 0}
    thread = threading.Thread(target=hup)
    thread.start()
    try:
        result.update(load(port, bodies(work, 1), args.concurrency, args.seconds * 4, args.max_requests))
    finally:
        stop.set()
        thread.join()
        flips.join()
        server.stop()
        _promote(work, "v1.0.0")
    return result


def _promote(work: Path, version: str) -> None:
    from retraining.registry import Registry

    registry = Registry(work / "models", work / "catboost_model.cbm")
    with registry.locked():
        data = registry.read_log()
        if data["production"] != version:
            registry.promote(data, version, "bench_serve.py")
    time.sleep(0.5)  # the servers poll every 0.1 s


def med(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def report(results: dict, floor: dict, args) -> str:
    c = args.concurrency
    out = [f"{stamp()}, {machine()}, --workers {args.workers}, --concurrency {c}, {args.seconds:g} s per measurement, medians of {args.repeats}", ""]
    out.append(table_head("stack (trivial endpoint)", "concurrency", "req/s", "p50 ms", "p99 ms", "server CPU ms/request"))
    for conc in (1, c):
        for name, runs in results[f"stack c{conc}"].items():
            out.append(table_row(name, conc, *_cells(runs, 3)))
    out += ["", table_head("requests", "server", "req/s", "p50 ms", "p99 ms", "server CPU ms/request", "errors", "req/s vs MLflow", "CPU vs MLflow", "goal")]
    for scenario, label, goal in (("single", "1 row", "≥ 3x req/s, lower p99"), ("batch100", "100 rows", "≥ 2x req/s")):
        runs = results[scenario]
        ratio = med(runs["serve.py"], "rps") / med(runs["mlflow"], "rps")
        cpu = med(runs["mlflow"], "cpu_ms") / med(runs["serve.py"], "cpu_ms")
        for name in ("serve.py", "mlflow"):
            first = name == "serve.py"
            errors = sum(x["errors"] for x in runs[name])
            out.append(table_row(label, name, *_cells(runs[name]), errors, f"{ratio:.2f}x" if first else "", f"{cpu:.2f}x less" if first else "", goal))
    p50 = med(results["floor"]["serve.py"], "p50")
    out += ["", table_head("serve.py p50, 1 row, concurrency 1", "in-process predict_proba (Pool)", "(one-row DataFrame)", "overhead over Pool", "goal")]
    out.append(table_row(f"{p50:.3f} ms", f"{floor['Pool']:.3f} ms", f"{floor['DataFrame']:.3f} ms", f"{p50 - floor['Pool']:.3f} ms", "≤ 1 ms"))
    steady, swap = med(results["swap"]["steady"], "p99"), med(results["swap"]["swapping"], "p99")
    out += ["", table_head("hot swap (1 row)", "steady p99 ms", "p99 ms while production flips every 0.25 s", "ratio", "errors", "goal")]
    errors = sum(x["errors"] for x in results["swap"]["swapping"])
    out.append(table_row(f"concurrency {c}", f"{steady:.2f}", f"{swap:.2f}", f"{swap / steady:.2f}", errors, "≤ 2"))
    heads = ("no A/B p50 ms", "--shadow p50 ms", "ratio", "no A/B req/s", "--shadow req/s", "CPU ms/request no A/B", "--shadow", "goal")
    out += ["", table_head("shadow (1 row)", *heads)]
    for conc in (1, c):
        a, b = results[f"shadow c{conc}"]["serve.py"], results[f"shadow c{conc}"]["serve.py --shadow"]
        ratio = med(b, "p50") / med(a, "p50")
        cells = (f"{med(a, 'p50'):.3f}", f"{med(b, 'p50'):.3f}", f"{ratio:.3f}", f"{med(a, 'rps'):.0f}", f"{med(b, 'rps'):.0f}")
        cells += (f"{med(a, 'cpu_ms'):.3f}", f"{med(b, 'cpu_ms'):.3f}")
        out.append(table_row(f"concurrency {conc}", *cells, "p50 ≤ 1.10x"))
    return "\n".join([*out, "", prodlog_report(results, args)])


def prodlog_report(results: dict, args) -> str:
    """The production log's cost: p50 and req/s against serve.py without a log."""
    heads = ("server", "p50 ms", "p99 ms", "req/s", "CPU ms/request", "p50 overhead ms", "req/s vs no log", "paired", "CPU vs no log", "goal")
    out = [table_head("production log (1 row)", *heads)]
    for conc in (1, args.concurrency):
        runs = results[f"prodlog c{conc}"]
        base = runs["serve.py"]
        labels = (("serve.py", "no log"), ("serve.py --id-column --no-bake", "--id-column --no-bake"), ("serve.py --id-column", "--id-column, bake shadow"))
        for name, label in labels:
            r = runs[name]
            cells = (f"{med(r, 'p50'):.3f}", f"{med(r, 'p99'):.3f}", f"{med(r, 'rps'):.0f}", f"{med(r, 'cpu_ms'):.3f}")
            if name == "serve.py":
                out.append(table_row(f"concurrency {conc}", label, *cells, "", "", "", "", ""))
                continue
            # paired: the median of each repeat's ratio to the no-log server measured beside it (robust to load that drifts)
            paired = statistics.median(x["rps"] / b["rps"] for x, b in zip(r, base, strict=True))
            cpu = med(r, "cpu_ms") / med(base, "cpu_ms")
            ratios = (f"{med(r, 'p50') - med(base, 'p50'):+.3f}", f"{med(r, 'rps') / med(base, 'rps'):.3f}", f"{paired:.3f}", f"{cpu:.3f}")
            out.append(table_row(f"concurrency {conc}", label, *cells, *ratios, "p50 +≤ 1 ms, req/s ≥ 0.90"))
    return "\n".join(out)


def _cells(runs: list[dict], digits: int = 2) -> tuple[str, ...]:
    return (f"{med(runs, 'rps'):.0f}", f"{med(runs, 'p50'):.{digits}f}", f"{med(runs, 'p99'):.{digits}f}", f"{med(runs, 'cpu_ms'):.3f}")


def shadow_counts(port: int, prefix: str = "catboost_serve_ab_rows_total") -> str:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        text = b"".join(iter(lambda: s.recv(65536), b"")).decode()
    return ", ".join(line for line in text.splitlines() if line.startswith(prefix))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, default=1, help="server processes of both services (default: %(default)s)")
    p.add_argument("--concurrency", type=int, default=4, help="client processes (default: %(default)s)")
    p.add_argument("--seconds", type=float, default=3.0, help="length of one measurement (default: %(default)s)")
    p.add_argument("--max-requests", type=int, default=50_000, help="per client and measurement (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved repeats (default: %(default)s)")
    p.add_argument("--rows", type=int, default=0, help="rows of featured_dataset.csv to train on, a random sample (default: all)")
    p.add_argument("--iterations", type=int, default=300, help="CatBoost iterations of both versions (default: %(default)s)")
    p.add_argument("--only", metavar="PREFIX", help="only the scenarios whose name starts so (stack, single, batch100, floor, shadow, prodlog, sighup)")
    p.add_argument("--keep", action="store_true", help="keep the work folder (server output) and print its path")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    servers: dict[str, Server] = {}
    try:
        prepare(work, args.rows, args.iterations)
        if args.only == "sighup":
            print(orjson.dumps(sighup_stream(work, args), option=orjson.OPT_INDENT_2).decode())
            return 0
        plan = the_plan(work, args)
        servers = start_servers(work, args.workers, {name for _, variants in plan for name, _, _ in variants} if args.only else None)
        results = measure_all(work, servers, plan, args)
        if args.only:
            print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
            if args.only == "prodlog":
                print(f"{stamp()}, {machine()}, --workers {args.workers}, {args.seconds:g} s per measurement, medians of {args.repeats}\n")
                print(prodlog_report(results, args))
                cost = request_path_cost(work)
                flushes = ", ".join(f"{size}: {cost[f'flush_{size}_us_per_row']:.1f}" for size in (1, 10, 100, 1000))
                print(
                    f"\nrequest path, in-process: +{cost['request_us']:.1f} µs median (p99 {cost['p99_us']:.1f} µs) per 1-row request; "
                    f"log thread, CPU µs per row by requests per flush (with the ledger keys): {flushes}"
                )
                print(f"\nbake counters: {shadow_counts(servers['serve.py --id-column'].port, 'catboost_serve_bake_rows_total')}")
            return 0
        floor = in_process(work)
        print(report(results, floor, args))
        hup = sighup_stream(work, args)
        print(
            f"\n--workers 2, SIGHUP to the parent every 0.25 s ({hup['sighups']} in all), production flipped every 1 s, "
            f"concurrency {args.concurrency} (keep-alive): {hup['n']} requests, {hup['errors']} failed, p99 {hup['p99']:.2f} ms"
        )
        print(f"\nshadow server counters: {shadow_counts(servers['serve.py --shadow'].port)}")
    finally:
        for server in servers.values():
            server.stop()
        if args.keep:
            print(f"work folder: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
