"""``pip install .``: the package, its console commands and its extras.

The wheel is built from a copy of the repository's package and installed on its own
(``pip install --no-deps --target``), its dependencies taken from this environment: what
is tested is what *our* packaging adds, the commands and the files, without downloading
CatBoost again. (tests/test_docker.py installs the package with its dependencies into a
fresh virtual environment, as the image does.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
COMMANDS = {
    "catboost-retrain": "retraining.cli.retrain:main",
    "catboost-scheduler": "retraining.scheduling.cli:main",
    "catboost-serve": "retraining.serving.cli:main",
    "catboost-ab": "retraining.ab.cli:main",
    "catboost-monitor": "retraining.monitoring.cli:main",
}


def requirement_lines(name: str) -> list[str]:
    """A requirements file's own requirements: no comments, no ``-r`` includes."""
    out = []
    for line in (ROOT / name).read_text(encoding="utf-8").splitlines():
        text = line.split(" #", 1)[0].strip()
        if text and not text.startswith(("#", "-r")):
            out.append(text)
    return out


def test_dependencies_match_the_requirements_files() -> None:
    project = PYPROJECT["project"]
    assert project["dependencies"] == requirement_lines("requirements.txt")
    for extra in ("serve", "sql", "notify", "mlflow"):
        assert project["optional-dependencies"][extra] == requirement_lines(f"requirements-{extra}.txt"), extra


def test_every_console_command_names_a_main_that_exists() -> None:
    import importlib

    assert PYPROJECT["project"]["scripts"] == COMMANDS
    for target in COMMANDS.values():
        module, func = target.split(":")
        assert callable(getattr(importlib.import_module(module), func))


@pytest.mark.slow
@pytest.mark.process
def test_pip_install_gives_commands_whose_help_works(tmp_path: Path) -> None:
    source = tmp_path / "src"  # a copy: building writes build/ and *.egg-info beside the sources
    source.mkdir()
    shutil.copy(ROOT / "pyproject.toml", source)
    shutil.copytree(ROOT / "retraining", source / "retraining", ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    wheel = next(wheels.glob("catboost_retrain-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "retraining/guard/checks.py" in names and "retraining/cli/retrain.py" in names
    assert not any(n.startswith(("tests/", "bench/")) for n in names)  # only the library
    site = tmp_path / "site"  # the wheel installed on its own; its dependencies come from this environment
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    env = {**os.environ, "PYTHONPATH": str(site)}
    for command in COMMANDS:
        shown = subprocess.run([str(site / "bin" / command), "--help"], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
        assert shown.returncode == 0, (command, shown.stderr[-2000:])
        assert "usage:" in shown.stdout
        bad = subprocess.run([str(site / "bin" / command), "--no-such-flag"], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
        assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, (command, bad.stderr)
    # the installed package is the one imported (not the repository's)
    where = subprocess.run([sys.executable, "-c", "import retraining; print(retraining.__file__)"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert str(site) in where.stdout
