"""Labelled vibration recordings and the leakage-free windows a model is trained and tested on.

Loaders (:mod:`.cwru`, :mod:`.folder`, :mod:`.synthetic`, :mod:`.mnist`) return
:class:`~drsn_edge.data.recordings.Recording` objects; :func:`~drsn_edge.data.splits.prepare_splits`
cuts them into train/val/test windows. Everything here is numpy/scipy: training wraps the
arrays in torch itself.
"""
