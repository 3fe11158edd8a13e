"""Host side of novelty scoring: features out of a torch model, fitting and calibrating the statistics.

The statistics and scores themselves are numpy code in :mod:`runtime.novelty` (the device runs
them); this package adds what needs torch or the training data.
"""
