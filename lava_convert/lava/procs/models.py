"""Process models for :mod:`lava_convert.lava.procs.process` (``fixed_pt`` only, like
NetX's own blocks).

The LIF model inherits Lava's own LIF arithmetic
(``AbstractPyLifModelFixed.subthr_dynamics``: decays, 6-bit shifts, 24-bit
wrap of ``u``, saturation of ``v``) and takes the spike and reset rules from
:mod:`lava_convert.sim.neuron`, so it is bit-accurate to Lava's LIF on every
sub-threshold step by construction and resets as the reference does.
"""

from __future__ import annotations

import numpy as np
from lava.lib.dl.netx.blocks.models import AbstractPyBlockModel
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.lif.models import AbstractPyLifModelFixed

# Absolute imports: Lava's compiler executes this file as a top-level module.
from lava_convert.lava.procs.network import Network
from lava_convert.lava.procs.process import GradedSource, SoftResetLIF, SpikeDelay
from lava_convert.sim.neuron import apply_reset, fires


class _Streaming:
    """Window bookkeeping: per-sample reset and recording over fixed windows."""

    # Private names: the model base class owns public ones such as ``start()``,
    # the worker's main loop.
    def _init_streaming(self, proc_params) -> None:
        self._reset_mode = proc_params["reset_mode"]
        self._window = int(proc_params["window"])
        self._start = int(proc_params["start"])
        self._v0 = proc_params["v0"]
        self._record_windows = int(proc_params["record_windows"])
        self._record_v = bool(proc_params["record_v"])

    def _window_phase(self) -> tuple[int, bool]:
        """Return (recording slot or -1 before the first window, whether this step starts one)."""
        t = self.time_step - self._start
        if t < 0:
            return -1, False
        if self._window == 0:
            return 0, t == 0
        k, pos = divmod(t, self._window)
        return (k % self._record_windows if self._record_windows else 0), pos == 0

    def _step(self) -> None:
        a_in = self.a_in.recv()
        slot, starts = self._window_phase()
        if starts:
            self.u[:] = 0
            self.v[:] = self._v0
            if self._record_windows:
                self.spike_counts[slot] = 0
        self._integrate(a_in)
        spikes = self.spiking_activation()
        self.reset_voltage(spikes)
        if self._record_windows and slot >= 0:
            self.spike_counts[slot] += spikes
            if self._record_v:
                self.v_end[slot] = self.v
        self.s_out.send(spikes)


@implements(proc=SoftResetLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt", "bit_accurate_loihi")
class PySoftResetLIFModelFixed(_Streaming, AbstractPyLifModelFixed):
    """Bit-accurate Loihi LIF with soft (``v -= vth << 6``) or hard reset."""

    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    vth: int = LavaPyType(int, np.int32, precision=17)
    spike_counts: np.ndarray = LavaPyType(np.ndarray, np.int32)
    v_end: np.ndarray = LavaPyType(np.ndarray, np.int32)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self._init_streaming(proc_params)
        self.effective_vth = 0

    def scale_threshold(self) -> None:
        self.effective_vth = np.left_shift(self.vth, self.vth_shift)
        self.isthrscaled = True

    def spiking_activation(self) -> np.ndarray:
        return fires(self.v, self.effective_vth)

    def reset_voltage(self, spike_vector: np.ndarray) -> None:
        self.v[:] = apply_reset(self.v, spike_vector, self.effective_vth, self._reset_mode)

    def _integrate(self, a_in: np.ndarray) -> None:
        self.scale_bias()
        if not self.isthrscaled:
            self.scale_threshold()
        self.subthr_dynamics(activation_in=a_in)

    def run_spk(self) -> None:
        self._step()


@implements(proc=GradedSource, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt", "floating_pt")
class PyGradedSourceModel(PyLoihiProcessModel):
    """Sends ``data[k]`` on every step of window ``k``, zeros after the last sample."""

    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    data: np.ndarray = LavaPyType(np.ndarray, np.int32)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self._window = int(proc_params["window"])

    def run_spk(self) -> None:
        k = (self.time_step - 1) // self._window
        if k < self.data.shape[0]:
            self.s_out.send(self.data[k])
        else:
            self.s_out.send(np.zeros(self.data.shape[1:], dtype=np.int32))


@implements(proc=SpikeDelay, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt", "floating_pt")
class PySpikeDelayModel(PyLoihiProcessModel):
    """Ring buffer of ``delay`` steps: send the oldest entry, then store this step's input
    in its place (sending first, as Lava's synapses do, keeps every step deadlock-free)."""

    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    buffer: np.ndarray = LavaPyType(np.ndarray, np.int32)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self._delay = int(proc_params["delay"])

    def run_spk(self) -> None:
        slot = (self.time_step - 1) % self._delay
        self.s_out.send(self.buffer[slot].copy())
        self.buffer[slot] = self.s_in.recv()


@implements(proc=Network, protocol=LoihiProtocol)
class PyNetworkModel(AbstractPyBlockModel):
    """The hierarchical model of :class:`~lava_convert.lava.procs.network.Network`: its
    blocks are built by the process, as for stock NetX's ``Network``."""
