"""What a person reads about versions: the HTML report of one version, the ``--history`` table.

May import: the ground modules and ``evaluation``. Imported by the run's publish step and
by ``retraining.retrainer``.

Modules: ``html`` (the report and its plots; matplotlib loads only here), ``history``.
"""
