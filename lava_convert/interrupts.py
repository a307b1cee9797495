"""Ctrl-C held back while native extensions import, and while the command line loads.

A KeyboardInterrupt raised while a C++ extension (torch, through pybind11) runs Python
code during its import cannot propagate: the process aborts ("terminate called after
throwing an instance of 'pybind11::error_already_set'"). :func:`sigint_deferred` records a
Ctrl-C that arrives during such an import and raises it once the import is over.

The ``lava-convert`` console script imports the command line before its error handling
runs; :func:`guard_console_script` makes a Ctrl-C in that time the same one line.
"""

from __future__ import annotations

import os
import signal
import sys
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


#: The console script's name (``[project.scripts]``).
CONSOLE_SCRIPT = "lava-convert"


def _interrupted_while_loading(signum, frame) -> None:
    sys.stderr.write(f"{CONSOLE_SCRIPT}: interrupted\n")
    os._exit(130)


def guard_console_script() -> None:
    """In the ``lava-convert`` console script only (not in a user's program that imports
    the package): until :func:`release_console_script`, Ctrl-C prints the one line the
    command line prints and exits with 130."""
    if os.path.basename(sys.argv[0] if sys.argv else "") == CONSOLE_SCRIPT \
            and threading.current_thread() is threading.main_thread() \
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _interrupted_while_loading)


def release_console_script() -> None:
    """Back to Python's Ctrl-C (``KeyboardInterrupt``), which the command line handles."""
    if signal.getsignal(signal.SIGINT) is _interrupted_while_loading:
        signal.signal(signal.SIGINT, signal.default_int_handler)
