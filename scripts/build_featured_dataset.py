"""Build ``featured_dataset.csv`` from the UCI Bank Marketing data (bank-full).

Usage::

    python scripts/build_featured_dataset.py [SOURCE] [--out featured_dataset.csv]

SOURCE defaults to ``../shared/data/bank-full.csv``. The script drops ``duration``
(the call length is only known after the call and leaks the outcome), renames the
outcome column ``term deposit`` to ``target`` with values 0/1, and keeps the row order
(which is the time order of the contacts). Only the standard library is used, so the
output is byte-for-byte reproducible.

Source: S. Moro, P. Cortez, P. Rita (2014), Decision Support Systems 62:22-31; UCI
Machine Learning Repository, DOI 10.24432/C5K306. Licence: CC BY 4.0.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

LEAKY_COLUMNS = ("duration",)
OUTCOME = "term deposit"
POSITIVE = "yes"
NEGATIVE = "no"


def build(source: Path, out: Path) -> int:
    """Write the featured dataset; return the number of data rows written."""
    with source.open(newline="", encoding="utf-8") as fin:
        reader = csv.reader(fin)
        header = next(reader)
        if OUTCOME not in header:
            raise SystemExit(f"error: {source}: no column {OUTCOME!r}; is this bank-full.csv?")
        keep = [i for i, name in enumerate(header) if name not in LEAKY_COLUMNS and name != OUTCOME]
        y_idx = header.index(OUTCOME)
        tmp = out.with_name(out.name + ".tmp")
        rows = 0
        with tmp.open("w", newline="", encoding="utf-8") as fout:
            writer = csv.writer(fout, lineterminator="\n")
            writer.writerow([header[i] for i in keep] + ["target"])
            for lineno, row in enumerate(reader, start=2):
                label = row[y_idx]
                if label not in (POSITIVE, NEGATIVE):
                    raise SystemExit(f"error: {source}:{lineno}: outcome {label!r} is not yes/no")
                writer.writerow([row[i] for i in keep] + ["1" if label == POSITIVE else "0"])
                rows += 1
        tmp.replace(out)
    return rows


def main(argv: list[str] | None = None) -> int:
    root = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", type=Path, default=root.parent / "shared/data/bank-full.csv")
    parser.add_argument("--out", type=Path, default=root / "featured_dataset.csv")
    args = parser.parse_args(argv)
    if not args.source.is_file():
        print(f"error: {args.source} not found; pass the path to bank-full.csv", file=sys.stderr)
        return 2
    rows = build(args.source, args.out)
    print(f"wrote {args.out} ({rows} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
