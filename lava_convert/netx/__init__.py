"""NetX HDF5 files: the format (:mod:`.format`), the writer, the reader, and how stock
NetX treats them (:mod:`.stock`)."""

from .reader import read_netx
from .writer import write_netx

__all__ = ["read_netx", "write_netx"]
