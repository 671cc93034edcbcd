"""The house rules, read from the source: no import circles, the library never imports a
script, rooms stay small (docs/architecture.md).

Every ``import`` counts, including those inside functions and under ``TYPE_CHECKING``:
an import inside a function that exists to break a circle hides the circle, it does not
remove it (pip-tools' tests/test_circular_imports.py, made stricter).
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ("retrain_model", "scheduler", "serve", "ab_test", "monitor")
MAX_LINES = 450
MAX_FLAT = 12
MAX_FUNCTION_LINES = 50


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    files = sorted(ROOT.glob("retraining/**/*.py")) + [ROOT / f"{s}.py" for s in SCRIPTS if (ROOT / f"{s}.py").is_file()]
    return {module_name(p): p for p in files}


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports anywhere in its text."""
    mods = modules()
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for m, path in mods.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    target = next((c for c in _prefixes(alias.name) if c in mods), None)
                    if target and target != m:
                        edges[m].add(target)
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(m, is_pkg, node)
                for alias in node.names:
                    for c in (f"{base}.{alias.name}", base):
                        if c in mods and c != m and not (mods[c].name == "__init__.py" and m.startswith(c + ".")):
                            edges[m].add(c)
                            break
    return edges


def _prefixes(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(len(parts), 0, -1)]


def _resolve(m: str, is_pkg: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    here = m.split(".") if is_pkg else m.split(".")[:-1]
    here = here[: len(here) - (node.level - 1)]
    return ".".join([*here, *([node.module] if node.module else [])])


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def room_of(module: str) -> str:
    """``retraining.guard.checks`` -> ``retraining.guard``; a flat module is its own room."""
    parts = module.split(".")
    return ".".join(parts[:2])


def test_the_graph_sees_every_kind_of_import() -> None:
    edges = import_graph()
    assert "retraining.errors" in edges["retraining.registry"]  # a top-level import
    assert "retraining.guard.ledger" in edges["retraining.run"]  # "from retraining.guard import ledger" inside a function
    assert "retraining.retrainer" in edges["retrain_model"]


def test_cycle_finder_finds_a_planted_circle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles_between_modules() -> None:
    assert cycles(import_graph()) == []


def test_no_import_circles_between_rooms() -> None:
    """A room (subpackage) may import rooms below it, never one that imports it back."""
    rooms: dict[str, set[str]] = {}
    for m, targets in import_graph().items():
        rooms.setdefault(room_of(m), set()).update(room_of(t) for t in targets if room_of(t) != room_of(m))
    assert cycles(rooms) == []


def test_the_library_never_imports_a_script() -> None:
    upward = sorted(f"{m} -> {t}" for m, ts in import_graph().items() if m.startswith("retraining") for t in ts if t in SCRIPTS)
    assert upward == []


def test_cli_room_is_imported_only_by_command_lines() -> None:
    """``retraining.cli`` is the scripts' toolkit: only scripts and the rooms' own ``cli`` modules use it."""
    users = sorted(
        m
        for m, ts in import_graph().items()
        if m.startswith("retraining.") and not m.startswith("retraining.cli") and any(t.startswith("retraining.cli") for t in ts) and not m.endswith(".cli")
    )
    assert users == []


def test_rooms_stay_small() -> None:
    flat = sorted(p.name for p in ROOT.glob("retraining/*.py") if p.name != "__init__.py")
    assert len(flat) <= MAX_FLAT, flat
    big = {str(p.relative_to(ROOT)): n for p in modules().values() if (n := p.read_text(encoding="utf-8").count("\n")) > MAX_LINES}
    assert big == {}


def test_functions_stay_short() -> None:
    """A long procedure reads as its steps: no function over 50 lines outside tests and bench."""
    long = []
    for m, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES:
                long.append(f"{m}.{node.name}: {node.end_lineno - node.lineno + 1} lines")
    assert long == []


def test_every_room_says_what_it_is_for() -> None:
    for init in sorted(ROOT.glob("retraining/*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and "import" in doc.lower(), f"{init.relative_to(ROOT)} needs a docstring: what the room is for and what it may import"


# One interpreter imports the third-party libraries the package uses (pandas, CatBoost...),
# none of the package, then forks once per module: each child imports its module into an
# interpreter that holds no module of the package, which is what an import order that only
# works by luck needs to show. Where there is no fork (Windows), one interpreter per module.
FORKED_IMPORTS = """
import importlib, json, os, sys, traceback
for name in json.loads(sys.argv[1]):  # third-party: imported once, before the forks
    try:
        importlib.import_module(name)
    except Exception:
        pass
assert not [m for m in sys.modules if m == "retraining" or m.startswith("retraining.")]
results = {}
for module in json.loads(sys.argv[2]):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            importlib.import_module(module)
            os._exit(0)
        except BaseException:
            os.write(write, traceback.format_exc().encode())
            os._exit(1)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        err = f.read().decode()
    _, status = os.waitpid(pid, 0)
    results[module] = [os.waitstatus_to_exitcode(status), err]
print(json.dumps(results))
"""


def third_party() -> list[str]:
    """The top-level names the package imports that are neither the package nor the standard library."""
    names = set()
    for m, path in modules().items():
        if m.startswith("retraining"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names |= {a.name for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module)
    return sorted(n for n in names if n.split(".")[0] not in sys.stdlib_module_names and n.split(".")[0] != "retraining")


PACKAGE_MODULES = sorted(m for m in modules() if m.startswith("retraining"))


@pytest.fixture(scope="module")
def fresh_imports() -> dict[str, tuple[int, str]]:
    if not hasattr(os, "fork"):
        return {}
    argv = [sys.executable, "-c", FORKED_IMPORTS, json.dumps(third_party()), json.dumps(PACKAGE_MODULES)]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return {m: (code, err) for m, (code, err) in json.loads(done.stdout.splitlines()[-1]).items()}


@pytest.mark.parametrize("module", PACKAGE_MODULES)
def test_every_module_imports_on_its_own(module: str, fresh_imports) -> None:
    """In a fresh interpreter, as pip-tools does: an import order that only works by luck fails here."""
    importlib.import_module(module)  # this interpreter first (cheap), then a clean one
    if fresh_imports:
        code, err = fresh_imports[module]
    else:
        done = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT, capture_output=True, text=True, timeout=120)
        code, err = done.returncode, done.stderr
    assert code == 0, err
