"""serve.py: a real server process on a free 127.0.0.1 port, a real HTTP client, real deploys."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import orjson
import pytest
from helpers import ROOT, free_port, make_frame, reference_arms, retrain_script, run_script, write_csv

from retraining.serving.ab import CHAMPION
from retraining.serving.inputs import BadRequest, Table, rows_for
from retraining.training import load_model, predict

FEATURES = ["x1", "x2", "x3", "c1", "c2"]
CATS = ["c1", "c2"]
pytestmark = pytest.mark.skipif(os.name == "nt", reason="signals (SIGTERM, SIGHUP) are POSIX; the Windows path is polling only")


def retrain(project: Path, *args: str) -> subprocess.CompletedProcess:
    proc = retrain_script(project, "--iterations", "20", "--id-column", "customer_id", "--no-report", *args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Path:
    """v1.0.0 in production, v1.1.0 trained with another seed and not deployed."""
    project = tmp_path_factory.mktemp("serve")
    write_csv(project / "data.csv", make_frame(600))
    retrain(project)
    retrain(project, "--seed", "7", "--force", "--min-improvement", "1")
    log = json.loads((project / "models" / "version_log.json").read_text())
    assert log["production"] == "v1.0.0" and [v["version"] for v in log["versions"]] == ["v1.0.0", "v1.1.0"]
    return project


@pytest.fixture
def project(registry, tmp_path) -> Path:
    """A private copy of the registry, for tests that change production."""
    copy = tmp_path / "p"
    shutil.copytree(registry, copy, ignore=shutil.ignore_patterns("logs"))
    return copy


class Server:
    """``python serve.py`` in ``project`` on a free port; stopped with SIGTERM."""

    def __init__(self, project: Path, *args: str, max_files: int | None = None) -> None:
        self.port = free_port()
        self.output = project / f"serve-{self.port}.out"
        argv = [sys.executable, str(ROOT / "serve.py"), "--reload-interval", "0.2", *args, "--port", str(self.port)]  # the last --port wins
        limit = None if max_files is None else lambda: _limit_files(max_files)
        with self.output.open("wb") as out:
            self.proc = subprocess.Popen(argv, cwd=project, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}, preexec_fn=limit)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log()
            try:
                if self.get("/ready")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError("serve.py did not become ready in 60 s:\n" + self.log())

    def log(self) -> str:
        return self.output.read_text(errors="replace")

    def request(self, method: str, path: str, body: bytes | None = None, conn: http.client.HTTPConnection | None = None) -> tuple[int, dict, dict]:
        own = conn is None
        conn = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            raw = resp.read()
            payload = orjson.loads(raw) if resp.getheader("content-type", "").startswith("application/json") else {"text": raw.decode()}
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, payload
        finally:
            if own:
                conn.close()

    def get(self, path: str):
        return self.request("GET", path)

    def post(self, body, path: str = "/predict"):
        return self.request("POST", path, body if isinstance(body, bytes) else orjson.dumps(body))

    def wait_for(self, condition, what: str, timeout: float = 30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            health = self.get("/health")[2]
            if condition(health):
                return health
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; /health: {health}\n{self.log()}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


def _limit_files(n: int) -> None:
    """In the server's process before it runs: a soft open-file limit of ``n`` (what LimitNOFILE= sets)."""
    import resource

    resource.setrlimit(resource.RLIMIT_NOFILE, (n, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))


@pytest.fixture
def serve():
    servers = []

    def start(project: Path, *args: str, max_files: int | None = None) -> Server:
        servers.append(Server(project, *args, max_files=max_files))
        return servers[-1]

    yield start
    for s in servers:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()


def rows(n: int = 20, seed: int = 5, start_id: int = 0) -> list[dict]:
    frame = make_frame(n, seed=seed, start_id=start_id)
    return frame.drop(columns=["target"]).to_dict("records")


def own_predictions(project: Path, version: str, records: list[dict]) -> np.ndarray:
    """What the version's file scores through retraining.training.predict, in-process."""
    import pandas as pd

    model = load_model(project / "models" / f"catboost_model_{version}.cbm")
    return predict(model, pd.DataFrame(records)[FEATURES], CATS)


def test_deploy_and_rollback_under_load_fail_no_request(project, serve):
    server = serve(project)
    batch = rows(20)
    seen: list[tuple[int, str, list]] = []
    failures: list[str] = []
    stop = threading.Event()

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        while not stop.is_set():
            try:
                status, headers, body = server.request("POST", "/predict", orjson.dumps(batch), conn)
                seen.append((status, body.get("version"), body.get("predictions")))
                assert headers["x-model-version"] == body.get("version")
            except (OSError, http.client.HTTPException, AssertionError) as exc:
                failures.append(repr(exc))
                conn.close()
        conn.close()

    thread = threading.Thread(target=client)
    thread.start()
    try:
        retrain(project, "--seed", "11", "--force", "--rule", "strict", "--min-improvement", "-1")  # deploys v1.2.0 under load (strict: no slide guard)
        server.wait_for(lambda h: h["version"] == "v1.2.0", "the deploy")
        n_deployed = len(seen)
        retrain(project, "--promote", "v1.0.0")  # and rolls it back
        server.wait_for(lambda h: h["version"] == "v1.0.0", "the rollback")
        deadline = time.monotonic() + 10
        while len(seen) < n_deployed + 20 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join()
    assert failures == [] and {s for s, _, _ in seen} == {200}
    versions = [v for _, v, _ in seen]
    runs = [v for i, v in enumerate(versions) if i == 0 or versions[i - 1] != v]
    assert runs == ["v1.0.0", "v1.2.0", "v1.0.0"], runs  # each was production at some moment, in that order
    for version in ("v1.0.0", "v1.2.0"):
        expected = own_predictions(project, version, batch)
        answers = {tuple(p) for _, v, p in seen if v == version}
        assert len(answers) == 1 and np.array_equal(np.array(answers.pop()), expected)
    assert not np.array_equal(own_predictions(project, "v1.0.0", batch), own_predictions(project, "v1.2.0", batch))
    health = server.get("/health")[2]
    assert health["reloads"] == 2 and health["failed_reloads"] == 0 and health["status"] == "ok"
    metrics = server.get("/metrics")[2]["text"]
    assert "catboost_serve_reloads_total 2.0" in metrics and 'catboost_serve_model_info{sha256="' in metrics
    assert server.stop() == 0


def test_bad_requests_get_a_4xx_naming_the_problem_and_the_service_keeps_serving(registry, serve):
    server = serve(registry, "--max-body-bytes", "250000")
    good = rows(3)
    cases = [
        (b"", 400, "empty body"),
        (b"[{", 400, "malformed JSON"),
        (b"[" * 100_000 + b"]" * 100_000, 400, "malformed JSON"),  # deeper than any JSON parser goes
        (b'"just text"', 400, "JSON str"),
        (b"[1, 2]", 400, "row 1 is a JSON int"),
        (b'{"dataframe_split": {"columns": ["x1"], "data": [[1, 2]]}}', 400, "row 1 is not a list of 1 values"),
        (b'{"dataframe_records": [], "inputs": []}', 400, "send one"),
        (orjson.dumps([{k: v for k, v in good[0].items() if k not in ("c1", "x2")}]), 422, "missing feature columns: x2, c1"),
        (orjson.dumps([good[0], {**good[1], "x1": "abc"}]), 422, 'row 2: x1 must be a number (or null), not text "abc"'),
        (orjson.dumps([{**good[0], "x3": True}]), 422, "x3 must be a number"),
        (orjson.dumps([{**good[0], "c1": {"a": 1}}]), 422, "c1 is categorical"),
        (orjson.dumps({"dataframe_split": {"columns": ["x1", "c1"], "data": [[1.0, "red"]]}}), 422, "missing feature columns: x2, x3, c2"),
        (orjson.dumps(good * 1500), 413, "limit"),
        (orjson.dumps(good).replace(b'"red"', b'"\\ud800"').replace(b'"green"', b'"\\ud800"').replace(b'"blue"', b'"\\ud800"'), 400, "lone UTF-16 surrogate"),
        (b'[{"x1": NaN, "\\udc00": 1}]', 400, "lone UTF-16 surrogate"),  # Python's json (the NaN path) would take it
    ]
    for body, status, message in cases:
        got, _, payload = server.post(body)
        assert (got, message in payload.get("error", "")) == (status, True), (body[:80], got, payload)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)  # chunked: no Content-Length to refuse up front
    conn.request("POST", "/predict", body=iter([b" " * 100_000] * 5), headers={"Content-Type": "application/json"}, encode_chunked=True)
    response = conn.getresponse()
    assert response.status == 413 and b"over the limit" in response.read()
    conn.close()
    assert server.get("/predict")[0] == 405 and server.get("/nowhere")[0] == 404
    assert server.proc.poll() is None and server.get("/health")[0] == 200

    # unknown categories and missing values score as CatBoost scores them; extra columns are named
    odd = [{**good[0], "c1": "purple", "extra": 1, "more": "x"}, {**good[1], "x2": None, "c2": None}]
    status, headers, payload = server.post({"dataframe_records": odd}, "/invocations")
    assert status == 200 and headers["x-ignored-columns"] == "customer_id,extra,more"
    clean = [{k: (np.nan if v is None and k == "x2" else v) for k, v in r.items()} for r in odd]
    assert np.array_equal(payload["predictions"], own_predictions(registry, "v1.0.0", clean))
    python_json = json.dumps([{**good[0], "x1": float("nan")}]).encode()  # NaN as Python's json writes it
    assert server.post(python_json)[0] == 200
    split = {"dataframe_split": {"columns": list(good[0]), "data": [list(r.values()) for r in good]}}
    columns = {"inputs": {k: [r[k] for r in good] for k in good[0]}}
    for body in (split, columns, good, good[0]):
        status, _, payload = server.post(body)
        assert status == 200 and np.array_equal(payload["predictions"], own_predictions(registry, "v1.0.0", good[: len(payload["predictions"])]))
    errors = server.get("/metrics")[2]["text"]
    assert 'catboost_serve_request_errors_total{endpoint="/predict",status="422"} 5.0' in errors
    assert server.stop() == 0


def test_nan_is_refused_only_where_the_model_forbids_it():
    table = Table(records=[{"a": 1.0, "b": "x"}, {"a": None, "b": None}])
    assert rows_for(table, ("a", "b"), frozenset({1}), nan_ok=True)[1][1] == "__missing__"
    with pytest.raises(BadRequest, match=r"row 2: a is null, and this model was trained with nan_mode=Forbidden") as info:
        rows_for(table, ("a", "b"), frozenset({1}), nan_ok=False)
    assert info.value.status == 422


def test_torn_or_foreign_production_file_keeps_the_old_model_and_sighup_reloads(project, serve):
    from catboost import CatBoostClassifier

    server = serve(project, "--reload-interval", "3600")  # only SIGHUP makes it look
    prod = project / "catboost_model.cbm"
    good = prod.read_bytes()
    expected = own_predictions(project, "v1.0.0", rows(5))
    prod.write_bytes(good[: len(good) // 2])  # torn
    server.proc.send_signal(signal.SIGHUP)
    health = server.wait_for(lambda h: h["failed_reloads"] == 1, "the torn file to be refused")
    assert health["version"] == "v1.0.0" and health["status"] == "degraded" and "torn or foreign" in health["last_error"]
    assert np.array_equal(server.post(rows(5))[2]["predictions"], expected)
    assert "catboost_serve_last_reload_failed 1.0" in server.get("/metrics")[2]["text"]

    frame = make_frame(200, seed=3)
    model = CatBoostClassifier(iterations=5, verbose=False, thread_count=1, cat_features=CATS, allow_writing_files=False)
    model.fit(frame[FEATURES], frame["target"]).save_model(str(prod))
    server.proc.send_signal(signal.SIGHUP)  # a loadable model with a checksum the log does not know
    health = server.wait_for(lambda h: h["failed_reloads"] == 2, "the foreign file to be refused")
    assert health["version"] == "v1.0.0" and np.array_equal(server.post(rows(5))[2]["predictions"], expected)

    prod.write_bytes(good)
    server.proc.send_signal(signal.SIGHUP)
    server.wait_for(lambda h: h["status"] == "ok", "the good file to be accepted again")
    retrain(project, "--promote", "v1.1.0")
    server.proc.send_signal(signal.SIGHUP)
    health = server.wait_for(lambda h: h["version"] == "v1.1.0", "SIGHUP to load the promotion")
    assert health["reloads"] == 1 and health["failed_reloads"] == 2
    assert np.array_equal(server.post(rows(5))[2]["predictions"], own_predictions(project, "v1.1.0", rows(5)))
    assert server.stop() == 0


@pytest.mark.parametrize("mode", ["split", "shadow"])
def test_live_ab_log_is_analysed_by_ab_test_and_sigterm_flushes_it(registry, serve, tmp_path, mode):
    log = tmp_path / "predictions.jsonl"
    flags = ["--challenger", "v1.1.0", "--id-column", "customer_id", "--log", str(log), "--log-flush-interval", "600"]
    server = serve(registry, *flags, *(["--shadow"] if mode == "shadow" else ["--share", "0.5"]))
    frame = make_frame(300, seed=3, start_id=5000)
    records = frame.drop(columns=["target"]).to_dict("records")
    arms: list[str] = []
    for start in range(0, 300, 30):
        status, _headers, payload = server.post(records[start : start + 30])
        assert status == 200, payload
        arms += payload["arms"]
    assert payload["experiment"] == "v1.0.0-vs-v1.1.0"
    if mode == "split":
        expected = reference_arms(frame["customer_id"].tolist(), "v1.0.0-vs-v1.1.0", 0.5)  # the salt is the experiment id by default
        assert arms == expected and 100 < arms.count("challenger") < 200  # 150 +- 5.8 standard deviations
    else:
        assert set(arms) == {"champion"} and payload["shadow"] == "v1.1.0"
    assert not log.exists() or log.stat().st_size == 0  # nothing flushed yet (600 s interval) ...
    assert server.stop() == 0  # ... SIGTERM flushes
    lines = log.read_text().splitlines()
    assert len(lines) == (300 if mode == "split" else 600)
    write_csv(tmp_path / "outcomes.csv", frame[["customer_id", "target"]])
    analyze = ("analyze", "--log", str(log), "--outcomes", "outcomes.csv", "--id-column", "customer_id", "--label-column", "target", "--json")
    proc = run_script("ab_test.py", *analyze, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["mode"] == mode and report["predictions"] == 300 and report["counts"]["labelled"] == 300
    assert report["versions"] == {"champion": "v1.0.0", "challenger": "v1.1.0"}


def test_ab_requests_need_the_id_and_usage_errors_are_one_line(registry, serve, tmp_path):
    for args, message in (
        (["--shadow"], "--shadow belongs to an A/B test; add --challenger VERSION."),
        (["--challenger", "v1.1.0"], "--challenger needs --id-column NAME"),
        (["--challenger", "v9.0.0", "--id-column", "customer_id"], "v9.0.0 is not in"),
        (["--challenger", "v1.1.0", "--id-column", "customer_id", "--share", "1.5"], "--share must be between 0 and 1"),
    ):
        proc = run_script("serve.py", *args, cwd=registry, timeout=60)
        assert proc.returncode == 2 and proc.stderr.startswith("error: ") and message in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    server = serve(registry, "--challenger", "v1.1.0", "--id-column", "customer_id", "--log", str(tmp_path / "p.jsonl"))
    no_id = [{k: v for k, v in r.items() if k != "customer_id"} for r in rows(2)]
    assert server.post(no_id)[:1] == (422,) and "no entity id column 'customer_id'" in server.post(no_id)[2]["error"]
    null_id = [{**rows(1)[0], "customer_id": None}]
    assert server.post(null_id)[0] == 422
    body = orjson.dumps(rows(1)).replace(b'"customer_id":0', b'"customer_id":%s')
    for id_text, status in ((b"%d" % 2**70, 422), (b"1e300", 422), (b'"\\ud800"', 400), (b"%d" % 2**63, 200), (b'"%d"' % 2**70, 200)):
        got, _, payload = server.post(body % id_text)
        assert got == status, (id_text, got, payload)  # 2**70 arrives as a float: not exact, so refused; as text it is an id
    assert "large as text" in server.post(body % b"%d" % 2**70)[2]["error"]
    assert server.stop() == 0
    assert "Traceback" not in server.log()


def test_every_worker_reloads_and_metrics_add_up_over_workers(project, serve):
    server = serve(project, "--workers", "2")

    def sample(n: int = 40) -> list[dict]:
        return [server.get("/health")[2] for _ in range(n)]  # a new connection each: both workers answer

    deadline = time.monotonic() + 30
    while len({h["pid"] for h in sample()}) < 2:
        assert time.monotonic() < deadline, "only one worker ever answered"
    retrain(project, "--promote", "v1.1.0")
    deadline = time.monotonic() + 30
    while True:
        answers = sample()
        if {h["version"] for h in answers} == {"v1.1.0"} and len({h["pid"] for h in answers}) == 2:
            break
        assert time.monotonic() < deadline, f"not every worker reloaded: {[(h['pid'], h['version']) for h in answers]}"
    assert server.post(rows(3))[2]["version"] == "v1.1.0"
    metrics = server.get("/metrics")[2]["text"]
    assert "catboost_serve_reloads_total 2.0" in metrics  # one reload in each worker, summed
    assert len([line for line in metrics.splitlines() if line.startswith("catboost_serve_model_info{") and line.endswith(" 1.0")]) == 2
    assert server.stop() == 0


def test_recipes_run_serve_py_with_flags_it_has(registry, serve):
    import yaml

    from serve import build_parser

    docker = ROOT / "deploy" / "docker"
    compose = yaml.safe_load((docker / "docker-compose.yml").read_text())["services"]["serve"]
    assert (docker / compose["build"]["context"]).resolve() == ROOT and (ROOT / compose["build"]["dockerfile"]).is_file()
    assert "./state:/state:ro" in compose["volumes"] and compose["ports"] == ["127.0.0.1:8000:8000"]
    hadolint = Path(sys.executable).parent / "hadolint"
    proc = subprocess.run([str(hadolint), str(docker / "Dockerfile.serve")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = (docker / "Dockerfile.serve").read_text().splitlines()
    entrypoint = json.loads(next(ln for ln in lines if ln.startswith("ENTRYPOINT "))[len("ENTRYPOINT ") :])
    for line in lines:
        if line.startswith("COPY "):
            assert all((ROOT / src.rstrip("/")).exists() for src in line.split()[1:-1]), line
    unit = (ROOT / "deploy" / "systemd" / "catboost-serve.service").read_text()
    assert int(next(ln for ln in unit.splitlines() if ln.startswith("LimitNOFILE=")).split("=")[1]) >= 4096
    assert compose["ulimits"]["nofile"] >= 4096 and "--ulimit nofile=" in (docker / "Dockerfile.serve").read_text()
    exec_start = next(ln for ln in unit.splitlines() if ln.startswith("ExecStart=")).split()[1:]
    assert exec_start[0].endswith("/serve.py")
    build_parser().parse_args(exec_start[1:])  # every flag of the unit exists
    assert entrypoint[0] == "catboost-serve"  # the installed serve.py (pyproject.toml's [project.scripts])
    server = serve(registry, *entrypoint[1:], *compose["command"], "--host", "127.0.0.1")  # the container's command line, on a free port
    assert server.get("/version")[2]["version"] == "v1.0.0" and server.post(rows(2))[0] == 200
    assert server.stop() == 0


def test_concurrent_requests_each_get_their_own_rows_scores(registry, serve):
    server = serve(registry)
    batches = [rows(k + 1, seed=20 + k, start_id=100 * k) for k in range(4)]
    expected = [own_predictions(registry, "v1.0.0", b) for b in batches]
    wrong: list = []

    def client(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        for _ in range(40):
            status, _, payload = server.request("POST", "/predict", orjson.dumps(batches[k]), conn)
            if status != 200 or not np.array_equal(payload["predictions"], expected[k]):
                wrong.append((k, status, payload))
        conn.close()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []
    calls = server.get("/health")[2]["scoring_calls"]
    assert calls["requests"] == 160 and calls["calls"] <= calls["requests"]  # requests that arrived together shared a call
    assert server.stop() == 0


def test_a_full_shadow_queue_drops_and_counts_but_never_blocks_and_the_served_lines_stay(registry, tmp_path):
    from retraining.registry import Registry
    from retraining.serving.ab import LiveAB, PredictionLog
    from retraining.serving.inputs import decode
    from retraining.serving.models import load_version

    reg = Registry(registry / "models", registry / "catboost_model.cbm")
    champion, challenger = load_version(reg, "v1.0.0"), load_version(reg, "v1.1.0")
    counts: dict = {}
    plog = PredictionLog(tmp_path / "p.jsonl", lambda experiment: experiment, flush_interval=0.05)

    def count(what: str, n: int) -> None:
        counts[what] = counts.get(what, 0) + n

    ab = LiveAB(challenger, share=0.1, shadow=True, id_column="customer_id", log=plog, queue_size=2, count=count)
    started = time.perf_counter()
    for k in range(50):
        table = decode(orjson.dumps(rows(1, seed=k, start_id=k)))
        batch = rows_for(table, champion.features, champion.cat_indices, champion.nan_ok)
        ab.shadowed(champion, table, batch, ab.ids(table), champion.score(batch))
    assert time.perf_counter() - started < 5  # never waited for the shadow model
    ab.close()
    plog.close()
    lines = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    served, shadow = [x for x in lines if x["served"]], [x for x in lines if not x["served"]]
    assert counts["shadow_dropped"] > 0 and counts[CHAMPION] == 50 == len(served)
    assert len(shadow) == counts["challenger"] == 50 - counts["shadow_dropped"]
    assert {x["model_version"] for x in shadow} == {"v1.1.0"} and plog.dropped == 0
