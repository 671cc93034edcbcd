"""The data-source layer (retraining.sources): CSV dialects, Parquet, SQLite and a real PostgreSQL."""

from __future__ import annotations

import json
import sqlite3

import pandas as pd
import pytest
from helpers import make_frame, run_main, snapshot
from pg import PASSWORD, postgres  # noqa: F401 - the session fixture

from retraining.cli.retrain import main as retrain_main
from retraining.data.dataset import load_dataset
from retraining.errors import DataError, ExitCode, SourceError, SourceUnreachableError, UsageError
from retraining.sources import SourceSpec, column_list, mask_argv, mask_url, read_table, suggest

FAST = ["--iterations", "20", "--threads", "2", "--no-report"]


def excel_frame(n: int = 300) -> pd.DataFrame:
    df = make_frame(n)
    return pd.DataFrame(
        {
            "Город": df.c1.map({"red": "Москва", "green": "Казань", "blue": "Пермь"}),
            "balance_k": (df.x1 * 1000).round(2),
            "x2": df.x2,
            "target": df.target,
        }
    )


def excel_bytes(df: pd.DataFrame, encoding: str = "cp1251", bom: bool = False) -> bytes:
    """What Excel on a Russian Windows writes: ';', decimal comma, CRLF, the ANSI code page."""
    text = df.to_csv(index=False, sep=";", decimal=",", lineterminator="\r\n")
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding)


# -- CSV -----------------------------------------------------------------------------------
def test_excel_russian_export_reads_numbers_as_numbers_and_says_cp1251(tmp_path, caplog):
    path = tmp_path / "export.csv"
    path.write_bytes(excel_bytes(excel_frame()))
    caplog.set_level("INFO")
    table = read_table(path)
    assert table.kind == "csv" and any("cp1251" in n for n in table.notes)
    assert "cp1251" in caplog.text
    assert table.frame["balance_k"].dtype == "float64" and table.frame["Город"].iloc[0] in {"Москва", "Казань", "Пермь"}
    ds = load_dataset(path)
    assert dict(ds.schema()) == {"Город": "categorical", "balance_k": "numeric", "x2": "numeric"}
    assert ds.X["balance_k"].tolist() == excel_frame()["balance_k"].tolist()


def test_validate_json_of_an_excel_export_lists_the_decimal_column_as_numeric(tmp_path):
    (tmp_path / "export.csv").write_bytes(excel_bytes(excel_frame()))
    proc = run_main(retrain_main, "--data", "export.csv", "--validate", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["categorical_features"] == ["Город"] and "balance_k" in out["features"]
    assert "cp1251" in proc.stderr


def test_flags_become_a_spec():
    import argparse

    from retraining.cli.options import add_source_arguments, spec_from_args

    parser = argparse.ArgumentParser()
    parser.add_argument("--data")
    add_source_arguments(parser.add_argument_group("data"))
    args = parser.parse_args(["--data", "x.csv", "--csv-delimiter", "tab", "--decimal", ",", "--encoding", "cp1251"])
    assert spec_from_args(args) == SourceSpec("x.csv", delimiter="\t", decimal=",", encoding="cp1251")
    args = parser.parse_args(["--data", "sqlite:///d.db", "--query", "SELECT 1"])
    assert spec_from_args(args, location="sqlite:///other.db") == SourceSpec("sqlite:///other.db", query="SELECT 1")
    with pytest.raises(UsageError, match="--csv-delimiter"):
        spec_from_args(parser.parse_args(["--data", "x.csv", "--csv-delimiter", "#"]))


@pytest.mark.parametrize("sep", [",", ";"])
def test_utf8_with_bom(tmp_path, sep):
    path = tmp_path / "bom.csv"
    path.write_bytes(excel_bytes(excel_frame(), "utf-8", bom=True) if sep == ";" else b"\xef\xbb\xbf" + excel_frame().to_csv(index=False).encode())
    table = read_table(path)
    assert list(table.frame.columns) == ["Город", "balance_k", "x2", "target"]
    assert table.frame["balance_k"].dtype == "float64" and not any("UTF-8" in n for n in table.notes)


def test_tab_separated(tmp_path):
    path = tmp_path / "data.tsv"
    make_frame(300).to_csv(path, index=False, sep="\t")
    ds = load_dataset(path)
    assert ds.rows == 300 and set(ds.cat_features) == {"c1", "c2"} and "x1" in ds.features


def test_overrides_win_over_detection(tmp_path):
    df = excel_frame()
    path = tmp_path / "dots.csv"
    path.write_bytes(df.to_csv(index=False, sep="|").encode("cp1252", errors="replace"))
    table = read_table(SourceSpec(str(path), delimiter="pipe", decimal=".", encoding="cp1252"))
    assert table.frame["balance_k"].tolist() == df["balance_k"].tolist()
    assert not any("UTF-8" in n for n in table.notes)  # the encoding was given, not guessed
    with pytest.raises(UsageError, match="--decimal"):
        read_table(SourceSpec(str(path), decimal="x"))
    with pytest.raises(UsageError, match="--encoding 'klingon'"):
        read_table(SourceSpec(str(path), encoding="klingon"))


def test_mostly_numeric_text_column_is_parsed_or_named(tmp_path, caplog):
    df = make_frame(300)
    df["amount"] = df.x1.round(3).astype(str)
    df.loc[[5, 17], "amount"] = "?"  # 2 of 300: nearly all numbers -> numbers, the two are missing
    df["code"] = df.x3.astype(str)
    df.loc[df.index % 4 == 0, "code"] = "unknown"  # 25 % text: kept as a category, with a warning
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False, sep=";")  # decimal points in a ;-file: pyarrow sees text
    caplog.set_level("INFO")
    ds = load_dataset(path)
    kinds = dict(ds.schema())
    assert kinds["amount"] == "numeric" and kinds["x1"] == "numeric" and ds.missing["amount"] == 2
    assert kinds["code"] == "categorical"
    assert "column 'amount': 2 of 300 values are not numbers ('?')" in caplog.text
    assert "column 'code': 75% of the values are numbers" in caplog.text


def test_legacy_bytes_late_in_a_utf8_looking_file(tmp_path):
    df = make_frame(4000)
    df["city"] = "Paris"
    df.loc[3990, "city"] = "Zürich"
    path = tmp_path / "late.csv"
    path.write_bytes(df.to_csv(index=False).encode("cp1252"))  # the first 64 KiB are plain ASCII
    table = read_table(path)
    assert table.frame.loc[3990, "city"] == "Zürich"
    assert any("cp1252" in n for n in table.notes)


# -- column lists in errors -----------------------------------------------------------------------------
def test_errors_list_every_column_or_say_how_many_and_suggest(tmp_path):
    df = make_frame(300).rename(columns={"target": "Target"})
    for i in range(10):
        df[f"f{i}"] = i
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    with pytest.raises(DataError) as err:
        load_dataset(path)
    msg = str(err.value)
    assert "Did you mean 'Target'?" in msg and all(repr(c) in msg for c in df.columns) and "in all" not in msg
    with pytest.raises(DataError, match=r"no target column 'outcome'. Two-valued columns \(a target\?\): 'c2', 'Target'"):
        load_dataset(path, target="outcome")
    assert column_list([f"c{i}" for i in range(40)]).endswith("'c29', ... (40 in all)")
    assert suggest("targt", ["x", "target"]) == " Did you mean 'target'?" and suggest("zzz", ["x"]) == ""


# -- Parquet ------------------------------------------------------------------------------------------
def test_parquet_file_keeps_dictionary_columns_categorical(tmp_path):
    df = make_frame(300)
    df["c1"] = df["c1"].astype("category")
    path = tmp_path / "d.parquet"
    df.to_parquet(path, index=False)
    table = read_table(path)
    assert table.kind == "parquet" and isinstance(table.frame["c1"].dtype, pd.CategoricalDtype)
    ds = load_dataset(path)
    assert set(ds.cat_features) == {"c1", "c2"} and ds.rows == 300
    import hashlib

    assert ds.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_partitioned_parquet_directory_and_its_fingerprint(tmp_path):
    df = make_frame(400)
    folder = tmp_path / "features"
    df.to_parquet(folder, partition_cols=["c2"], index=False)
    first = read_table(folder)
    assert len(first.frame) == 400 and set(first.frame["c2"].astype(str)) == {"north", "south"}
    assert read_table(folder).fingerprint == first.fingerprint  # stable order
    ds = load_dataset(folder)
    assert "c2" in ds.cat_features and ds.rows == 400
    extra = folder / "c2=south" / "more.parquet"
    df[df.c2 == "south"].drop(columns="c2").head(5).to_parquet(extra, index=False)
    assert read_table(folder).fingerprint != first.fingerprint and len(read_table(folder).frame) == 405


def test_binary_non_parquet_is_still_refused(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(DataError, match="not a text CSV"):
        read_table(path)


# -- SQLite -------------------------------------------------------------------------------------------
def sqlite_db(path, frame):
    with sqlite3.connect(path) as conn:
        frame.to_sql("features", conn, index=False)
    return path


def test_sqlite_table_and_query(tmp_path):
    db = sqlite_db(tmp_path / "d.db", make_frame(300))
    table = read_table(SourceSpec(f"sqlite:///{db}", table="features"))
    assert table.kind == "sql" and len(table.frame) == 300 and table.display.endswith("table features")
    q = read_table(SourceSpec(f"sqlite:///{db}", query="SELECT * FROM features ORDER BY customer_id DESC"))
    assert q.fingerprint == table.fingerprint  # same rows, other order: same fingerprint
    fewer = read_table(SourceSpec(f"sqlite:///{db}", query="SELECT * FROM features WHERE customer_id > 0"))
    assert fewer.fingerprint != table.fingerprint


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"table": "nope"}, r"--table 'nope': no such table or view in sqlite:///.*d\.db; its tables and views: 'features'\.$"),
        ({"table": "feature"}, r"--table 'feature': no such table or view .*; its tables and views: 'features'\. Did you mean 'features'\?$"),
        ({"query": "SELECT * FROM nope"}, "the query failed .no such table: nope"),
        ({"query": "SELEC 1"}, 'query failed .near "SELEC"'),
        ({"query": "SELECT * FROM features WHERE 0"}, "returned no rows"),
    ],
)
def test_sqlite_errors_are_one_line_exit_3(tmp_path, spec, message):
    db = sqlite_db(tmp_path / "d.db", make_frame(50))
    before = snapshot(tmp_path)
    with pytest.raises(SourceError, match=message) as err:
        read_table(SourceSpec(f"sqlite:///{db}", **spec))
    assert err.value.exit_code == 3 and "\n" not in str(err.value) and snapshot(tmp_path) == before


def test_a_sqlite_file_kept_locked_is_exit_7_worth_a_retry(tmp_path):
    """A writer holding the file past the busy timeout: the night's run fails with 7, which the schedulers retry."""
    db = sqlite_db(tmp_path / "d.db", make_frame(50))
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(SourceUnreachableError, match="database is locked") as err:
            read_table(SourceSpec(f"sqlite:///{db}", table="features"))
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert err.value.exit_code == ExitCode.SOURCE_UNREACHABLE == 7 and "\n" not in str(err.value)
    assert len(read_table(SourceSpec(f"sqlite:///{db}", table="features")).frame) == 50  # the retry succeeds


def test_unsupported_database_scheme():
    with pytest.raises(SourceError, match=r"mysql:// is not supported; supported: postgresql://.*sqlite:///.*env:NAME.*file path") as err:
        read_table("mysql://u:pw@h/db")
    assert "pw" not in str(err.value) and err.value.exit_code == 3 and "file not found" not in str(err.value)
    with pytest.raises(UsageError, match="need a database URL") as err:
        read_table(SourceSpec("mysql://u:pw@h/db", table="t"))
    assert "pw" not in str(err.value)


def test_sqlite_missing_file_is_not_created(tmp_path):
    with pytest.raises(SourceError, match="no SQLite database"):
        read_table(SourceSpec(f"sqlite:///{tmp_path}/missing.db", table="t"))
    assert not (tmp_path / "missing.db").exists()


def test_usage_errors_for_options_that_do_not_fit():
    with pytest.raises(UsageError, match="needs --table NAME or --query"):
        read_table("sqlite:///x.db")
    with pytest.raises(UsageError, match="exclude each other"):
        read_table(SourceSpec("sqlite:///x.db", table="a", query="SELECT 1"))
    with pytest.raises(UsageError, match="need a database URL"):
        read_table(SourceSpec("data.csv", table="a"))
    with pytest.raises(UsageError, match="apply to CSV files"):
        read_table(SourceSpec("postgresql://u@h/db", table="a", delimiter=";"))


def test_mask_url():
    assert mask_url("postgresql://ml:p%40ss@db:5432/prod?sslmode=require") == "postgresql://ml:***@db:5432/prod?sslmode=require"
    assert mask_url("postgresql://db/prod?user=ml&password=x1") == "postgresql://db/prod?user=ml&password=***"
    assert mask_url("sqlite:///d.db") == "sqlite:///d.db"
    assert mask_argv(["--data", "postgresql://a:b@h/d", "--table", "t"]) == ["--data", "postgresql://a:***@h/d", "--table", "t"]


# -- PostgreSQL (a real server) ---------------------------------------------------------------------------
def pg_table(cluster, name: str, frame: pd.DataFrame) -> None:
    types = {"i": "bigint", "f": "double precision", "O": "text", "b": "boolean"}
    cols = ", ".join(f'"{c}" {types.get(t.kind, "text")}' for c, t in frame.dtypes.items())
    cluster.psql(f'DROP TABLE IF EXISTS "{name}"; CREATE TABLE "{name}" ({cols})')
    append(cluster, name, frame)


def append(cluster, name: str, frame: pd.DataFrame) -> None:
    cluster.psql(f'COPY "{name}" FROM STDIN WITH (FORMAT csv, HEADER)', stdin=frame.to_csv(index=False))


def test_postgres_types_and_environment_password(postgres, monkeypatch):  # noqa: F811
    pg_table(postgres, "typed", make_frame(300))
    postgres.psql("ALTER TABLE typed ADD COLUMN amount numeric(12,2), ADD COLUMN day date DEFAULT '2024-03-01'; UPDATE typed SET amount = x3 * 1.25")
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    table = read_table(SourceSpec(postgres.url(password=None), table="typed"))
    assert table.frame["amount"].dtype == "float64" and str(table.frame["day"].dtype).startswith("datetime64")
    monkeypatch.delenv("PGPASSWORD")
    monkeypatch.setenv("RETRAIN_DATABASE_URL", postgres.url())
    via_env = read_table(SourceSpec("env:RETRAIN_DATABASE_URL", query="SELECT * FROM typed ORDER BY customer_id"))
    assert via_env.fingerprint == table.fingerprint and PASSWORD not in via_env.display and "***" in via_env.display
    ds = load_dataset(SourceSpec("env:RETRAIN_DATABASE_URL", table="typed"))
    assert dict(ds.schema())["amount"] == "numeric" and PASSWORD not in ds.path


def leaks(project, proc) -> list[str]:
    """Every place the password shows up: the output and every file below ``project``."""
    found = [name for name, text in (("stdout", proc.stdout), ("stderr", proc.stderr)) if PASSWORD in text]
    return found + [str(p) for p in project.rglob("*") if p.is_file() and PASSWORD.encode() in p.read_bytes()]


def test_retrain_from_a_table_skip_then_retrain_after_rows_appended(postgres, tmp_path):  # noqa: F811
    pg_table(postgres, "features", make_frame(600))
    url = postgres.url()
    args = ["--data", url, "--table", "features", *FAST, "--json"]
    mlflow = f"sqlite:///{tmp_path / 'mlflow.db'}"  # the run, its report and the MLflow mirror must not hold the password
    first = run_main(retrain_main, *[a for a in args if a != "--no-report"], "--mlflow-uri", mlflow, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["status"] == "deployed"
    entry = json.loads((tmp_path / "models" / "version_log.json").read_text())["versions"][0]
    assert entry["dataset"]["path"] == f"{mask_url(url)} table features" and entry["dataset"]["rows"] == 600
    assert list((tmp_path / "models" / "reports").glob("*.html")) and b"retrain.decision" in (tmp_path / "mlflow.db").read_bytes()
    again = run_main(retrain_main, *args, cwd=tmp_path)
    assert again.returncode == 0 and json.loads(again.stdout)["status"] == "unchanged", again.stderr
    append(postgres, "features", make_frame(120, seed=7, start_id=600))
    query = ["--data", url, "--query", "SELECT * FROM features ORDER BY customer_id", *FAST, "--json"]
    third = run_main(retrain_main, *query, cwd=tmp_path)
    assert third.returncode == 0, third.stderr
    assert json.loads(third.stdout)["status"] != "unchanged"
    log = json.loads((tmp_path / "models" / "version_log.json").read_text())
    assert log["versions"][-1]["dataset"]["rows"] == 720
    for proc in (first, again, third):
        assert leaks(tmp_path, proc) == []


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("wrong password", 'cannot connect (connection to server at "127.0.0.1"'),
        ("syntax error", 'the query failed (syntax error at or near "SELEC"'),
        ("no rows", "returned no rows"),
        ("wrong table", "--table 'smal': no such table or view in postgresql://"),
        ("unknown database", 'cannot connect (connection to server at "127.0.0.1"'),
        ("server down", "cannot connect"),
    ],
)
def test_database_errors_one_line_exit_3_or_7_nothing_written_no_password(postgres, tmp_path, case, message):  # noqa: F811
    """A refused login or a bad query is 3 (a retry gives the same answer); a server that does not answer is 7."""
    pg_table(postgres, "small", make_frame(60))
    url, source = postgres.url(), ["--table", "small"]
    if case == "wrong password":
        url = postgres.url(password=PASSWORD + "x")
    elif case == "syntax error":
        source = ["--query", "SELEC * FROM small"]
    elif case == "no rows":
        source = ["--query", "SELECT * FROM small WHERE false"]
    elif case == "wrong table":
        source = ["--table", "smal"]
    elif case == "unknown database":
        url = postgres.url(database="no_such_db")
    elif case == "server down":
        url = f"postgresql://retrain:{PASSWORD}@127.0.0.1:1/retrain"
    (tmp_path / "models").mkdir()
    before = snapshot(tmp_path)
    proc = run_main(retrain_main, "--data", url, *source, *FAST, cwd=tmp_path)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == (7 if case == "server down" else 3), proc.stderr
    assert len(errors) == 1 and message in errors[0], proc.stderr
    if case == "wrong table":  # the database's tables are listed and the closest one named
        listed = errors[0].split("its tables and views: ", 1)[1]  # the session's database holds other tests' tables too
        assert "'small'" in listed and errors[0].endswith(". Did you mean 'small'?"), errors[0]
    assert snapshot(tmp_path) == before
    assert leaks(tmp_path, proc) == []


def test_an_unsupported_url_is_never_read_as_a_path_exit_3(tmp_path):
    """``--data mysql://...`` names the supported schemes (docs/data-sources.md: exit 3), through the API and the CLI."""
    from retraining.cli.retrain import main

    proc = run_main(main, "--data", "mysql://u@localhost/db", "--validate", cwd=tmp_path)
    assert proc.returncode == 3 and "mysql:// is not supported; supported: postgresql://" in proc.stderr, proc.stderr
    assert "file not found" not in proc.stderr and "mysql:/u" not in proc.stderr


def test_json_keeps_non_ascii_as_it_is(tmp_path):
    from retraining.cli.retrain import main

    frame = make_frame(200).rename(columns={"x1": "возраст"})
    frame.to_csv(tmp_path / "данные.csv", index=False)
    proc = run_main(main, "--data", "данные.csv", "--validate", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert '"возраст"' in proc.stdout and "данные.csv" in proc.stdout and "\\u04" not in proc.stdout
    assert "возраст" in json.loads(proc.stdout)["features"]


RAW_PASSWORDS = [
    # (URL as a user might type it, what is shown, the words of the error)
    ("postgresql://ml:p@ss@db.example:5432/prod", "postgresql://ml:***@db.example:5432/prod", "unencoded '@'"),
    ("postgresql://ml:pa/ss@db.example/prod", "postgresql://ml:***@db.example/prod", "unencoded '/'"),
    ("postgresql://ml:pa:ss@db.example/prod", "postgresql://ml:***@db.example/prod", "unencoded ':'"),
    ("postgresql://ml:a@b/c:d@db.example/prod?sslmode=require", "postgresql://ml:***@db.example/prod?sslmode=require", "unencoded '@' and ':' and '/'"),
]


@pytest.mark.parametrize(("url", "shown", "words"), RAW_PASSWORDS)
def test_an_unencoded_character_in_the_password_is_one_line_with_the_password_masked(url, shown, words, caplog):
    """Masked on the raw string, refused before any driver (and DNS) sees the URL."""
    assert mask_url(url) == shown
    password = url.split("://")[1].split(":", 1)[1].rsplit("@", 1)[0]
    with pytest.raises(SourceError) as err:
        read_table(SourceSpec(url, table="features"))
    message = str(err.value)
    assert message.startswith(f"{shown}: the password holds an {words}; percent-encode it (") and message.endswith("or give the password in PGPASSWORD.")
    assert password not in message and password not in caplog.text
    assert err.value.exit_code == ExitCode.DAMAGED_STATE


def test_an_unencoded_password_never_reaches_the_log_file_or_the_console(tmp_path):
    url = "postgresql://ml:Tr0ub4dor@3/x@db.invalid/prod"
    proc = run_main(retrain_main, "--data", url, "--table", "features", cwd=tmp_path)
    assert proc.returncode == 3
    expected = "error: postgresql://ml:***@db.invalid/prod: the password holds an unencoded '@' and '/'; percent-encode it ('@' as %40, '/' as %2F)"
    assert proc.stderr.strip().splitlines() == [expected + " or give the password in PGPASSWORD."]
    written = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    for piece in ("Tr0ub4dor", "Tr0ub4dor@3", "3/x"):
        assert piece not in proc.stderr + proc.stdout and piece.encode() not in written
