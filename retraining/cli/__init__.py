"""The command-line toolkit: the guarded main, ExitCode handling, logging setup, shared flags.

May import: anything in the library. Imported only by the scripts and by the rooms'
own ``cli`` modules: the library below never parses a command line or sets up logging.

Modules: ``main`` (guarded_main, setup_logging, output flags), ``parser`` (OneLineParser),
``options`` (the data-source flags), ``notify`` (the notification flags and
``python -m retraining.cli.notify``), ``retrain`` (``retrain_model.py``'s command line).
"""
