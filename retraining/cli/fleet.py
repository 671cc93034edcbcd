"""``retrain_model.py --config fleet.toml``: one model (``--model``), every model (``--all``) or the list.

The fleet's settings become arguments placed *before* the user's own, so that argparse's
"last one wins" gives the precedence the docs promise: the command line, then the
model's table, then ``[defaults]``, then the flag's default. ``--all`` runs each model as
its own ``python -m retraining.cli.retrain --config F --model NAME`` process, at most
``--max-parallel`` at once; one model's failure never stops the others.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import retraining
from retraining.errors import ExitCode, UsageError
from retraining.fleet.config import Fleet, Option, load_fleet
from retraining.fleet.runner import ModelRun, default_parallel, run_all

RunOne = Callable[[argparse.Namespace], int]


def main(argv: list[str], args: argparse.Namespace, parser: argparse.ArgumentParser, run_one: RunOne, options: dict[str, Option]) -> int:
    """Dispatch a ``--config`` command line; usage errors are one line and exit 2.

    ``parser`` must raise :class:`UsageError` instead of exiting (the retrain parser built
    strict), so that a bad value in the file is reported with the model's name.
    """
    try:
        fleet = load_fleet(args.config, options)
        for name, spec in fleet.models.items():  # every model's values, checked before anything runs
            try:
                parser.parse_args([*spec.argv(options), *argv])
            except UsageError as exc:
                raise UsageError(f"{fleet.path}: [models.{name}]: {exc}") from None
        if args.list:
            return _list(fleet, argv, args, parser, options)
        if args.page:
            return _page(fleet, args)
        if args.all:
            return _all(fleet, argv, args)
        if not args.model:
            raise UsageError(f"--config {args.config}: add --model NAME (one of {', '.join(fleet.models)}), --all or --list.")
        spec = fleet.model(args.model)
        return run_one(parser.parse_args([*spec.argv(options), *argv]))
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT


def resolved(fleet: Fleet, argv: list[str], parser: argparse.ArgumentParser, options: dict[str, Option]) -> dict[str, dict]:
    """Each model's settings as a run will use them (every setting flag, defaults included), by model."""
    out = {}
    for name, spec in fleet.models.items():
        ns = vars(parser.parse_args([*spec.argv(options), *argv]))
        settings = {key: ns[key] for key in options}
        settings.update(models_dir=str(spec.models_dir), production=str(spec.production), schedule=spec.schedule)
        out[name] = settings
    return out


def _list(fleet: Fleet, argv: list[str], args: argparse.Namespace, parser: argparse.ArgumentParser, options: dict[str, Option]) -> int:
    models = resolved(fleet, [a for a in argv if a not in ("--list", "--json")], parser, options)
    if args.json:
        print(json.dumps({"config": str(fleet.path.resolve()), "max_parallel": _parallel(fleet, args), "models": models}, indent=2, ensure_ascii=False))
        return ExitCode.OK
    for name, s in models.items():
        print(f"{name}: data {s['data']}, target {s['target']}, {s['iterations']} iterations -> {s['production']} (versions in {s['models_dir']})")
    return ExitCode.OK


def _page(fleet: Fleet, args: argparse.Namespace) -> int:
    from retraining.report import fleet as page

    rows = [page.model_row(name, spec.models_dir, spec.production) for name, spec in fleet.models.items()]
    path = page.write(fleet.root / "index.html", page.render(rows, fleet.path))
    print(json.dumps({"page": str(path)}) if args.json else path)
    return ExitCode.OK


def _all(fleet: Fleet, argv: list[str], args: argparse.Namespace) -> int:
    if args.promote or args.model:
        raise UsageError("--all runs every model with the same arguments; --promote and --model name one model: use --model NAME instead.")
    rest = _without(argv, {"--all": 0, "--max-parallel": 1})
    commands = {name: [sys.executable, "-m", "retraining.cli.retrain", *rest, "--model", name] for name in fleet.models}
    parallel = _parallel(fleet, args)
    here = str(Path(retraining.__file__).resolve().parent.parent)  # each child runs this very package, installed or not
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)}

    def said(run: ModelRun) -> None:  # as each model finishes, one line on stderr
        state = "ok" if run.exit_code == 0 else f"failed (exit {run.exit_code}): {run.error}"
        print(f"[{run.name}] {state} in {run.seconds:.1f} s", file=sys.stderr)

    runs = run_all(commands, parallel, Path.cwd(), env=env, on_done=said)
    failed = [r for r in runs.values() if r.exit_code != 0]
    if args.json:
        print(json.dumps({name: _as_json(run) for name, run in runs.items()}, indent=2, ensure_ascii=False))
    else:
        for run in runs.values():
            print(f"== {run.name} ==\n{run.stdout.rstrip() or run.error}")
    if failed:
        names = ", ".join(f"{r.name} (exit {r.exit_code})" for r in failed)
        others = "; the others ran" if len(failed) < len(runs) else ""
        print(f"error: {len(failed)} of {len(runs)} models failed: {names}{others}.", file=sys.stderr)
        return max(r.exit_code for r in failed) if all(0 < r.exit_code < 256 for r in failed) else ExitCode.INTERNAL
    return ExitCode.OK


def _as_json(run: ModelRun) -> dict:
    try:
        body = json.loads(run.stdout) if run.stdout.strip() else {}
    except ValueError:
        body = {"output": run.stdout}
    body = body if isinstance(body, dict) else {"result": body}
    return {**body, "exit_code": run.exit_code, **({"error": run.error} if run.exit_code else {})}


def _parallel(fleet: Fleet, args: argparse.Namespace) -> int:
    n = args.max_parallel or fleet.max_parallel or default_parallel()
    if n < 1:
        raise UsageError(f"--max-parallel must be at least 1 (got {n}).")
    return n


def _without(argv: list[str], flags: dict[str, int]) -> list[str]:
    """``argv`` without the given flags (and their values: flag -> how many values it takes)."""
    out, skip = [], 0
    for arg in argv:
        if skip:
            skip -= 1
            continue
        name = arg.split("=", 1)[0]
        if name in flags:
            skip = 0 if "=" in arg else flags[name]
            continue
        out.append(arg)
    return out
