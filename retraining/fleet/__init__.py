"""Many models from one file: ``fleet.toml`` resolved into one settings table per model.

May import: the ground modules (errors, fsutil). Imported by the command lines (``cli``,
``scheduling``, ``serving``), which loop or map over the models; nothing below the entry
points knows that there is more than one model.

Modules: ``config`` (read and check fleet.toml: defaults, one table per model, folders),
``runner`` (run one command per model in child processes, at most N at once).
"""
