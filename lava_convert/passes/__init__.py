"""Conversion passes between tracing and quantization: threshold balancing (ANN -> float
SNN) and bias calibration. Their order is declared in :mod:`lava_convert.pipeline`."""
