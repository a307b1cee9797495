"""What the NIR reader and writer share: the ``nir`` package, loaded on first use, and the
prefix of lava-convert's metadata keys."""

from __future__ import annotations

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
