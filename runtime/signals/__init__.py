"""Torch-free signal handling shared by training (drsn_edge.data) and the device (runtime).

Keeping file readers, resampling, normalisation and the bearing simulator here means the
daemon and the training pipeline cannot drift apart: both call the same functions.
"""
