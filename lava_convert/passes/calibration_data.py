"""Calibration samples: validated once, before any pass uses them."""

from __future__ import annotations

import numpy as np

from ..errors import CalibrationError


def check_calibration(x: np.ndarray, input_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Validate calibration samples; return them as float64 ``(batch, *shape)``."""
    try:
        x = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise CalibrationError(f"calibration data is not numeric: {exc}") from exc
    if x.ndim < 2 or len(x) == 0:
        raise CalibrationError(
            f"calibration data must be a non-empty batch (samples, ...), got shape {x.shape}: "
            "pass a few hundred training samples"
        )
    if not np.all(np.isfinite(x)):
        bad = int(np.sum(~np.isfinite(x)))
        raise CalibrationError(f"calibration data contains {bad} NaN/inf values: clean the data")
    if input_shape is not None and tuple(x.shape[1:]) != tuple(input_shape):
        raise CalibrationError(
            f"calibration samples have shape {tuple(x.shape[1:])}, the network expects "
            f"{tuple(input_shape)}"
        )
    return x


def spread(total: int, n: int) -> np.ndarray:
    """Indices of ``min(n, total)`` samples spread evenly over ``total`` (the samples a
    calibration pass fits on)."""
    return np.linspace(0, total - 1, min(n, total)).astype(int)


def held_out(total: int, fitted: tuple[int, ...], n: int) -> np.ndarray:
    """Indices of up to ``n`` samples, spread evenly, that are none of those :func:`spread`
    picks for each count in ``fitted`` (empty when every sample is fitted on)."""
    used = [spread(total, k) for k in fitted if k > 0]
    rest = np.setdiff1d(np.arange(total), np.concatenate(used)) if used else np.arange(total)
    return rest[spread(len(rest), n)] if len(rest) else rest
