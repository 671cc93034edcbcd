"""Property-based bad input: random CSVs either train a model or fail with one clear line.

For every generated file: exit 0 and a new version, or a non-zero exit with exactly one
``error:`` line, no traceback, and the models folder and production file untouched.
"""

from __future__ import annotations

import csv
import io
import shutil
import tempfile
from pathlib import Path

import pytest
from helpers import make_frame, retrainer, snapshot, write_csv
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from retrain_model import main

TEXT = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FFF, categories=("L", "N", "P", "S", "Zs")), max_size=8)
CELL = {
    "int": st.integers(-1000, 1000).map(str),
    "float": st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=32).map(repr), st.just(""), st.sampled_from(["inf", "-inf", "nan"])),
    "text": st.one_of(TEXT, st.just("")),
    "bool": st.sampled_from(["True", "False", "true", ""]),
}


@st.composite
def csv_files(draw) -> bytes:
    kind = draw(st.sampled_from(["table"] * 5 + ["trainable"] * 3 + ["empty", "bytes"]))
    if kind == "empty":
        return b""
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    n_rows = draw(st.integers(120, 200)) if kind == "trainable" else draw(st.integers(0, 60))
    n_cols = draw(st.integers(1, 5))
    names = draw(st.lists(st.one_of(st.sampled_from(["a", "b", "c", "x"]), TEXT), min_size=n_cols, max_size=n_cols))
    if kind == "trainable":  # unique names, so that some cases get as far as training
        names = [f"{n.strip() or 'col'}_{i}" for i, n in enumerate(names)]
    kinds = draw(st.lists(st.sampled_from(list(CELL)), min_size=n_cols, max_size=n_cols))
    classes = 2 if kind == "trainable" else draw(st.integers(0, 3))
    labels = ["0", "1", "2"][:classes] or [""]
    has_target = kind == "trainable" or draw(st.booleans()) or draw(st.booleans())
    header = names + (["target"] if has_target else [])
    rows = []
    for _ in range(n_rows):
        row = [draw(CELL[k]) for k in kinds]
        if has_target:
            missing_label = kind != "trainable" and draw(st.integers(0, 9)) == 0
            row.append("" if missing_label else draw(st.sampled_from(labels)))
        rows.append(row)
    buf = io.StringIO()
    delimiter = "," if kind == "trainable" else draw(st.sampled_from([",", ",", ";", "\t", " "]))
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


@pytest.fixture(scope="module")
def champion_dir(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("champion")
    write_csv(base / "data.csv", make_frame(300))
    retrainer(base, iterations=5, report=False).retrain()
    return base


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])
@given(content=csv_files())
@example(content=b"a,target\n,\n\xe0\xbc\xa0,\n")  # found by this test: a Tibetan digit zero looked like a number to the reader's regex
@example(content=b"a,b,c,target\n0,0,0,\n0,:,0,\n")  # found by this test: a warning on column b came before the empty-target error
def test_random_csv_trains_or_fails_with_one_clear_line(content, champion_dir, tmp_path, capsys):
    work = Path(tempfile.mkdtemp(dir=tmp_path))
    shutil.copytree(champion_dir / "models", work / "models")
    shutil.copy(champion_dir / "catboost_model.cbm", work / "catboost_model.cbm")
    (work / "fuzz.csv").write_bytes(content)
    before = snapshot(work, skip=("logs", "fuzz.csv"))
    argv = ["--data", str(work / "fuzz.csv"), "--models-dir", str(work / "models"), "--production", str(work / "catboost_model.cbm")]
    argv += ["--log-dir", str(work / "logs"), "--iterations", "5", "--threads", "1", "-q", "--no-report", "--force"]
    code = main(argv)
    err = capsys.readouterr().err
    event(f"exit {code}")
    assert "Traceback" not in err
    if code == 0:
        assert snapshot(work, skip=("logs", "fuzz.csv")) != before  # a new version was written
    else:
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), err
        assert code in (2, 3, 5), (code, err)
        assert snapshot(work, skip=("logs", "fuzz.csv")) == before
