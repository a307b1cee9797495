"""What enters a network: validated samples, the number of steps, graded input payloads."""

from __future__ import annotations

import logging
import os
import warnings

import numpy as np

from ..errors import ConfigError, InputError
from ..hw.loihi import payload_max
from ..ir import FixedNetwork

log = logging.getLogger(__name__)


def _axis_hint(got: tuple[int, ...], want: tuple[int, ...]) -> str:
    """Which axis of a sample is wrong, and the likely fix."""
    if len(want) == 3 and got == (want[1], want[2], want[0]):
        return ("the channels are last (N, H, W, C); pass them first (N, C, H, W): "
                "x.transpose(0, 3, 1, 2)")
    if len(got) != len(want):
        return (f"a sample has {len(got)} axes, the network takes {len(want)}"
                + (" (flatten each sample: x.reshape(len(x), -1))" if len(want) == 1 else ""))
    axis = next(i for i, (g, w) in enumerate(zip(got, want)) if g != w)
    return f"axis {axis + 1} has {got[axis]} entries, the network's has {want[axis]}"


def check_input(x, input_shape: tuple[int, ...], where: str) -> np.ndarray:
    """Validate samples for a network; return float64 ``(batch, *input_shape)``."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise InputError(f"{where}: input dtype {x.dtype} is not numeric")
    if x.shape[1:] != tuple(input_shape):
        if x.shape == tuple(input_shape):
            raise InputError(f"{where}: got one sample of shape {x.shape}; pass a batch "
                             f"(x[None]) of shape (samples, {', '.join(map(str, input_shape))})")
        raise InputError(f"{where}: input shape {x.shape} does not match the network's "
                         f"(samples, {', '.join(map(str, input_shape))}): "
                         + _axis_hint(tuple(x.shape[1:]), tuple(input_shape)))
    if len(x) == 0:
        raise InputError(f"{where}: no samples")
    x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise InputError(f"{where}: input contains NaN or inf")
    return x


#: Largest T taken from a file when the caller gives none (a file is untrusted; a caller
#: who passes a larger T explicitly gets it).
MAX_FILE_TIMESTEPS = 2**16


#: Share of the memory available now that a run's recordings may take.
RECORDING_SHARE = 0.8


def available_memory() -> int:
    """Bytes of physical memory available now (free pages; 0 where unknown)."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0


def check_recording_memory(neurons: int, samples: int, where: str) -> None:
    """Refuse a run whose per-neuron spike counts (8 bytes per neuron and sample, all
    kept for the result) would not fit the memory available now, before anything runs."""
    need, free = 8 * neurons * samples, available_memory()
    if free and need > RECORDING_SHARE * free:
        fits = max(1, int(RECORDING_SHARE * free // (8 * neurons)))
        raise InputError(f"{where}: the spike counts of {samples:,} samples x {neurons:,} "
                         f"neurons take {need / 2**30:.1f} GiB, more than the "
                         f"{free / 2**30:.1f} GiB available: run at most {fits:,} samples "
                         "at a time (the command line: --limit)")


def resolve_timesteps(timesteps, net) -> int:
    """``timesteps`` if given, else the network's own T, which must be at most
    ``MAX_FILE_TIMESTEPS`` (files are untrusted: T = 2**31 - 1 would run until killed)."""
    if timesteps is not None:
        return check_timesteps(timesteps)
    T = check_timesteps(net.timesteps)
    if T > MAX_FILE_TIMESTEPS:
        raise ConfigError(f"the network asks for T={T} time steps, more than "
                          f"{MAX_FILE_TIMESTEPS}: pass timesteps explicitly if you mean it")
    return T


def check_timesteps(timesteps) -> int:
    """A positive whole number of time steps, else :class:`ConfigError`."""
    if not isinstance(timesteps, (int, np.integer)) or isinstance(timesteps, bool) \
            or timesteps <= 0:
        raise ConfigError(f"timesteps={timesteps!r} is invalid: pass a positive whole number "
                          "of time steps (files from other tools may not record one)")
    return int(timesteps)


#: Inputs beyond the calibrated range by more than this share of it are reported.
RANGE_MARGIN = 0.05


def input_range(net: FixedNetwork) -> tuple[float, float]:
    """The real input range the network's graded input represents (its calibration range:
    beyond it payloads clip)."""
    top = payload_max(net.input_bits, net.input_signed) / net.input_scale
    return (-top if net.input_signed else 0.0, top)


def check_input_range(net: FixedNetwork, x: np.ndarray, where: str) -> str | None:
    """Warn (log and ``warnings.warn``) when samples fall outside the calibrated input range
    by more than ``RANGE_MARGIN`` of it: they clip, and accuracy drops. Returns the message."""
    lo, hi = input_range(net)
    margin = RANGE_MARGIN * (hi - lo)
    flat = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    above, below = flat.max(axis=1) > hi + margin, flat.min(axis=1) < lo - margin
    bad = int(np.sum(above | below))
    if not bad:
        return None
    message = (f"{where}: {bad} of {len(flat)} samples lie outside the calibrated input range "
               f"[{lo:.4g}, {hi:.4g}] (largest {flat.max():.4g}, smallest {flat.min():.4g}); "
               "they are clipped. Scale the inputs as for calibration (e.g. images in [0, 1], "
               "not 0..255), or convert with calibration data that covers them")
    log.warning("%s", message)
    warnings.warn(message, stacklevel=3)
    return message


def quantize_input(net: FixedNetwork, x) -> np.ndarray:
    """Graded input payloads (int64, ``(batch, inputs)``) for samples ``x``:
    ``round(x * input_scale)`` clipped to ``input_bits`` (signed if ``input_signed``)."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    hi = payload_max(net.input_bits, net.input_signed)
    lo = -hi if net.input_signed else 0
    return np.clip(np.rint(x * net.input_scale), lo, hi).astype(np.int64)
