"""A throwaway PostgreSQL server for the tests (Debian's ``postgresql`` package; .ci/run installs it).

``postgres`` is a session fixture: initdb in a fresh temp dir, a free port on 127.0.0.1,
password (scram-sha-256) logins only, ``pg_ctl stop`` at teardown. As root the server runs
as the ``postgres`` user (created when missing), since PostgreSQL refuses to run as root.
Import it into a test module with ``from pg import postgres``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import free_port

USER = "retrain"
PASSWORD = "s3cret-Pa55word"  # the tests check that this string is in no output and no written file
DATABASE = "retrain"


@dataclass
class Cluster:
    bin: Path
    data: Path
    port: int
    run_as: list[str]

    def url(self, password: str | None = PASSWORD, database: str = DATABASE, driver: str = "") -> str:
        auth = f"{USER}:{password}" if password else USER
        return f"postgresql{driver}://{auth}@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = DATABASE, stdin: str | None = None) -> str:
        """Run SQL with psql as the test user; raise on error; return stdout."""
        env = {**os.environ, "PGPASSWORD": PASSWORD}
        argv = [str(self.bin / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, "-d", database, "-c", sql]
        return subprocess.run(argv, input=stdin, env=env, capture_output=True, text=True, check=True).stdout


def pg_bin() -> Path | None:
    """The newest /usr/lib/postgresql/N/bin that has initdb (Debian's layout), or None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    return found[-1].parent if found else None


def _run_as() -> list[str]:
    if os.name != "posix" or os.geteuid() != 0:
        return []
    if subprocess.run(["id", "-u", "postgres"], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--system", "--no-create-home", "postgres"], check=True)
    return ["runuser", "-u", "postgres", "--"]


def start(base: Path) -> Cluster:
    """initdb + pg_ctl start in ``base`` (which must be reachable by the server's user)."""
    bin_dir = pg_bin()
    assert bin_dir is not None
    run_as = _run_as()
    (base / "pw").write_text(PASSWORD + "\n")
    if run_as:
        shutil.chown(base, "postgres")
        shutil.chown(base / "pw", "postgres")
    data, port = base / "data", free_port()
    init = [str(bin_dir / "initdb"), "-D", str(data), "-U", USER, f"--pwfile={base / 'pw'}", "--auth=scram-sha-256", "-E", "UTF8", "--locale=C"]
    subprocess.run([*run_as, *init], check=True, capture_output=True)
    opts = f"-h 127.0.0.1 -p {port} -k {base} -c fsync=off -c full_page_writes=off -c synchronous_commit=off"
    ctl = [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(base / "server.log"), "-w", "-t", "60", "-o", opts, "start"]
    subprocess.run([*run_as, *ctl], check=True, capture_output=True)
    return Cluster(bin_dir, data, port, run_as)


def stop(cluster: Cluster) -> None:
    subprocess.run([*cluster.run_as, str(cluster.bin / "pg_ctl"), "-D", str(cluster.data), "-m", "fast", "-w", "stop"], capture_output=True)


@pytest.fixture(scope="session")
def postgres():
    """A running throwaway cluster with database ``retrain``, user ``retrain`` / PASSWORD."""
    if pg_bin() is None:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql; .ci/run does this)")
    base = Path(tempfile.mkdtemp(prefix="retrain-pg-", dir="/tmp" if os.name == "posix" else None))
    base.chmod(0o755)
    cluster = start(base)
    try:
        cluster.psql(f"CREATE DATABASE {DATABASE}", database="postgres")
        yield cluster
    finally:
        stop(cluster)
        shutil.rmtree(base, ignore_errors=True)
