"""Make the two files an A/B round needs from the shipped data, to try ``ab_test.py`` at once.

Usage::

    python scripts/make_ab_demo.py [--data featured_dataset.csv] [--rows 10000]

It takes the newest ``--rows`` rows of ``--data`` (the shipped file is in time order) as
"incoming traffic" and writes, in the current folder:

- ``incoming.csv``: a ``customer_id`` column (``C00001``, ...) and the feature columns,
  without the outcome: what ``ab_test.py score`` reads;
- ``outcomes.csv``: ``customer_id`` and ``converted`` (the outcome, 0/1): what arrives
  later and ``ab_test.py analyze --outcomes`` joins with the prediction log.

The models have seen most of these rows in training, so the AUCs it leads to are
optimistic: a demonstration of the mechanics, not an evaluation. Standard library only.
"""

from __future__ import annotations

import argparse
import collections
import csv
import os
import sys
from pathlib import Path

ID_COLUMN = "customer_id"
LABEL_COLUMN = "converted"


def newest_rows(data: Path, target: str, rows: int) -> tuple[list[str], collections.deque]:
    """The header and the last ``rows`` rows of ``data``; ValueError if it cannot be used."""
    if not data.is_file():
        raise ValueError(f"{data}: file not found; run this in the project folder or pass --data PATH.")
    with data.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or target not in header:
            raise ValueError(f"{data}: no column {target!r}; pass the training CSV with --data and its outcome with --target.")
        return header, collections.deque(reader, maxlen=rows)


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    """Write ``path`` through a temporary file, so a reader never sees half of it."""
    tmp = path.with_name(f".{path.name}.partial")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    os.replace(tmp, path)


def make_demo(data: Path, target: str, rows: int, out_dir: Path) -> int:
    """Write incoming.csv and outcomes.csv into ``out_dir``; return the number of rows."""
    header, tail = newest_rows(data, target, rows)
    y = header.index(target)
    ids = [f"C{i:05d}" for i in range(1, len(tail) + 1)]
    features = [name for i, name in enumerate(header) if i != y]
    write_csv(out_dir / "incoming.csv", [ID_COLUMN, *features], [[cid, *(v for i, v in enumerate(row) if i != y)] for cid, row in zip(ids, tail, strict=True)])
    write_csv(out_dir / "outcomes.csv", [ID_COLUMN, LABEL_COLUMN], [[cid, row[y]] for cid, row in zip(ids, tail, strict=True)])
    return len(tail)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Make incoming.csv and outcomes.csv for an A/B round from the shipped data.")
    p.add_argument("--data", type=Path, default=Path("featured_dataset.csv"), help="training CSV (default: %(default)s)")
    p.add_argument("--target", default="target", help="its outcome column (default: %(default)s)")
    p.add_argument("--rows", type=int, default=10_000, help="how many of the newest rows to use (default: %(default)s)")
    args = p.parse_args(argv)
    if args.rows < 1:
        p.error("--rows must be at least 1")
    try:
        n = make_demo(args.data, args.target, args.rows, Path.cwd())
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote incoming.csv ({n} rows, id column {ID_COLUMN}) and outcomes.csv ({ID_COLUMN}, {LABEL_COLUMN})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
