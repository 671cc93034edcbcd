"""What a person reads about versions: the HTML report of one version, the ``--history`` table and page.

May import: the ground modules and ``evaluation``. Imported by the run's publish step and
by ``retraining.retrainer``.

Modules: ``html`` (the report and its plots; matplotlib loads only here), ``history``
(the ``--history`` table and the training-settings rows), ``index`` (``--history --html``:
``models/reports/index.html``, every version on one page).
"""
