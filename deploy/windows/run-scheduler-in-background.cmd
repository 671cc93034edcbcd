@echo off
rem Keep scheduler.py running in the background, without a console window, started again
rem at every logon, with the project's virtual environment (.venv\Scripts\pythonw.exe).
rem Create the environment first, in the project folder:
rem     py -m venv .venv
rem     .venv\Scripts\python -m pip install -r requirements.txt
rem Run from the project folder. Stop it: .venv\Scripts\python scheduler.py --status
rem (shows the pid), then  taskkill /F /PID <pid>  (/F: a process without a window
rem ignores a plain taskkill). Remove the logon task: schtasks /Delete /TN CatBoostRetrainScheduler /F
if not exist ".venv\Scripts\pythonw.exe" (
    echo error: %CD%\.venv\Scripts\pythonw.exe not found; run this from the project folder after: py -m venv .venv, then .venv\Scripts\python -m pip install -r requirements.txt 1>&2
    exit /b 2
)
schtasks /Create /F /SC ONLOGON /TN CatBoostRetrainScheduler /TR "cmd /c cd /d \"%CD%\" && .venv\Scripts\pythonw.exe scheduler.py"
start "" /B .venv\Scripts\pythonw.exe scheduler.py
