"""Lava processes: a LIF with soft or hard reset and per-sample recording; a graded source;
a spike delay line for residual shortcuts."""

from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.proc.lif.process import LIF

from lava_convert.hw.loihi import BIAS_EXP, IF_DU, IF_DV, MAX_MESSAGE_BITS
from lava_convert.ir.snn import RESET_MODES


class SoftResetLIF(LIF):
    """Loihi LIF whose spike subtracts the threshold, streamed over fixed windows.

    Dynamics per time step: Lava's fixed-point LIF, with the spike and reset rules of
    :mod:`lava_convert.sim.neuron` (where the equations are written): spike when
    ``v > vth << 6``, then ``v -= vth << 6`` (``reset_mode="soft"``) or ``v = 0``
    (``"hard"``, Lava's LIF).

    Streaming: the time steps ``start + k*window, ..., start + (k+1)*window - 1``
    form window ``k`` (one sample); ``u`` and ``v`` are set to ``u0``/``v0`` at the
    first step of every window, before that step's input is integrated.

    Recording (``record_windows > 0``): ``spike_counts[k % record_windows]`` holds
    the spikes of each neuron in window ``k``; with ``record_v``, ``v_end`` holds
    ``v`` at the last step of the window (after reset, in Lava units).

    Args:
        shape: Neuron array shape.
        vth: Threshold mantissa (unsigned 17 bit); compared as ``vth << 6``.
        du, dv: Current and voltage decay (12 bit); the defaults make an IF neuron.
        bias_mant, bias_exp: Bias mantissa (13 bit signed) and exponent.
        reset_mode: ``"soft"`` (subtract threshold) or ``"hard"`` (to zero).
        window: Window length in time steps; 0 disables periodic reset.
        start: First time step of window 0 (Lava counts time from 1; 0, as stock NetX
            gives a layer at depth 0 with ``reset_offset=0``: window 0 is one step short
            and the first reset comes at step ``window``).
        v0: Membrane potential set at each window start (Lava units; one, or one per
            neuron).
        record_windows: Ring size of the recording buffers; 0 records nothing.
        record_v: Also record ``v`` at the end of each window.
    """

    def __init__(
        self,
        *,
        shape: tuple[int, ...],
        vth: int,
        du: int = IF_DU,
        dv: int = IF_DV,
        bias_mant: int | np.ndarray = 0,
        bias_exp: int | np.ndarray = BIAS_EXP,
        reset_mode: str = "soft",
        window: int = 0,
        start: int = 1,
        v0: int | np.ndarray = 0,
        record_windows: int = 0,
        record_v: bool = False,
        name: str | None = None,
        **kwargs,
    ) -> None:
        if reset_mode not in RESET_MODES:
            raise ValueError(f"reset_mode must be one of {RESET_MODES}, got {reset_mode!r}")
        if window < 0 or start < 0 or record_windows < 0:
            raise ValueError(f"window ({window}), record_windows ({record_windows}) and "
                             f"start ({start}) must be >= 0")
        super().__init__(
            shape=shape, vth=vth, du=du, dv=dv, bias_mant=bias_mant, bias_exp=bias_exp,
            u=0, v=v0, name=name, reset_mode=reset_mode, window=window, start=start,
            v0=v0, record_windows=record_windows, record_v=record_v, **kwargs,
        )
        rec_shape = (max(record_windows, 1),) + tuple(shape)
        self.spike_counts = Var(shape=rec_shape, init=0)
        self.v_end = Var(shape=rec_shape if record_v else (1,), init=0)


class GradedSource(AbstractProcess):
    """Sends one sample per window as graded spikes: ``data[k]`` on each step of window ``k``.

    Window ``k`` covers time steps ``k*window + 1 ... (k+1)*window``; after the
    last sample the source sends zeros. Payloads are integers (``num_message_bits``
    wide), delivered to the next synapse in the same time step.
    """

    def __init__(self, *, data: np.ndarray, window: int,
                 num_message_bits: int = MAX_MESSAGE_BITS) -> None:
        data = np.asarray(data)
        if data.ndim < 2 or window < 1:
            raise ValueError(f"data must be (samples, *shape) and window >= 1, got "
                             f"shape {data.shape} and window {window}")
        super().__init__(window=window, num_message_bits=num_message_bits)
        self.data = Var(shape=data.shape, init=data.astype(np.int32))
        self.s_out = OutPort(shape=data.shape[1:])


class SpikeDelay(AbstractProcess):
    """Delay line: the spikes received on step ``t`` leave on step ``t + delay``.

    It pads the shorter path of a residual connection so that both paths reach
    their neurons on the same step. Zeros leave on the first ``delay`` steps.
    """

    def __init__(self, *, shape: tuple[int, ...], delay: int) -> None:
        if delay < 1:
            raise ValueError(f"delay must be >= 1 step, got {delay}")
        super().__init__(shape=shape, delay=delay)
        self.s_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.buffer = Var(shape=(delay, *shape), init=0)
