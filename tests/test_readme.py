"""The README as a newcomer uses it: the five-minute block runs as written, its links resolve.

The commands come from the README's own fenced block, so the test and the README cannot
drift: change the block and this test runs the new one. They run in a copy of the project
under tmp_path (a fresh checkout: the scripts, ``retraining/``, ``scripts/`` and the shipped
``featured_dataset.csv``), with ``python`` standing for this interpreter.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT

from retraining.errors import ExitCode

README = ROOT / "README.md"
BLOCK_HEADING = "## Try it in five minutes"


def five_minute_block(language: str = "bash") -> list[str]:
    """The command lines of the first ```bash (or ```powershell) block under the five-minute heading."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index(BLOCK_HEADING) :].split("\n## ", 1)[0]
    block = re.search(rf"```{language}\n(.*?)```", section, re.S)
    assert block, f"no ```{language} block under {BLOCK_HEADING!r}"
    return [line for line in block.group(1).splitlines() if shlex.split(line, comments=True)]


def top_screen() -> str:
    """What a newcomer sees first: everything above the five-minute heading."""
    text = README.read_text(encoding="utf-8")
    return text[: text.index(BLOCK_HEADING)]


def argv_of(line: str) -> list[str]:
    """The line as an argument list; ``python`` is this interpreter (what ``pip install`` set up)."""
    return [sys.executable if word == "python" else word for word in shlex.split(line, comments=True)]


def copy_project(dest: Path) -> None:
    """What a fresh checkout holds that the block uses, and nothing a run has made."""
    for script in ROOT.glob("*.py"):
        shutil.copy2(script, dest / script.name)
    for folder in ("retraining", "scripts"):
        shutil.copytree(ROOT / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "featured_dataset.csv", dest / "featured_dataset.csv")


def the_line(lines: list[str], command: str) -> str:
    """The one line that is exactly ``command`` (comments aside)."""
    found = [line for line in lines if shlex.split(line, comments=True) == shlex.split(command)]
    assert len(found) == 1, f"the five-minute block should have the line {command!r} once; it has {found}"
    return found[0]


def line_with(lines: list[str], *fragments: str) -> str:
    """The one line holding every fragment: the README must keep each step the test checks."""
    found = [line for line in lines if all(f in line for f in fragments)]
    assert len(found) == 1, f"the five-minute block should have one line with {fragments}; it has {found}"
    return found[0]


def shipped_dataset_as_a_user_runs_it(project: Path, proc: subprocess.CompletedProcess, checkout: set[str], env: dict) -> None:
    """`python retrain_model.py` with no flags on the shipped featured_dataset.csv: the block's first line."""
    assert proc.stdout.startswith("v1.0.0: deployed -> production (v1.0.0)"), proc.stdout
    assert "catboost: 499:" in proc.stderr  # CatBoost's progress, every 100 iterations
    assert (project / "catboost_model.cbm").is_file() and (project / "models" / "catboost_model_v1.0.0.cbm").is_file()
    entry = json.loads((project / "models" / "version_log.json").read_text(encoding="utf-8"))["versions"][0]
    assert entry["params"]["iterations"] == 500 and entry["dataset"]["rows"] == 45211
    assert 0.70 < entry["metrics"]["candidate"]["roc_auc"] < 0.85  # bank marketing without `duration`
    assert "duration" not in entry["features"]
    # nothing else in the user's folder: no catboost_info/, only what the README lists
    assert sorted({p.name for p in project.iterdir()} - checkout) == ["catboost_model.cbm", "logs", "models"]
    assert (project / "logs" / "retrain.log").read_text(encoding="utf-8").count("deployed") >= 1
    # the second nightly run on the same data does nothing
    again = subprocess.run(argv_of("python retrain_model.py"), cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and again.stdout.startswith("Nothing to do"), again.stdout + again.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("timeout") is None, reason="the block bounds the scheduler with coreutils' timeout (Linux)")
def test_five_minute_block_runs_as_written(tmp_path):
    copy_project(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "RETRAIN_NOTIFY")}
    lines = five_minute_block()
    out: dict[str, subprocess.CompletedProcess] = {}
    checkout = {p.name for p in tmp_path.iterdir()}
    for line in lines:
        proc = subprocess.run(argv_of(line), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        # `timeout` exits 124 when it stopped the command; everything else succeeds
        expected = 124 if line.startswith("timeout ") else 0
        assert proc.returncode == expected, f"{line}\nexit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        out[line] = proc
        if shlex.split(line, comments=True) == ["python", "retrain_model.py"]:
            shipped_dataset_as_a_user_runs_it(tmp_path, proc, checkout, env)

    first = out[the_line(lines, "python retrain_model.py")]
    assert first.stdout.startswith("v1.0.0: deployed"), first.stdout

    scheduler = out[line_with(lines, "scheduler.py", "--every 10 --unit seconds", "--run-now")].stderr
    # the run at start; the one 10 s later is skipped if a busy machine still runs the first
    assert scheduler.count("Run started") >= 1 and "no new version (data unchanged)" in scheduler, scheduler
    assert "Scheduler stopped (SIGINT)" in scheduler, scheduler

    smaller = out[line_with(lines, "--depth 4")].stdout
    assert smaller.startswith("v1.1.0: kept for review (production stays v1.0.0)"), smaller  # what the README says
    history = out[line_with(lines, "--history")].stdout
    assert re.search(r"^\*\s+v1\.0\.0", history, re.M) and "v1.1.0" in history, history
    report = Path(out[line_with(lines, "--report")].stdout.strip())
    assert report.name == "v1.1.0.html" and (tmp_path / report).is_file()
    assert "v1.0.0 -> v1.1.0 is now production" in out[line_with(lines, "--promote v1.1.0")].stdout
    assert out[line_with(lines, "--promote v1.0.0")].stdout.startswith("rollback: v1.1.0 -> v1.0.0 is now production")
    log = json.loads((tmp_path / "models" / "version_log.json").read_text(encoding="utf-8"))
    assert log["production"] == "v1.0.0"

    with (tmp_path / "incoming.csv").open(newline="", encoding="utf-8") as f:
        incoming = list(csv.DictReader(f))
    assert len(incoming) == 10_000 and "target" not in incoming[0] and incoming[0]["customer_id"] == "C00001"
    assert len((tmp_path / "predictions.jsonl").read_text(encoding="utf-8").splitlines()) == 10_000
    assert out[line_with(lines, "ab_test.py score")].stdout.startswith("scored 10000 rows (v1.0.0-vs-v1.1.0, split)")
    analysis = out[line_with(lines, "ab_test.py analyze")].stdout
    assert "left out 8005 rows a model trained on" in analysis and "joined 1995 labelled entities" in analysis, analysis  # keyed by content
    assert "recommendation: keep collecting" in analysis, analysis


def test_the_block_covers_what_a_newcomer_needs():
    lines = five_minute_block()
    the_line(lines, "python retrain_model.py")
    for fragments in [
        ("--history",),
        ("--report",),
        ("--promote v1.0.0",),
        ("scheduler.py", "--every 10 --unit seconds", "--run-now"),
        ("make_ab_demo.py",),
        ("ab_test.py score",),
        ("ab_test.py analyze",),
    ]:
        line_with(lines, *fragments)


def test_the_top_screen_is_the_setup_and_nothing_for_contributors():
    top = top_screen()
    blocks = re.findall(r"```(\w+)\n(.*?)```", top, re.S)
    assert [lang for lang, _ in blocks] == ["bash", "powershell", "bash"], blocks
    assert blocks[0][1].splitlines() == ["python -m pip install -r requirements.txt", "python retrain_model.py"]
    # Windows PowerShell 5.1 has no `&&`: one command a line, and `py -m pip` (pip.exe may not be on PATH)
    assert blocks[1][1].splitlines() == ["py -m pip install -r requirements.txt", "py retrain_model.py"]
    for banned in (r"#\d", r"\b20\d\d-\d\d-\d\d\b", "Debian", "apt-get", "fast lane"):  # issue numbers, dated timings, contributor notes
        assert not re.search(banned, top), banned
    assert not re.search(r"(?<![\w/])#\d+\b", README.read_text(encoding="utf-8")), "no internal issue numbers in the README"


def test_the_windows_block_is_the_bash_block_and_runs_in_powershell_and_cmd():
    """The same commands, `py` for `python`, no `timeout`, and nothing cmd would read as an argument."""
    bash, windows = five_minute_block("bash"), five_minute_block("powershell")
    expected = []
    for line in bash:
        words = shlex.split(line, comments=True)
        if words[0] == "timeout":
            words = words[words.index("python") :]  # Windows has no coreutils timeout: Ctrl+C stops the scheduler
        expected.append(["py" if w == "python" else w for w in words])
    assert [line.split() for line in windows] == expected
    for line in windows:
        assert not re.search(r"[#&|<>^%`$;]", line), f"{line!r}: cmd or PowerShell would read part of it differently"


def test_setup_commands_and_ci_agree():
    text = README.read_text(encoding="utf-8")
    assert "python -m pip install -r requirements.txt\npython retrain_model.py\n" in text  # one command a line: PowerShell 5.1 has no &&
    command = (
        "bash scripts/system-packages.sh && python -m venv .venv && .venv/bin/pip install -r requirements-dev.txt "
        "&& .venv/bin/python -m pytest -n auto --dist loadfile"
    )
    assert command in text
    assert command in (ROOT / "docs" / "contributing.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "-m venv" in ci and "install -q -r requirements-dev.txt" in ci and "-m pytest -p no:cacheprovider -n auto --dist loadfile" in ci
    assert "bash scripts/system-packages.sh" in ci and "apt-get" not in ci  # one list of system packages, in the script


@pytest.mark.skipif(os.name == "nt", reason="a bash script for Debian and Ubuntu")
def test_the_system_packages_script_says_in_one_line_when_it_cannot_install(tmp_path):
    """Not root, no sudo, a package missing: one line naming it and the way out, exit 1, nothing installed."""
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("id", "apt-get", "systemd-analyze", "flock", "timeout", "chromium", "chromedriver", "redis-server"):  # strace left out
        (tools / tool).write_text("#!/bin/sh\necho 1000\n" if tool == "id" else "#!/bin/sh\nexit 0\n")  # id -u: not root
        (tools / tool).chmod(0o755)
    (tools / "ls").symlink_to(shutil.which("ls"))
    script = ROOT / "scripts" / "system-packages.sh"
    env = {"PATH": str(tools), "HOME": str(tmp_path)}
    proc = subprocess.run(["/bin/bash", str(script)], env=env, capture_output=True, text=True, timeout=60)
    pg = any(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    missing = "strace" + ("" if pg else " postgresql")
    assert proc.returncode == 1 and proc.stderr.strip().splitlines() == [
        f"system packages: missing {missing}; run this as root or with sudo (apt-get install -y {missing})"
    ], proc.stderr


def test_readme_names_every_exit_code():
    section = README.read_text(encoding="utf-8").split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    assert {int(c) for c in re.findall(r"\*\*(\d+)\*\*", section)} == {int(c) for c in ExitCode}


def _anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_links_in_the_readme_and_docs_resolve():
    pages = [README, *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue  # https://..., mailto:...
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md":
                anchors = {_anchor(h) for h in re.findall(r"^#+ (.+)$", dest.read_text(encoding="utf-8"), re.M)}
                if anchor not in anchors:
                    broken.append(f"{page.relative_to(ROOT)}: {target} (no heading for #{anchor})")
    assert not broken, "\n".join(broken)


def test_ab_demo_helper_refuses_bad_input_and_writes_nothing(tmp_path):
    helper = [sys.executable, str(ROOT / "scripts" / "make_ab_demo.py")]
    missing = subprocess.run([*helper, "--data", "nope.csv"], cwd=tmp_path, capture_output=True, text=True)
    assert missing.returncode == 2 and missing.stderr.startswith("error: nope.csv: file not found")
    (tmp_path / "data.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    no_target = subprocess.run([*helper, "--data", "data.csv"], cwd=tmp_path, capture_output=True, text=True)
    assert no_target.returncode == 2 and "no column 'target'" in no_target.stderr and len(no_target.stderr.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv"]


def test_ab_demo_helper_takes_the_newest_rows(tmp_path):
    (tmp_path / "data.csv").write_text("x,target,c\n1,0,a\n2,1,b\n3,0,c\n", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_ab_demo.py"), "--data", "data.csv", "--rows", "2"], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "incoming.csv").read_text(encoding="utf-8").splitlines() == ["customer_id,x,c", "C00001,2,b", "C00002,3,c"]
    assert (tmp_path / "outcomes.csv").read_text(encoding="utf-8").splitlines() == ["customer_id,converted", "C00001,1", "C00002,0"]


SCRIPTS = ("retrain_model.py", "scheduler.py", "ab_test.py", "serve.py")
SHELL_OPERATORS = ("&", "&&", "|", "||", ">", ">>", "2>&1", ";", "<")


def documented_commands() -> list[tuple[str, str]]:
    """Every ``python SCRIPT ...`` line in a code block or inline code of the README and docs/: (page, line)."""
    found = []
    pattern = re.compile(rf"(?:^|`)\s*((?:python|py) (?:{'|'.join(map(re.escape, SCRIPTS))})(?:[^`\n]*))", re.M)
    for page in [README, *sorted((ROOT / "docs").glob("*.md"))]:
        for match in pattern.finditer(page.read_text(encoding="utf-8").replace("\\\n", " ")):  # continued lines joined
            found.append((page.name, match.group(1).strip()))
    return found


def _parser(script: str):
    if script == "retrain_model.py":
        from retraining.cli.retrain import build_parser

        return build_parser()
    if script == "scheduler.py":
        from retraining.scheduling.cli import build_parser

        return build_parser(ROOT / "retrain_model.py")
    if script == "ab_test.py":
        from retraining.ab.cli import build_parser

        return build_parser()
    from retraining.serving.cli import build_parser

    return build_parser()


def test_every_documented_command_parses(capsys):
    """Each command the README and docs/ show takes its flags as written (the five-minute block also runs above)."""
    commands = documented_commands()
    assert len(commands) > 40, commands  # the pattern still finds them
    bad = []
    for page, line in commands:
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            words = line.split()
        cut = next((i for i, w in enumerate(words) if w in SHELL_OPERATORS or w.startswith(("2>", ">"))), len(words))
        words = words[:cut]
        if any(w in ("...", "…") or w.startswith("[") for w in words):
            continue  # a usage pattern with optional parts, not a command
        own, rest = (words[2 : words.index("--")], words[words.index("--") + 1 :]) if "--" in words else (words[2:], None)
        try:
            _parser(words[1]).parse_args(own)
            if rest is not None:  # scheduler.py passes what follows -- to retrain_model.py
                _parser("retrain_model.py").parse_args(rest)
        except SystemExit as exc:
            if exc.code:
                bad.append(f"{page}: {line}\n    {capsys.readouterr().err.strip()}")
    assert not bad, "\n".join(bad)
