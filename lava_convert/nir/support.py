"""What the NIR reader and writer share: the ``nir`` package, loaded on first use, and the
prefix of lava-convert's metadata keys."""

from __future__ import annotations

import numpy as np

from ..errors import OptionalDependencyError

#: Prefix of the metadata keys lava-convert writes (flat keys: NIR's HDF5 reader reads one
#: level of metadata).
META = "lava_convert"
#: The NIR version these modules are written and tested against.
NIR_VERSION = "1.0.8"


def import_nir():
    """The ``nir`` package, or :class:`OptionalDependencyError` saying how to install it."""
    try:
        import nir
    except ImportError as exc:
        raise OptionalDependencyError(f"NIR support needs the nir package: pip install "
                                  f"'lava-convert[nir]' (nir=={NIR_VERSION})") from exc
    return nir


def meta_value(node, key: str, default=None):
    """lava-convert's metadata ``key`` of a node or graph (bytes and 0-d arrays unpacked)."""
    value = (getattr(node, "metadata", None) or {}).get(f"{META}.{key}", default)
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray) and value.shape == ():
        return value.item()
    return value


def per_neuron(value, kind: str, shape: tuple[int, ...]) -> np.ndarray:
    """A layer setting (one value, or one per channel of a conv / neuron of a dense layer)
    as one value per neuron of ``shape``."""
    value = np.asarray(value, dtype=np.float64)
    if value.ndim and kind == "conv":
        value = value.reshape(-1, *[1] * (len(shape) - 1))
    return np.broadcast_to(value, shape)


def floats(value) -> np.ndarray:
    """A NIR parameter as a float64 array (a copy: torch needs writable arrays)."""
    return np.array(value, dtype=np.float64)
