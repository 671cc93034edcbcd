"""The outcome CSV's id column is read once, every cell as written (issue #20: the monitor's rerun speed).

``read_table(..., text_columns=(ID,))`` must give the id cells exactly as the file has them
("00042" stays "00042", "NA" and empty cells stay text), the other columns as before; the
expected values are the file's text, written by hand in each test.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import run_main
from test_monitor import deployed, traffic, write_log  # noqa: F401  (deployed is a fixture)

from retraining.monitoring.cli import main
from retraining.sources import read_table


def _ids(table) -> list[str]:
    return [str(v) for v in table.frame["id"].tolist()]


def test_leading_zeros_and_mixed_ids_stay_as_written_and_labels_stay_numbers(tmp_path: Path) -> None:
    path = tmp_path / "o.csv"
    path.write_text("id,label\n00042,1\na7,0\n42,1\n42.0,0\n 7 ,1\n-3,0\n", encoding="utf-8")
    table = read_table(path, text_columns=("id",))
    assert _ids(table) == ["00042", "a7", "42", "42.0", " 7 ", "-3"]
    assert table.frame["label"].tolist() == [1, 0, 1, 0, 1, 0] and table.frame["label"].dtype.kind == "i"
    assert not any("'id'" in n for n in table.notes)  # the id column is never "read as numbers"


def test_all_digit_ids_are_text_not_numbers(tmp_path: Path) -> None:
    path = tmp_path / "o.csv"
    path.write_text("id,label\n00001,1\n00002,0\n00010,1\n", encoding="utf-8")
    assert _ids(read_table(path, text_columns=("id",))) == ["00001", "00002", "00010"]
    assert read_table(path).frame["id"].tolist() == [1, 2, 10]  # without text_columns: numbers, as before


@pytest.mark.parametrize("missing", ["", "NA", "null", "NaN"])
def test_cells_that_read_as_missing_stay_as_written(tmp_path: Path, missing: str) -> None:
    path = tmp_path / "o.csv"
    path.write_text(f"id,label\n00042,1\n{missing},0\n7,\n", encoding="utf-8")
    table = read_table(path, text_columns=("id",))
    assert _ids(table) == ["00042", missing, "7"]
    assert np.isnan(table.frame["label"].iloc[2])  # a missing label is still missing


def test_spaced_header_semicolons_and_quotes(tmp_path: Path) -> None:
    path = tmp_path / "o.csv"
    path.write_text(' id ;label\n"00042";1\n"a;b";0\n', encoding="utf-8")
    table = read_table(path, text_columns=("id",))
    assert _ids(table) == ["00042", "a;b"] and table.frame["label"].tolist() == [1, 0]


def test_legacy_encoding_ids(tmp_path: Path) -> None:
    path = tmp_path / "o.csv"
    path.write_bytes("id,label,city\n0042,1,Zürich\n0043,0,Genève\n".encode("cp1252"))
    table = read_table(path, text_columns=("id",))
    assert _ids(table) == ["0042", "0043"] and table.frame["city"].tolist() == ["Zürich", "Genève"]


def test_monitor_joins_zero_padded_mixed_and_empty_ids_as_written(deployed: Path) -> None:  # noqa: F811
    """Of 6 outcome rows: 3 zero-padded ids that were served, "42.0" for served "42", an empty id and "NA" (served by no one)."""
    live = traffic(n=400)
    live["customer_id"] = [f"{i:07d}" for i in live["customer_id"]]
    live.loc[0, "customer_id"] = "42"
    write_log(deployed / "predictions.jsonl", deployed, live, "v1.0.0")
    rows = [("42.0", 1), (live["customer_id"][1], 0), (live["customer_id"][2], 1), (live["customer_id"][3], 0), ("", 1), ("NA", 0)]
    text = "customer_id,target\n" + "".join(f"{i},{y}\n" for i, y in rows)
    (deployed / "outcomes.csv").write_text(text, encoding="utf-8")
    ran = run_main(
        main, "--log", "predictions.jsonl", "--outcomes", "outcomes.csv", "--id-column", "customer_id", "--label-column", "target", "--json", cwd=deployed
    )
    assert ran.returncode == 0, ran.stderr
    counts = json.loads(ran.stdout)["counts"]
    assert (counts["labelled"], counts["matched"], counts["unknown_ids"]) == (6, 4, 2), counts


def test_parquet_ids_keep_their_type(tmp_path: Path) -> None:
    path = tmp_path / "o.parquet"
    pd.DataFrame({"id": ["00042", "7"], "label": [1, 0]}).to_parquet(path)
    assert _ids(read_table(path, text_columns=("id",))) == ["00042", "7"]


def _monitor(project: Path, *args: str):
    argv = ["--log", "predictions.jsonl", "--outcomes", "outcomes.csv", "--id-column", "customer_id", "--label-column", "target", "--json", *args]
    return run_main(main, *argv, cwd=project)


def test_a_rerun_with_the_same_outcome_bytes_is_not_read_and_changed_bytes_are(deployed: Path) -> None:  # noqa: F811
    """The same file: the last run's labels (same numbers, a note that it was not read). Labels flipped: read, the AUC of the new labels."""
    from sklearn.metrics import roc_auc_score

    live = traffic(n=600)
    live["customer_id"] = [f"{i:07d}" for i in live["customer_id"]]
    scores = write_log(deployed / "predictions.jsonl", deployed, live, "v1.0.0")
    outcomes = live[["customer_id", "target"]].iloc[:400]
    outcomes.to_csv(deployed / "outcomes.csv", index=False)
    first = _monitor(deployed)
    assert first.returncode == 0 and "without reading them again" not in first.stderr, first.stderr
    again = _monitor(deployed)
    assert again.returncode == 0 and "outcomes.csv: the same bytes" in again.stderr, again.stderr
    v1, v2 = json.loads(first.stdout)["versions"][0], json.loads(again.stdout)["versions"][0]
    assert v2 == v1
    flipped = outcomes.assign(target=1 - outcomes["target"])  # same size, other bytes
    flipped.to_csv(deployed / "outcomes.csv", index=False)
    third = _monitor(deployed)
    assert third.returncode == 0 and "without reading them again" not in third.stderr, third.stderr
    realized = json.loads(third.stdout)["versions"][0]["realized_auc"]
    expected = roc_auc_score(flipped["target"], np.round(scores[:400], 9).astype(np.float32))
    assert realized == pytest.approx(expected, abs=1e-9) and abs(realized - v1["realized_auc"]) > 0.1
    other = _monitor(deployed, "--positive-class", "0")  # the same bytes read another way: read again
    assert other.returncode == 0 and "without reading them again" not in other.stderr, other.stderr
    assert json.loads(other.stdout)["versions"][0]["realized_auc"] == pytest.approx(1 - expected, abs=1e-9)
