"""A NIR graph is untrusted: before any layer is built, every node's numbers must be
numbers, finite and in range, and the time step, time constants, run length and shapes
must make sense (the same bounds as for a .net file). Each failure names the node and
the field."""

from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import NirGraphError
from ..netx.fields import MAX_NEURONS
from ..sim.inputs import MAX_FILE_TIMESTEPS

#: Fields that are not numbers: free-form metadata, and the shapes of Input/Output, checked
#: by :func:`check_shape`.
NOT_NUMBERS = ("metadata", "input_type", "output_type")
#: Fields holding time constants: positive and at least the time step (forward Euler at
#: ``dt`` is a decay by ``1 - dt/tau``, which a ``tau`` below ``dt`` turns negative).
TIME_CONSTANTS = ("tau", "tau_syn", "tau_mem")
#: Fields holding integer geometry (at least 0; stride, dilation, groups, kernel at least 1).
GEOMETRY = ("stride", "padding", "dilation", "groups", "kernel_size", "input_shape")


def check_run(dt, timesteps, timesteps_from_graph: bool) -> tuple[float, int]:
    """``dt`` a finite time step > 0 and ``timesteps`` a whole number of steps >= 1; one the
    graph asks for (``timesteps_from_graph``) at most
    :data:`~lava_convert.sim.inputs.MAX_FILE_TIMESTEPS` (a caller who passes more gets
    it). Returned as float and int."""
    try:
        dt_value = float(dt)
    except (TypeError, ValueError):
        raise NirGraphError(f"dt = {dt!r} is not a number; pass dt (the time step the "
                            "graph's time constants assume, e.g. 1e-4)") from None
    if not np.isfinite(dt_value) or dt_value <= 0:
        raise NirGraphError(f"dt = {dt_value:g}: the time step must be a finite number above "
                            "0 (snnTorch's exports assume 1e-4, Norse's 1e-3)")
    try:
        steps = float(timesteps)
    except (TypeError, ValueError):
        raise NirGraphError(f"timesteps = {timesteps!r} is not a number of time steps; pass "
                            "timesteps") from None
    top = MAX_FILE_TIMESTEPS if timesteps_from_graph else float("inf")
    if not steps.is_integer() or not 1 <= steps <= top:
        said = (f"the graph asks for timesteps = {timesteps!r}: at most {MAX_FILE_TIMESTEPS} "
                "are taken from a file; pass timesteps if you mean it"
                if timesteps_from_graph and steps > top else
                f"timesteps = {timesteps!r}: a sample runs a whole number of steps >= 1")
        raise NirGraphError(said)
    return dt_value, int(steps)


def check_node(name: str, node, dt: float) -> None:
    """Every numeric field of ``node`` numeric and finite; time constants at least ``dt``;
    geometry whole numbers in range."""
    kind = type(node).__name__
    if not dataclasses.is_dataclass(node):
        raise NirGraphError(f"node '{name}' ({kind}) is not a NIR node")
    for field in dataclasses.fields(node):
        if field.name in NOT_NUMBERS:
            continue
        value = getattr(node, field.name)
        if value is None:
            continue
        if kind == "Conv2d" and field.name == "padding" and isinstance(value, (str, bytes)):
            continue  # "same" / "valid": read by the chain reader
        where = f"node '{name}' ({kind}): {field.name}"
        try:
            array = np.asarray(value)
        except (TypeError, ValueError):
            raise NirGraphError(f"{where} is not an array of numbers; re-export the "
                                "graph") from None
        if array.dtype.kind not in "biuf":
            raise NirGraphError(f"{where} holds {array.dtype} values, not numbers; re-export "
                                "the graph")
        if not np.all(np.isfinite(array)):
            raise NirGraphError(f"{where} holds NaN or infinite values; re-export the graph")
        if field.name in TIME_CONSTANTS and np.any(array < dt):
            raise NirGraphError(f"{where} = {float(array.min()):g} is shorter than the time "
                                f"step dt = {dt:g} (or not positive): forward Euler would "
                                "not decay; pass the dt the graph was made for")
        if field.name in GEOMETRY:
            low = 0 if field.name == "padding" else 1
            if np.any(array != np.round(array)) or np.any(array < low):
                raise NirGraphError(f"{where} = {array.reshape(-1).tolist()}: whole numbers "
                                    f"of at least {low} expected")


def check_shape(name: str, shape, what: str) -> tuple[int, ...]:
    """A node's ``shape`` (an Input's or Output's): whole numbers >= 1 whose product is at
    most :data:`~lava_convert.netx.fields.MAX_NEURONS`."""
    try:
        array = np.asarray(shape, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise NirGraphError(f"node '{name}': its {what} {shape!r} is not a shape") from None
    if array.size == 0 or array.size > 4 or not np.all(np.isfinite(array)) \
            or np.any(array != np.round(array)) or np.any(array < 1):
        raise NirGraphError(f"node '{name}': its {what} {array.tolist()} is not a shape of 1 "
                            "to 4 whole numbers >= 1")
    if float(np.prod(array)) > MAX_NEURONS:
        raise NirGraphError(f"node '{name}': its {what} {array.astype(int).tolist()} holds "
                            f"{float(np.prod(array)):.3g} values, more than the "
                            f"{MAX_NEURONS} a layer may have")
    return tuple(int(v) for v in array)


def check_range(value) -> tuple[float, float]:
    """The inputs' range ``(lo, hi)``: two finite numbers, ``lo <= hi``."""
    try:
        lo, hi = (float(v) for v in np.asarray(value, dtype=np.float64).reshape(-1))
    except (TypeError, ValueError):
        raise NirGraphError(f"input range {value!r} is not two numbers (lo, hi); pass "
                            "input_range") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
        raise NirGraphError(f"input range ({lo:g}, {hi:g}) is not two finite numbers with lo "
                            "<= hi; pass input_range")
    return lo, hi
