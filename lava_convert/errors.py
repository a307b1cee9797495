"""Typed exceptions. Every error names the problem, where it is, and the fix.

All derive from :class:`LavaConvertError`; most also derive from the matching
builtin (``ValueError``, ``TypeError``, ``OSError``) so generic handlers work.
"""

from __future__ import annotations


class LavaConvertError(Exception):
    """Base class of every error lava-convert raises on purpose."""


class ConfigError(LavaConvertError, ValueError):
    """A conversion or run setting is out of range (e.g. ``timesteps <= 0``)."""


class UnsupportedModuleError(LavaConvertError, TypeError):
    """The model contains a module or operation the converter cannot express."""


class CalibrationError(LavaConvertError, ValueError):
    """Calibration data is empty, non-finite, or does not fit the model."""


class QuantizationError(LavaConvertError, ValueError):
    """A layer cannot be represented in Loihi's fixed-point ranges."""


class NetXFormatError(LavaConvertError, ValueError):
    """A NetX HDF5 file is missing, truncated, corrupt, foreign or too new."""


class NirGraphError(LavaConvertError, ValueError):
    """A NIR graph or file lava-convert cannot read: unreadable, or with nodes, edges or
    parameters it cannot express (the message names them and what is supported)."""


class InputError(LavaConvertError, ValueError):
    """Input samples have the wrong shape, dtype or values for a network."""


class ExportError(LavaConvertError, OSError):
    """An export cannot be written (read-only or full disk, a path that is a directory,
    a sidecar that would overwrite the file or belongs to another file, a setting the
    format cannot hold)."""


class DatasetError(LavaConvertError, OSError):
    """A dataset file is missing or corrupt."""


class LavaUnavailableError(LavaConvertError, ImportError):
    """Lava (lava-nc, lava-dl) is not installed or cannot be imported."""


class OptionalDependencyError(LavaConvertError, ImportError):
    """An optional dependency is not installed (``nir`` for NIR files, ``distributed`` for
    Dask clusters); the message says which extra to install."""


class LavaRunError(LavaConvertError, RuntimeError):
    """A Lava run failed; the runtime was stopped."""


class LavaTimeoutError(LavaRunError, TimeoutError):
    """A Lava run took longer than its ``timeout_s``; the runtime was stopped."""
