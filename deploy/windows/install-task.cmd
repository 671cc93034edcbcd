@echo off
rem Register a Windows Task Scheduler task that runs one retrain every day at 03:00,
rem with the project's virtual environment (.venv\Scripts\python.exe), not whatever `py` finds.
rem Create the environment first, in the project folder:
rem     py -m venv .venv
rem     .venv\Scripts\python -m pip install -r requirements.txt
rem Then run from the project folder (where scheduler.py is), in a normal or admin prompt:
rem     deploy\windows\install-task.cmd
rem Check it:   schtasks /Query /TN CatBoostRetrain /V /FO LIST
rem Run now:    schtasks /Run /TN CatBoostRetrain
rem Remove it:  schtasks /Delete /TN CatBoostRetrain /F
if not exist ".venv\Scripts\python.exe" (
    echo error: %CD%\.venv\Scripts\python.exe not found; run this from the project folder after: py -m venv .venv, then .venv\Scripts\python -m pip install -r requirements.txt 1>&2
    exit /b 2
)
if not exist logs mkdir logs
schtasks /Create /F /SC DAILY /ST 03:00 /TN CatBoostRetrain /TR "cmd /c cd /d \"%CD%\" && .venv\Scripts\python.exe scheduler.py --once >> logs\task.log 2>&1"
