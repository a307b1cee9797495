"""Make Lava 0.10 / lava-dl 0.6 importable on current Python.

Lava is archived upstream and declares Python <3.11. Two import-time problems
stand between it and Python 3.11 with a CPU-only torch; each is fixed here,
narrowly, without touching installed files:

1. ``lava.magma.compiler.var_model`` gives eight dataclass fields a default
   that is a ``ByteEncoder()`` instance. ``ByteEncoder`` is an ``eq=True``
   dataclass and therefore unhashable, which Python 3.11 rejects
   (``ValueError: mutable default ... use default_factory``). The fix
   re-executes that one module with ``ByteEncoder`` declared
   ``unsafe_hash=True``: a value hash consistent with its ``__eq__``. The
   default stays one shared instance, exactly as on Python 3.10.
2. ``lava.lib.dl.slayer`` eagerly imports its ``object_detection`` package,
   which needs ``cv2`` and torchvision's compiled ops. NetX imports slayer, and
   nothing NetX does needs object detection. The fix registers a placeholder
   module under that one name that raises a clear ``ImportError`` as soon as
   anything in it is used.

3. ``lava.magma.runtime.message_infrastructure.multiprocessing`` calls
   ``multiprocessing.set_start_method('fork')`` when imported, which raises
   ``RuntimeError: context has already been set`` once anything (tqdm's lock,
   joblib, user code) has fixed the default start method, even to 'fork'. If
   the method is already 'fork', the import is retried with that one
   redundant call accepted; any other method gets a clear error, because
   Lava's runtime needs fork.

Each fix first lets the real import run and only steps in on the specific
failure it knows, so it is a no-op wherever upstream already works (Python
3.10, an installed working torchvision, a future fixed release).
"""

from __future__ import annotations

import dataclasses
import importlib
import multiprocessing
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager

from ..interrupts import sigint_deferred

VAR_MODEL = "lava.magma.compiler.var_model"
MP_INFRA = "lava.magma.runtime.message_infrastructure.multiprocessing"
OBJECT_DETECTION = "lava.lib.dl.slayer.object_detection"
SLAYER = "lava.lib.dl.slayer"

#: Names of the fixes applied in this interpreter, in the order applied.
applied: list[str] = []


@contextmanager
def _hashable_dataclass(module: str, qualname: str) -> Iterator[None]:
    """While active, ``@dataclass`` on ``module.qualname`` adds ``unsafe_hash=True``."""
    original = dataclasses.dataclass

    def patched(cls=None, /, **kwargs):
        def wrap(c):
            if c.__module__ == module and c.__qualname__ == qualname:
                kwargs.setdefault("unsafe_hash", True)
            return original(c, **kwargs)

        return wrap if cls is None else wrap(cls)

    dataclasses.dataclass = patched
    try:
        yield
    finally:
        dataclasses.dataclass = original


def import_with_hashable_default(module: str, qualname: str) -> bool:
    """Import ``module``; if 3.11 rejects ``qualname`` as a dataclass default, fix and retry.

    Returns:
        True if the fix was needed and applied, False if the plain import worked.
    """
    try:
        importlib.import_module(module)
        return False
    except ValueError as exc:
        if not ("mutable default" in str(exc) and qualname in str(exc)):
            raise
    with _hashable_dataclass(module, qualname):
        importlib.import_module(module)
    return True


class _UnavailableModule(types.ModuleType):
    """A module that stands in for an optional part of a package that cannot load."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(name)
        self.__reason = reason

    def __getattr__(self, attr: str):
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)
        raise ImportError(
            f"{self.__name__} is unavailable: {self.__reason}. lava-convert does not "
            "need it; install a torchvision build matching your torch (with its compiled "
            "ops) and opencv to use it."
        )


def _failed_inside(exc: BaseException, module_prefix: str) -> bool:
    """True if ``exc`` was raised while executing code of ``module_prefix`` (or below)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        tb = exc.__traceback__
        while tb is not None:
            name = tb.tb_frame.f_globals.get("__name__", "")
            if name == module_prefix or name.startswith(module_prefix + "."):
                return True
            tb = tb.tb_next
        exc = exc.__cause__ or exc.__context__
    return False


def import_without_optional(package: str, optional: str) -> bool:
    """Import ``package``; if its eager import of ``optional`` fails, stub ``optional`` and retry.

    Returns:
        True if the placeholder was needed and installed, False otherwise.
    """
    try:
        importlib.import_module(package)
        return False
    except Exception as exc:  # noqa: BLE001 - torchvision can fail with any error type
        if not _failed_inside(exc, optional):
            raise
        reason = f"{type(exc).__name__}: {exc}"
    for name in [m for m in sys.modules if m == optional or m.startswith(optional + ".")]:
        del sys.modules[name]
    sys.modules[optional] = _UnavailableModule(optional, reason)
    importlib.import_module(package)
    return True


@contextmanager
def _accept_same_start_method() -> Iterator[None]:
    """While active, ``multiprocessing.set_start_method(m)`` is a no-op if ``m`` is current."""
    original = multiprocessing.set_start_method

    def patched(method, force=False):
        if not force and method == multiprocessing.get_start_method(allow_none=True):
            return
        original(method, force=force)

    multiprocessing.set_start_method = patched
    try:
        yield
    finally:
        multiprocessing.set_start_method = original


def import_with_start_method_set(module: str) -> bool:
    """Import ``module``; if it fails only because 'fork' is already set, retry accepting that.

    Returns:
        True if the retry was needed, False if the plain import worked.
    """
    from ..errors import LavaUnavailableError

    try:
        importlib.import_module(module)
        return False
    except RuntimeError as exc:
        if "context has already been set" not in str(exc):
            raise
    current = multiprocessing.get_start_method(allow_none=True)
    if current != "fork":
        raise LavaUnavailableError(
            f"Lava needs the 'fork' multiprocessing start method, but this program already set "
            f"{current!r}: call multiprocessing.set_start_method('fork') before using Lava, or "
            "run Lava in a separate program"
        )
    with _accept_same_start_method():
        importlib.import_module(module)
    return True


def ensure_lava() -> list[str]:
    """Make ``lava`` and ``lava.lib.dl.netx`` importable; return the fixes applied so far.

    Idempotent and cheap after the first call. Raises ``LavaUnavailableError``
    when Lava is not installed at all.
    """
    with sigint_deferred():  # native imports abort on a Ctrl-C inside them
        return _ensure_lava()


def _ensure_lava() -> list[str]:
    from ..errors import LavaUnavailableError

    try:
        importlib.import_module("lava")
        importlib.import_module("lava.lib.dl")
    except ImportError as exc:
        raise LavaUnavailableError(
            "Lava is not installed (lava-nc 0.10.0 and lava-dl 0.6.0 are needed for Lava "
            "runs). Run `make venv`, or on Python 3.11: pip install --no-deps "
            "--ignore-requires-python lava-nc==0.10.0 lava-dl==0.6.0"
        ) from exc
    if "var_model" not in applied and import_with_hashable_default(VAR_MODEL, "ByteEncoder"):
        applied.append("var_model")
    if "object_detection" not in applied and import_without_optional(SLAYER, OBJECT_DETECTION):
        applied.append("object_detection")
    if "start_method" not in applied and import_with_start_method_set(MP_INFRA):
        applied.append("start_method")
    importlib.import_module("lava.lib.dl.netx")
    return list(applied)
