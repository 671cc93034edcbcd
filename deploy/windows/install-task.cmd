@echo off
rem Register a Windows Task Scheduler task that runs one retrain every day at 03:00.
rem Run from the project folder (where scheduler.py is), in a normal or admin prompt:
rem     deploy\windows\install-task.cmd
rem Check it:   schtasks /Query /TN CatBoostRetrain /V /FO LIST
rem Run now:    schtasks /Run /TN CatBoostRetrain
rem Remove it:  schtasks /Delete /TN CatBoostRetrain /F
schtasks /Create /F /SC DAILY /ST 03:00 /TN CatBoostRetrain /TR "cmd /c cd /d \"%CD%\" && py scheduler.py --once >> logs\task.log 2>&1"
