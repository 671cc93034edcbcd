"""The table a run trains on: the row key, the target, the features and the stable holdout split.

May import: the ground modules and ``sources``. Imported by ``guard``, ``training`` and
the rooms above them.

Modules: ``keys`` (the one definition of "the same row"), ``dataset`` (load_dataset,
Dataset, target encoding, feature preparation, the holdout split).
"""
