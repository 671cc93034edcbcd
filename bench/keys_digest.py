"""The row keys of a fixed, varied frame as one digest: run it under two pandas versions and compare.

    python bench/keys_digest.py [path/to/keys.py]

``requirements.txt`` allows ``pandas>=2.1``, and a ledger on disk holds keys from whatever
pandas trained it, so the keys must not depend on the version. The test suite runs on one
pandas; this script loads ``retraining/data/keys.py`` by its path (numpy and pandas are all
it needs), so it also runs in a bare venv with the oldest pandas, e.g.::

    python -m venv /tmp/pd21 && /tmp/pd21/bin/pip install "pandas==2.1.4" "numpy==1.26.4"
    /tmp/pd21/bin/python bench/keys_digest.py; .venv/bin/python bench/keys_digest.py   # same digest

The frame has what differs between versions: -0.0, NaN, float32, nullable Int64 with gaps,
missing, empty and NUL-padded text, booleans, timestamps. Missing ids are left out (a
dataset refuses them; their text is "<NA>" or "nan" by version).
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "retraining" / "data" / "keys.py"
    spec = importlib.util.spec_from_file_location("keys_under_test", path)
    keys = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(keys)
    rng = np.random.default_rng(7)
    n = 5000
    frame = pd.DataFrame(
        {
            "i": rng.integers(-50, 50, n),
            "f": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n).round(3)),
            "z": rng.choice([0.0, -0.0, 1.5, np.nan], n),
            "f32": rng.choice([0.5, 2.25, -0.0, np.nan], n).astype("float32"),
            "I": pd.array(np.where(rng.random(n) < 0.2, None, rng.integers(0, 9, n)), dtype="Int64"),
            "t": pd.Series(rng.choice(np.array(["a", "b", "a\x00", "", "x y", None, "3.5", "00042"], dtype=object), n), dtype=object),
            "flag": rng.choice([True, False], n),
            "when": pd.to_datetime(rng.choice(["2026-01-01", "2026-02-03 04:05:06"], n), format="ISO8601"),
        }
    )
    out = {"content": keys.content_hashes(frame)}
    out.update({f"content_{c}": keys.content_hashes(frame[[c]]) for c in frame.columns})
    ids = {
        "int": pd.Series(rng.integers(0, 10**9, n)),
        "float": pd.Series(rng.integers(0, 10**6, n).astype(float)),
        "text": pd.Series(rng.choice(np.array(["00042", " 42 ", "42.0", "7\x00", "7", "abc"], dtype=object), n), dtype=object),
        "Int64": pd.Series(pd.array(rng.integers(0, 99, n), dtype="Int64")),
    }
    out.update({f"id_{k}": keys.id_hashes(s) for k, s in ids.items()})
    written = pd.Series(rng.choice(np.array(["00042", " 42.0 ", "4.05", "-7.00", "x"], dtype=object), n), dtype=object)
    out["written"] = keys.id_hashes(keys.written_id_text(written))
    digest = hashlib.sha256()
    for name in sorted(out):
        digest.update(name.encode())
        digest.update(np.asarray(out[name], dtype=np.uint64).tobytes())
    print(f"pandas {pd.__version__}, numpy {np.__version__}: {digest.hexdigest()[:16]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
