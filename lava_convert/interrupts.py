"""Ctrl-C held back while native extensions import.

A KeyboardInterrupt raised while a C++ extension (torch, through pybind11) runs Python
code during its import cannot propagate: the process aborts ("terminate called after
throwing an instance of 'pybind11::error_already_set'"). :func:`sigint_deferred` records a
Ctrl-C that arrives during such an import and raises it once the import is over.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager


@contextmanager
def sigint_deferred():
    """Hold back SIGINT inside the block and raise ``KeyboardInterrupt`` after it if one
    came (main thread only; elsewhere, or with SIGINT ignored, nothing changes)."""
    if threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt
