"""Does a transfer-learned network beat the same network trained from scratch on little data?

The library behind the DVC stages in ``stages/``: datasets, models, training, evaluation, report.
"""
