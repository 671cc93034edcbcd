"""Scheduled runs: the time plan, the child process of each run, its status file, the scheduler's CLI.

May import: the ground modules and ``cli`` (its own ``cli`` module only). Imported by
``scheduler.py``.

Modules: ``timeplan`` (clock-anchored, DST-aware run times), ``jobrunner`` (a run as a
child process with a timeout and a tree kill), ``status`` (the status file, ``--status``),
``loop`` (the scheduler itself), ``cli`` (its flags and main).
"""
