@echo off
rem Keep `py scheduler.py` running in the background, without a console window,
rem started again at every logon. Run from the project folder.
rem Stop it: python scheduler.py --status  (shows the pid), then  taskkill /PID <pid>
schtasks /Create /F /SC ONLOGON /TN CatBoostRetrainScheduler /TR "cmd /c cd /d \"%CD%\" && pyw scheduler.py"
start "" /B pyw scheduler.py
