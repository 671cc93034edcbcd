"""Ids are text as written (#23 item 6): training, the ledger, the scorer and the A/B joins agree; older ledgers still match.

Expected values come from the files (the CSV's cells counted with the csv module, the
ledger read with numpy) or from the documented hash in plain Python, never from the
function under test.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import make_frame, retrainer, run_main, write_csv

from retraining.ab.predlog import entity_hashes

MODELS = ("--models-dir", "models", "--production", "catboost_model.cbm")


def ledger_file(root: Path, version: str) -> dict:
    with np.load(root / "models" / "ledgers" / f"{version}.npz") as npz:
        return {"train": npz["train"], "holdout": npz["holdout"], "meta": json.loads(npz["meta"].tobytes())}


def rewrite_meta(root: Path, version: str, **changes) -> None:
    """The ledger as an older program wrote it (meta fields removed or changed), same keys."""
    stored = ledger_file(root, version)
    meta = {k: v for k, v in {**stored["meta"], **changes}.items() if v is not None}
    path = root / "models" / "ledgers" / f"{version}.npz"
    np.savez(path, train=stored["train"], holdout=stored["holdout"], meta=np.frombuffer(json.dumps(meta).encode(), np.uint8))


def padded(frame: pd.DataFrame, width: int = 6) -> pd.DataFrame:
    return frame.assign(customer_id=[f"{int(i):0{width}d}" for i in frame["customer_id"]])


def written_ids(path: Path) -> list[str]:
    with path.open(newline="") as f:
        return [row["customer_id"] for row in csv.DictReader(f)]


def test_ids_that_parse_to_one_number_stay_distinct_rows(tmp_path):
    """ "42", "042" and "0042" are three customers: three keys in the ledger, where parsing made them one."""
    frame = make_frame(600, seed=4)
    ids = [f"{i % 200:0{1 + i // 200}d}" for i in range(600)]  # 0..199 written with 1, 2 and 3 digits at least
    write_csv(tmp_path / "data.csv", frame.assign(customer_id=ids))
    retrainer(tmp_path, id_column="customer_id", report=False).retrain()
    stored = ledger_file(tmp_path, "v1.0.0")
    assert stored["meta"]["ids"] == "text"
    keys = np.concatenate([stored["train"], stored["holdout"]])
    distinct = set(written_ids(tmp_path / "data.csv"))
    assert len(np.unique(keys)) == len(distinct) == 310 and len({int(i) for i in distinct}) == 200  # as numbers they would be 200


@pytest.fixture
def legacy(tmp_path) -> Path:
    """v1.0.0 trained on plain integer ids, its ledger made to look as an older program wrote it (ids as parsed numbers)."""
    write_csv(tmp_path / "data.csv", make_frame(600, seed=5))
    retrainer(tmp_path, id_column="customer_id", report=False).retrain()
    rewrite_meta(tmp_path, "v1.0.0", ids=None)
    assert "ids" not in ledger_file(tmp_path, "v1.0.0")["meta"]
    return tmp_path


def test_a_version_trained_before_ids_were_text_still_matches_its_rows(legacy):
    """The export now writes the same ids zero-padded: an older ledger (ids parsed: "000042" was 42) still knows every row."""
    old = pd.read_csv(legacy / "data.csv")
    write_csv(legacy / "data.csv", padded(pd.concat([old, make_frame(100, seed=6, start_id=5_000)], ignore_index=True)))
    result = retrainer(legacy, id_column="customer_id", report=False, min_improvement=1.0).retrain()
    assert result.rows["basis"] == "keys" and result.rows["new"] == 100 and result.rows["seen"] == 600, result.rows
    assert ledger_file(legacy, "v1.1.0")["meta"]["ids"] == "text"  # the new version keys the ids as written


def test_a_ledger_of_text_ids_does_not_take_parsed_ids_for_its_own(legacy):
    """The rule, broken on purpose: said to hold text ids, the older ledger no longer matches the padded ids (every row counts as new)."""
    rewrite_meta(legacy, "v1.0.0", ids="text")
    write_csv(legacy / "data.csv", padded(pd.read_csv(legacy / "data.csv")))
    result = retrainer(legacy, id_column="customer_id", report=False, min_improvement=1.0).retrain()
    assert result.rows["new"] == 600 and result.rows["seen"] == 0, result.rows


def test_the_scorer_keys_padded_ids_as_an_older_ledger_did(legacy):
    from ab_test import main

    old = pd.read_csv(legacy / "data.csv")
    write_csv(legacy / "in.csv", padded(old).drop(columns=["target"]))
    ran = run_main(main, "score", "in.csv", "--id-column", "customer_id", "--production-only", "--out", "o.csv", "--log", "p.jsonl", *MODELS, cwd=legacy)
    assert ran.returncode == 0, ran.stderr
    lines = [json.loads(x) for x in (legacy / "p.jsonl").read_text().splitlines()]
    stored = ledger_file(legacy, "v1.0.0")
    assert np.array_equal(np.sort(np.array([int(x["key"], 16) for x in lines], dtype=np.uint64)), np.sort(np.concatenate([stored["train"], stored["holdout"]])))


def test_outcome_ids_as_written_join_and_leave_out_training_rows(tmp_path):
    """Trained on padded ids, scored and joined as written: every training row is left out; ids that lost their zeros do not join."""
    from ab_test import main

    frame = padded(make_frame(600, seed=8))
    write_csv(tmp_path / "data.csv", frame)
    retrainer(tmp_path, id_column="customer_id", report=False).retrain()
    retrainer(tmp_path, id_column="customer_id", report=False, seed=9, min_improvement=1.0).retrain(force=True)
    new = padded(make_frame(300, seed=10, start_id=7_000))
    traffic = pd.concat([frame, new], ignore_index=True)
    write_csv(tmp_path / "in.csv", traffic.drop(columns=["target"]))
    ran = run_main(main, "score", "in.csv", "--id-column", "customer_id", "--share", "0.5", "--out", "o.csv", "--log", "p.jsonl", *MODELS, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    lost = traffic[["customer_id", "target"]].assign(customer_id=[str(int(i)) for i in traffic["customer_id"]])  # a spreadsheet dropped the zeros
    write_csv(tmp_path / "outcomes.csv", pd.concat([traffic[["customer_id", "target"]], lost.iloc[:5]], ignore_index=True))
    argv = ("analyze", "--log", "p.jsonl", "--outcomes", "outcomes.csv", "--id-column", "customer_id", "--label-column", "target", "--json", *MODELS)
    ran = run_main(main, *argv, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    counts = json.loads(ran.stdout)["counts"]
    assert counts["rows_excluded_trained_on"] == len(ledger_file(tmp_path, "v1.0.0")["train"])
    assert counts["unknown_ids"] == 5 and "training_rows_unknown" not in counts


def reference_hash(data: bytes, salt: str) -> int:
    """The documented algorithm of entity_hashes over the bytes of an id's text, in plain Python."""
    mask = (1 << 64) - 1

    def fmix64(h: int) -> int:
        h ^= h >> 33
        h = (h * 0xFF51AFD7ED558CCD) & mask
        h ^= h >> 33
        h = (h * 0xC4CEB9FE1A85EC53) & mask
        return h ^ (h >> 33)

    h = int.from_bytes(hashlib.blake2b(salt.encode("utf-8"), digest_size=8).digest(), "little")
    padded_data = data + b"\0" * (-len(data) % 8)
    for i in range(0, len(padded_data), 8):
        h = fmix64(h ^ int.from_bytes(padded_data[i : i + 8], "little"))
    return fmix64(h ^ ((len(data) * 0x9E3779B97F4A7C15) & mask))


def test_entity_hashes_are_total_for_what_the_server_can_accept():
    """Floats of 2**63 and more, lone surrogates, whole floats beside fractions, booleans: a hash each, by the documented rule."""
    huge = [2.0**63, 2.0**70, -(2.0**64), 1e300]
    assert [int(h) for h in entity_hashes(huge, "s")] == [reference_hash(str(int(v)).encode(), "s") for v in huge]
    assert [int(h) for h in entity_hashes(np.array(huge), "s")] == [reference_hash(str(int(v)).encode(), "s") for v in huge]
    assert entity_hashes([2**70], "s")[0] == entity_hashes(["1180591620717411303424"], "s")[0] == entity_hashes([2.0**70], "s")[0]
    lone = ["\ud800", "a\udfff", " \ud83d "]
    assert [int(h) for h in entity_hashes(lone, "s")] == [reference_hash(t.strip().encode("utf-8", "surrogatepass"), "s") for t in lone]
    assert [int(h) for h in entity_hashes(np.array(lone, dtype=object), "s")] == [int(h) for h in entity_hashes(lone, "s")]
    mixed = entity_hashes([1.5, 2.0, float("inf"), True, "x", 7], "s")
    assert [int(h) for h in mixed] == [reference_hash(t.encode(), "s") for t in ("1.5", "2", "inf", "True", "x", "7")]
