"""Tests of the device-side inference core: backends, windowing, batching, fault state, metrics."""
