"""The Python API is the flags: every setting of ``retrain_model.py`` is a ``ModelRetrainer``
keyword with the same default, and docs/cli.md names exactly the renamed and the CLI-only flags."""

from __future__ import annotations

import argparse
import inspect
import re
from pathlib import Path

from retraining.cli.retrain import build_parser, retrainer_settings
from retraining.retrainer import ModelRetrainer

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")


class Recording(argparse.Namespace):
    """A Namespace that remembers which attributes were read."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        object.__setattr__(self, "read", set())

    def __getattribute__(self, name: str):
        if not name.startswith("_") and name != "read":
            object.__getattribute__(self, "read").add(name)
        return object.__getattribute__(self, name)


def defaults() -> Recording:
    return Recording(**vars(build_parser().parse_args([])))


def doc_section() -> str:
    return DOC[DOC.index("## From Python") :]


def doc_renames() -> dict[str, str]:
    """``--flag`` -> keyword, from the table in docs/cli.md."""
    return {m[1]: m[2] for m in re.finditer(r"^\| `(--[a-z-]+)` \| `([a-z_]+)[^`]*`.*\|$", doc_section(), re.M)}


def test_every_keyword_is_a_flag_and_every_flag_setting_is_a_keyword() -> None:
    params = {n for n, p in inspect.signature(ModelRetrainer).parameters.items() if p.kind is p.KEYWORD_ONLY}
    kwargs = retrainer_settings(defaults())
    assert set(kwargs) == params  # the CLI passes every keyword; nothing is Python-only but progress_every's default


def test_defaults_agree_between_the_parser_and_the_signature() -> None:
    signature = inspect.signature(ModelRetrainer).parameters
    for name, value in retrainer_settings(defaults()).items():
        default = signature[name].default
        if isinstance(default, tuple) or isinstance(value, list):
            default, value = list(default or ()), list(value or ())
        assert value == default, f"--{name}: the flag's default {value!r} differs from ModelRetrainer's {default!r}"


def test_docs_name_exactly_the_renamed_and_the_cli_only_flags() -> None:
    ns = defaults()
    kwargs = retrainer_settings(ns)
    dests = {a.dest: max(a.option_strings, key=len) for a in build_parser()._actions if a.dest != "help"}
    renamed = {dests[d] for d in ns.read if d not in kwargs}  # flags that reach ModelRetrainer under another name
    assert set(doc_renames()) == renamed
    assert all(keyword in kwargs for keyword in doc_renames().values())
    cli_only = {dests[d] for d in set(dests) - ns.read}
    listed = set(re.findall(r"`(--[a-z-]+)`", doc_section().split("Only the command line has these", 1)[1]))
    assert listed - {"--quiet"} == cli_only, "docs/cli.md must list exactly the flags ModelRetrainer does not take"


def test_a_keyword_the_docs_promise_builds_a_retrainer(tmp_path: Path) -> None:
    r = ModelRetrainer(data_path=tmp_path / "x.csv", models_dir=tmp_path / "m", production_path=tmp_path / "p.cbm", thread_count=1, report=False)
    assert r.params.thread_count == 1 and r.report is False and r.models_dir == tmp_path / "m"
