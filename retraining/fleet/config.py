"""``fleet.toml``: a ``[defaults]`` table and one ``[models.NAME]`` table per model.

::

    [fleet]
    root = "fleet"            # each model's folder is ROOT/NAME (models/, logs/, catboost_model.cbm)
    max_parallel = 2          # --all and the scheduler: at most this many runs at once

    [defaults]
    data = "featured_dataset.csv"
    iterations = 300

    [models.churn]
    min_improvement = 0.001
    notify = ["json://127.0.0.1:8080/hook"]

    [models.quick]
    iterations = 100
    depth = 4
    at = "04:00"              # the scheduler's keys: at, every, unit, timezone

Keys are ``retrain_model.py``'s long flags with ``_`` (``positive_class``, ``id_column``,
``min_improvement``, ...) and the scheduler's (``at``, ``every``, ``unit``, ``timezone``).
A value is taken from the command line first, then the model's table, then ``[defaults]``,
then the flag's own default. Relative paths are relative to the folder of fleet.toml.
Each model gets its own folder unless its table names ``models_dir``, ``production`` or
``log_dir``; two models may not share a folder or a production file.

This module checks the file's shape; what a key may hold is checked by the command
line's own parser (the caller passes the options it knows), so a fleet and a single run
accept exactly the same values.
"""

from __future__ import annotations

import difflib
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from retraining.errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
SCHEDULE_KEYS = ("at", "every", "unit", "timezone")
FLEET_KEYS = ("root", "max_parallel")
PATH_KEYS = ("data", "models_dir", "production", "log_dir", "check_settings", "notify_config")
FOLDER_KEYS = ("models_dir", "production", "log_dir")


@dataclass(frozen=True)
class Option:
    """What a key of the file means on the command line: its flag and how it takes a value."""

    flag: str
    kind: str = "value"  # "value" | "bool" (a store_true flag) | "append" (repeatable) | "list" (comma-joined)


@dataclass
class ModelSpec:
    """One model of the fleet: its settings (file keys, resolved) and the schedule keys."""

    name: str
    settings: dict
    schedule: dict = field(default_factory=dict)

    def argv(self, options: dict[str, Option]) -> list[str]:
        """The model's settings as command-line arguments (put the user's own after them: they win)."""
        out: list[str] = []
        for key, value in self.settings.items():
            out += _as_arguments(self.name, key, value, options[key])
        return out

    @property
    def models_dir(self) -> Path:
        return Path(self.settings["models_dir"])

    @property
    def production(self) -> Path:
        return Path(self.settings["production"])


@dataclass
class Fleet:
    path: Path
    root: Path
    max_parallel: int | None
    models: dict[str, ModelSpec]

    def model(self, name: str) -> ModelSpec:
        if name not in self.models:
            raise UsageError(f"{self.path}: no model {name!r}{_did_you_mean(name, self.models)}; models: {', '.join(self.models)}.")
        return self.models[name]


def load_fleet(path: str | Path, options: dict[str, Option]) -> Fleet:
    """Read and check ``path``; UsageError (exit 2) with one line that names the model and the key."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"--config {path}: no such file; pass the fleet's TOML file.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--config {path}: cannot be read ({exc}).") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"--config {path}: not valid TOML ({exc}).") from exc
    _only(path, "the top level", doc, ("fleet", "defaults", "models"))
    fleet, defaults, models = (_table(path, name, doc.get(name, {})) for name in ("fleet", "defaults", "models"))
    _only(path, "[fleet]", fleet, FLEET_KEYS)
    base = path.resolve().parent
    root = (base / str(fleet.get("root", "fleet"))).resolve()
    max_parallel = fleet.get("max_parallel")
    if max_parallel is not None and (isinstance(max_parallel, bool) or not isinstance(max_parallel, int) or max_parallel < 1):
        raise UsageError(f"{path}: [fleet] max_parallel must be a whole number of at least 1 (got {max_parallel!r}).")
    known = (*options, *SCHEDULE_KEYS)
    _only(path, "[defaults]", defaults, known)
    if not models:
        raise UsageError(f"{path}: no models; add a [models.NAME] table for each model.")
    specs = {}
    for name, table in models.items():
        if not NAME.match(name):
            raise UsageError(f"{path}: model name {name!r}: use letters, digits, '-' and '_' (it names the model's folder).")
        table = _table(path, f"[models.{name}]", table)
        _only(path, f"[models.{name}]", table, known)
        specs[name] = _resolve(name, {**defaults, **table}, root, base)
    _no_shared_folders(path, specs)
    return Fleet(path, root, max_parallel, specs)


def _resolve(name: str, merged: dict, root: Path, base: Path) -> ModelSpec:
    schedule = {k: merged.pop(k) for k in SCHEDULE_KEYS if k in merged}
    folder = root / name
    merged.setdefault("models_dir", str(folder / "models"))
    merged.setdefault("production", str(folder / "catboost_model.cbm"))
    merged.setdefault("log_dir", str(folder / "logs"))
    for key in PATH_KEYS:
        value = merged.get(key)
        if isinstance(value, str) and value and "://" not in value and not value.startswith("env:"):
            merged[key] = str((base / value).resolve())
    return ModelSpec(name, merged, schedule)


def _no_shared_folders(path: Path, specs: dict[str, ModelSpec]) -> None:
    for key in FOLDER_KEYS:
        seen: dict[str, str] = {}
        for name, spec in specs.items():
            where = str(Path(spec.settings[key]).resolve())
            if where in seen:
                raise UsageError(f"{path}: models {seen[where]} and {name} share {key} {where}; give each model its own.")
            seen[where] = name
    dirs = {name: Path(s.settings["models_dir"]).resolve() for name, s in specs.items()}
    for name, spec in specs.items():
        prod = Path(spec.settings["production"]).resolve()
        for other, folder in dirs.items():
            if other != name and folder in prod.parents:
                raise UsageError(f"{path}: model {name}'s production file {prod} lies in model {other}'s models_dir; give each model its own.")


def _as_arguments(model: str, key: str, value: object, option: Option) -> list[str]:
    where = f"[models.{model}] {key}"
    if option.kind == "bool":
        if not isinstance(value, bool):
            raise UsageError(f"{where}: must be true or false (got {value!r}).")
        return [option.flag] if value else []
    if option.kind in ("append", "list"):
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in items):
            raise UsageError(f"{where}: must be a text or a list of texts (got {value!r}).")
        if option.kind == "list":
            return [option.flag, ",".join(str(v) for v in items)] if items else []
        return [a for v in items for a in (option.flag, str(v))]
    if isinstance(value, (dict, list)) or value is None:
        raise UsageError(f"{where}: must be a single value (got {value!r}).")
    if isinstance(value, bool):
        raise UsageError(f"{where}: must be a value for {option.flag}, not true/false.")
    return [option.flag, str(value)]


def _table(path: Path, where: str, value: object) -> dict:
    if not isinstance(value, dict):
        raise UsageError(f"{path}: {where} must be a table ([{where.strip('[]')}]), not {type(value).__name__}.")
    return dict(value)


def _only(path: Path, where: str, table: dict, known) -> None:
    for key in table:
        if key not in known:
            raise UsageError(f"{path}: {where}: unknown key {key!r}{_did_you_mean(key, known)}.")


def _did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""
