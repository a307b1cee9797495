"""NetX HDF5 files: the format (:mod:`.format`), the writer, the reader (:mod:`.reader`,
with :mod:`.untrusted` checks before anything is read, typed :mod:`.fields` and one
:mod:`.layers` reader per layer), how stock NetX treats them (:mod:`.stock`), and
:class:`Network`, the Lava process that runs them.

``lava_convert.netx.Network`` is the drop-in for ``lava.lib.dl.netx.hdf5.Network``
(:mod:`lava_convert.lava.procs.network`). It is resolved on first use, after Lava's
import fixes (:func:`lava_convert.lava.compat.ensure_lava`), so importing this package
does not import Lava. It is the one name a format module hands on from a later stage.
"""

from .reader import read_netx
from .writer import write_netx

__all__ = ["Network", "read_netx", "write_netx"]


def __getattr__(name: str):
    if name == "Network":
        from ..lava.compat import ensure_lava

        ensure_lava()
        from ..lava.procs.network import Network

        return Network
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
