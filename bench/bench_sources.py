"""Data-source speed (issue #14): CSV vs Parquet, and SQL vs a hand-made COPY pipe, in one run.

    python bench/bench_sources.py                       # 1,000,000 rows x 30 features, 3 repeats
    python bench/bench_sources.py --rows 100000 --repeats 5
    python bench/bench_sources.py --shipped-only        # just the shipped CSV, before vs after

Goals: Parquet read >= 3x faster than the CSV read of the same table; the SQL read within
1.5x of ``COPY (SELECT ...) TO STDOUT (FORMAT csv)`` piped into pyarrow's CSV reader; the
shipped featured_dataset.csv not slower than pandas' pyarrow engine + sha256 (the reader
before this layer). Every timed read ends in a pandas DataFrame; ``read_table`` also
computes the fingerprint, and is timed with it. Data goes to bench/data/ (gitignored); a
throwaway PostgreSQL cluster is started like the tests do (tests/pg.py), unless --pg-url.
Also measured: pandas.read_sql over SQLAlchemy + psycopg, the other candidate reading path.
"""

from __future__ import annotations

import argparse
import csv
import gc
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "bench")]  # helpers; the library is the installed package (pip install -e .)

from measure import machine, median, stamp, table_head, table_row  # noqa: E402

from retraining.fsutil import sha256_file  # noqa: E402
from retraining.sources import SourceSpec, read_table  # noqa: E402

DATA = ROOT / "bench" / "data"


def make_table(rows: int, features: int, seed: int = 0) -> pa.Table:
    """``features`` numeric columns (floats and a few integers), a 5-level category, a 0/1 target."""
    rng = np.random.default_rng(seed)
    cols = {"id": np.arange(rows, dtype=np.int64)}
    for i in range(features - 1):
        cols[f"f{i:02d}"] = rng.integers(0, 1000, rows) if i % 6 == 5 else rng.normal(size=rows).round(5)
    cols["segment"] = rng.choice(["a", "b", "c", "d", "e"], rows)
    cols["target"] = (rng.random(rows) < 0.3).astype(np.int64)
    return pa.table(cols)


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        gc.collect()
        t = time.perf_counter()
        frame = fn()
        out.append(time.perf_counter() - t)
        del frame
    return out


def interleave(cases: dict, repeats: int) -> dict[str, float]:
    """Median seconds of each case, the cases run in turn ``repeats`` times (so load drifts hit all)."""
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            times[name] += timed(fn, 1)
    for name, ts in times.items():
        print(f"  {name}: " + ", ".join(f"{t:.3f}" for t in ts) + " s", flush=True)
    return {k: median(v) for k, v in times.items()}


def reader_before_14(path: Path) -> pd.DataFrame:
    """What load_dataset did before the sources layer (data.read_csv + sha256_file), minus its error branches."""
    with path.open("rb") as fh:
        head = fh.read(1 << 16)
    first_line = head.decode("utf-8-sig").splitlines()[0]
    delimiter = max((",", ";", "\t", "|"), key=lambda d: (first_line.count(d), d == ","))
    header = next(csv.reader(io.StringIO(first_line), delimiter=delimiter))
    names = [h.strip() for h in header]
    seen: set[str] = set()
    assert not [n for n in names if n in seen or seen.add(n)]
    frame = pd.read_csv(path, sep=delimiter, engine="pyarrow", encoding="utf-8-sig")
    frame.columns = [str(c).strip() for c in frame.columns]
    assert len(frame) > 0
    sha256_file(path)
    return frame


def shipped(repeats: int) -> str:
    path = ROOT / "featured_dataset.csv"

    def before():
        return reader_before_14(path)

    m = interleave({"before": before, "after": lambda: read_table(path)}, repeats)
    rows = len(pd.read_csv(path, engine="pyarrow"))
    return "\n".join(
        [
            f"Shipped dataset ({rows} rows), median of {repeats}, {stamp()}, {machine()}:\n",
            table_head("reader", "median", "ratio"),
            table_row("data.read_csv + sha256_file (before #14)", f"{m['before'] * 1000:.1f} ms", "1.00"),
            table_row("sources.read_table (after)", f"{m['after'] * 1000:.1f} ms", f"{m['after'] / m['before']:.2f}"),
        ]
    )


def files(arrow: pa.Table, repeats: int) -> tuple[str, dict]:
    DATA.mkdir(parents=True, exist_ok=True)
    csv_path, pq_path = DATA / "sources.csv", DATA / "sources.parquet"
    pacsv.write_csv(arrow, csv_path)
    pq.write_table(arrow, pq_path)
    cases = {"csv": lambda: read_table(csv_path), "parquet": lambda: read_table(pq_path)}
    m = interleave(cases, repeats)
    sizes = {"csv": csv_path.stat().st_size, "parquet": pq_path.stat().st_size}
    lines = [table_head("source", "file size", "read_table median", "CSV / this")]
    lines += [table_row(k, f"{sizes[k] / 2**20:.0f} MiB", f"{m[k]:.3f} s", f"{m['csv'] / m[k]:.2f}") for k in cases]
    return "\n".join(lines), m


def copy_pipe(cluster_url: str, bin_dir: Path, name: str):
    """The by-hand baseline: psql COPY ... TO STDOUT (FORMAT csv) piped into pyarrow's CSV reader."""

    def run():
        argv = [str(bin_dir / "psql"), "-X", "-q", "-d", cluster_url, "-c", f'COPY (SELECT * FROM "{name}") TO STDOUT (FORMAT csv, HEADER)']
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE)
        arrow = pacsv.read_csv(proc.stdout)
        if proc.wait() != 0:
            raise SystemExit("psql COPY failed")
        return arrow.to_pandas()

    return run


def sql(arrow: pa.Table, repeats: int, url: str, bin_dir: Path, sqlalchemy_repeats: int) -> tuple[str, dict]:
    import adbc_driver_postgresql.dbapi as pgdb

    with pgdb.connect(url) as conn:
        with conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS bench_sources")
            cur.adbc_ingest("bench_sources", arrow, mode="create")
        conn.commit()

    def adbc_only():
        with pgdb.connect(url) as conn, conn.cursor() as cur:
            cur.execute('SELECT * FROM "bench_sources"')
            return cur.fetch_arrow_table().to_pandas()

    cases = {
        "COPY csv piped into pyarrow (baseline)": copy_pipe(url, bin_dir, "bench_sources"),
        "read_table (ADBC + fingerprint)": lambda: read_table(SourceSpec(url, table="bench_sources")),
        "ADBC fetch + to_pandas only": adbc_only,
    }
    m = interleave(cases, repeats)
    try:
        import sqlalchemy

        engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        slow = interleave({"sqlalchemy": lambda: pd.read_sql('SELECT * FROM "bench_sources"', engine)}, sqlalchemy_repeats)
        m["pandas.read_sql (SQLAlchemy + psycopg)"] = slow["sqlalchemy"]
        engine.dispose()
    except ImportError as exc:
        print(f"  pandas.read_sql path skipped: {exc} (pip install sqlalchemy 'psycopg[binary]')")
    base = m["COPY csv piped into pyarrow (baseline)"]
    lines = [table_head("reader", "median", "ratio to COPY pipe")]
    lines += [table_row(k, f"{v:.3f} s", f"{v / base:.2f}") for k, v in m.items()]
    return "\n".join(lines), m


def start_cluster():
    import pg

    base = Path(tempfile.mkdtemp(prefix="bench-pg-", dir="/tmp"))
    base.chmod(0o755)
    cluster = pg.start(base)
    cluster.psql(f"CREATE DATABASE {pg.DATABASE}", database="postgres")
    return cluster, base


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--features", type=int, default=30)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--shipped-repeats", type=int, default=21)
    p.add_argument("--sqlalchemy-repeats", type=int, default=1, help="pandas.read_sql is slow; time it this often")
    p.add_argument("--pg-url", help="an existing PostgreSQL database to use instead of a throwaway cluster")
    p.add_argument("--shipped-only", action="store_true")
    args = p.parse_args(argv)
    print(shipped(args.shipped_repeats), "\n", flush=True)
    if args.shipped_only:
        return 0
    arrow = make_table(args.rows, args.features)
    print(f"{args.rows} rows x {args.features} features (+ category, target), median of {args.repeats}, {stamp()}, {machine()}:", flush=True)
    text, _ = files(arrow, args.repeats)
    print(text, "\n", flush=True)
    cluster = base = None
    if args.pg_url:
        url, bin_dir = args.pg_url, Path(shutil.which("psql") or "psql").parent
    else:
        import pg

        cluster, base = start_cluster()
        url, bin_dir = cluster.url(), cluster.bin
        os.environ["PGPASSWORD"] = pg.PASSWORD
    try:
        text, _ = sql(arrow, args.repeats, url, bin_dir, args.sqlalchemy_repeats)
        print(text, flush=True)
    finally:
        if cluster is not None:
            import pg

            pg.stop(cluster)
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
