"""serve.py under hostile clients: half-sent heads and bodies, huge headers, a flood of idle
sockets at the file limit, SIGTERM during an upload, SIGHUP to a multi-worker parent.

Real serve.py processes on 127.0.0.1 (test_serve.py's Server), raw sockets for what a
well-behaved HTTP client would never send; every loop is bounded and stops by itself.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import threading
import time

import orjson
import pytest
from test_serve import project, registry, retrain, rows, serve  # noqa: F401 - fixtures shared with test_serve.py

pytestmark = pytest.mark.skipif(os.name == "nt", reason="signals and file limits (RLIMIT_NOFILE) are POSIX")


def connect(port: int, data: bytes = b"", timeout: float = 30) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if data:
        sock.sendall(data)
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (b"" if it resets)."""
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def status_of(answer: bytes) -> int | None:
    return int(answer.split()[1]) if answer.startswith(b"HTTP/1.1 ") else None


def post(port: int, body: bytes, conn: http.client.HTTPConnection | None = None) -> int:
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/predict", body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        if own:
            conn.close()


HALF_HEAD = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: appl"


def test_half_sent_heads_and_bodies_are_closed_in_time_and_a_huge_header_is_refused_at_once(registry, serve):  # noqa: F811
    server = serve(registry, "--header-timeout", "1.5", "--body-timeout", "1.5")
    body = orjson.dumps(rows(2))
    started = time.monotonic()
    silent = [connect(server.port) for _ in range(5)]  # connect and say nothing
    half = [connect(server.port, HALF_HEAD) for _ in range(5)]
    half_body = connect(server.port, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n[{")
    answers = [read_all(s) for s in (*silent, *half, half_body)]
    waited = time.monotonic() - started
    assert {status_of(a) for a in answers[:-1]} == {408} and b"did not arrive within 1.5 s" in answers[0]
    assert status_of(answers[-1]) == 408 and b"no body bytes for 1.5 s" in answers[-1]
    assert 1.4 < waited < 10, waited  # closed by the timeout, not before it and not much after

    result: dict = {}

    def huge() -> None:  # a 2 MiB header, sent while other clients are served
        t = time.monotonic()
        sock = connect(server.port)
        try:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (2 * 1024 * 1024) + b"\r\n\r\n")
        except OSError as exc:  # refused before it was all sent: the server may reset the rest
            result["send_error"] = repr(exc)
        result["answer"], result["seconds"] = read_all(sock), time.monotonic() - t
        sock.close()

    thread = threading.Thread(target=huge)
    thread.start()
    statuses = [post(server.port, body) for _ in range(20)]
    thread.join(timeout=60)
    assert statuses == [200] * 20
    assert status_of(result["answer"]) == 431 or "send_error" in result, result
    assert result["seconds"] < 5, result["seconds"]
    for sock in (*silent, *half, half_body):
        sock.close()
    assert server.post(rows(1))[0] == 200 and server.stop() == 0
    assert "Traceback" not in server.log()


def _raise_own_file_limit(want: int) -> int:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def test_a_flood_of_idle_sockets_at_the_file_limit_locks_out_no_client(registry, serve):  # noqa: F811
    own = _raise_own_file_limit(4096)
    flood = min(1100, own - 200)
    if flood <= 600:
        pytest.skip(f"this test process may open only {own} files; the flood needs more than the server's 256")
    server = serve(registry, "--header-timeout", "60", "--body-timeout", "60", max_files=256)  # cap: 256 - 64 = 192
    assert "Up to 192 connections per worker (open-file limit 256)" in server.log()
    body = orjson.dumps(rows(1))
    idle = []
    try:
        for k in range(flood):  # half a header each: never a request the server can answer
            idle.append(connect(server.port, HALF_HEAD))
            if k % 100 == 99:
                assert post(server.port, body) == 200, f"a normal client was refused after {k + 1} idle sockets"
        statuses = [post(server.port, body) for _ in range(50)]
        keep_alive = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        statuses += [post(server.port, body, keep_alive) for _ in range(50)]
        keep_alive.close()
        assert statuses == [200] * 100
        open_files = len(os.listdir(f"/proc/{server.proc.pid}/fd")) if os.path.isdir("/proc") else 0
        assert open_files < 256, open_files

        # every connection busy with a request (half-sent bodies): a new one is refused with 503, or closed
        busy = [connect(server.port, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n[") for _ in range(192)]
        time.sleep(0.5)
        refused = connect(server.port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = read_all(refused)
        refused.close()
        assert answer == b"" or status_of(answer) == 503, answer[:200]
        for sock in busy:
            sock.close()
        time.sleep(0.5)
        assert post(server.port, body) == 200
    finally:
        for sock in idle:
            sock.close()
    counted = server.get("/health")[2]["connections"]
    assert counted["evicted"] >= flood - 192 and counted["refused"] >= 1, counted
    log = server.log()
    assert "Too many open files" not in log and "Traceback" not in log
    assert "closing the idle ones, oldest first" in log and "refusing new ones with 503" in log
    assert server.stop() == 0


def test_sigterm_during_a_half_sent_upload_exits_within_the_graceful_timeout_with_a_503(registry, serve):  # noqa: F811
    server = serve(registry, "--graceful-timeout", "2", "--body-timeout", "60")
    upload = connect(server.port, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n[{" + b" " * 1000)
    time.sleep(0.3)
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    answer = read_all(upload)
    upload.close()
    code = server.proc.wait(timeout=30)
    waited = time.monotonic() - started
    assert status_of(answer) == 503 and b"shutting down" in answer, answer[:300]
    assert code == 0 and waited < 2 + 5, waited
    assert " 500" not in server.log() and "Traceback" not in server.log()


def test_sighup_to_a_two_worker_parent_drops_no_request_and_replaces_no_worker(project, serve):  # noqa: F811
    server = serve(project, "--workers", "2")
    body = orjson.dumps(rows(3))
    deadline = time.monotonic() + 30
    while len(pids_before := {server.get("/health")[2]["pid"] for _ in range(40)}) < 2:  # a new connection each: both answer
        assert time.monotonic() < deadline, "only one worker ever answered"
    answers: list[tuple[int, str]] = []
    failures: list[str] = []
    stop = threading.Event()

    def client(keep_alive: bool, pause: float = 0.0) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30) if keep_alive else None
        while not stop.wait(pause):  # pause > 0: a keep-alive connection mostly idle, as when a worker was replaced
            try:
                status, _, payload = server.request("POST", "/predict", body, conn)
                answers.append((status, payload.get("version")))
            except (OSError, http.client.HTTPException) as exc:
                failures.append(repr(exc))
                if conn is not None:
                    conn.close()
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=client, args=(k % 2 == 0,)) for k in range(4)]
    threads += [threading.Thread(target=client, args=(True, 0.3))]
    for t in threads:
        t.start()
    try:
        for k in range(6):
            time.sleep(0.5)
            if k == 2:
                retrain(project, "--promote", "v1.1.0")
            server.proc.send_signal(signal.SIGHUP)
        time.sleep(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert failures == [] and len(answers) > 100
    assert {s for s, _ in answers} == {200} and answers[-1][1] == "v1.1.0"
    health = [server.get("/health")[2] for _ in range(80)]
    assert {h["pid"] for h in health} <= pids_before and {h["version"] for h in health} == {"v1.1.0"}  # the same workers, reloaded
    assert server.log().count("SIGHUP passed on to 2 of 2 workers") == 6
    assert server.stop() == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--max-connections", "100000000"], "--max-connections 100000000 needs a file limit of at least 100000064; this process has"),
        (["--header-timeout", "0"], "--header-timeout, --max-header-bytes, --body-timeout, --graceful-timeout and --max-connections must be positive."),
        (["--max-connections", "0"], "must be positive"),
    ],
)
def test_limits_that_cannot_hold_are_one_line_and_exit_2(tmp_path, argv, message):
    from helpers import run_main

    from retraining.serving.runner import file_limit
    from serve import main

    if argv[1] == "100000000" and (file_limit() or 0) == 0:
        pytest.skip("no finite open-file limit here: any --max-connections fits")
    ran = run_main(main, *argv, cwd=tmp_path)
    assert ran.returncode == 2 and message in ran.stderr and len(ran.stderr.strip().splitlines()) == 1, ran.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written, nothing served
