"""The converted network in real-valued units: integrate-and-fire layers after balancing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from .synapse import HasMainSynapse, Synapse

#: ``soft``: a spike subtracts the threshold; ``hard``: a spike sets ``v`` to 0 (Lava's LIF).
ResetMode = Literal["soft", "hard"]
RESET_MODES: tuple[str, ...] = ("soft", "hard")


@dataclass(frozen=True)
class SpikingLayer(HasMainSynapse):
    """A layer of IF neurons in real-valued units.

    Per time step the layer receives ``I = W s + bias (+ shortcuts)`` where ``s``
    is the analog input (first layer) or the previous layer's binary spikes.
    Spiking layers fire on ``v > threshold`` and reset by ``reset``; a readout
    layer (``spiking=False``) only integrates ``v``.

    Attributes:
        synapse: Main synapse; the previous layer's threshold is folded into its
            weight, so a spike counts 1.
        bias: Current per step (per neuron or channel), including the shift.
        threshold: V_th (same units as the weights); 0 for a readout layer.
        shift: The part of ``bias`` added by conversion (V_th/(2T), calibration).
        v0: Membrane potential at the start of each sample: one for the layer, or
            one per neuron (per channel of a conv layer), shaped like a channel-wise bias.
        threshold_source: How the threshold was chosen (for reports).
        out_shape: Output shape (C,H,W for conv layers).
        skips: Shortcut synapses; each reads its source layer's spikes of the same
            step, its weight scaled by the source's threshold.
        du: Share of the synaptic current ``u`` that decays per step (1: the current is
            this step's input only, the IF neuron of conversion; below 1: a
            current-based LIF, as imported from NIR ``CubaLIF``).
        dv: Share of ``v`` that leaks per step (0: no leak).
        channel_scale: With per-channel thresholds, ``theta_c / threshold`` per output
            channel (per neuron of a dense layer; at most 1): the channel's incoming
            weights, bias and shift were divided by it so that one ``threshold`` serves
            the layer, and a spike of channel ``c`` carries ``theta_c``. ``None``: one
            threshold.

    With ``du == 1`` the bias is part of the current; otherwise it is added to ``v``
    each step, as Lava adds it (see :func:`lava_convert.sim.neuron.float_step`).
    """

    name: str
    synapse: Synapse
    bias: np.ndarray
    threshold: float
    spiking: bool
    reset: ResetMode = "soft"
    shift: float | np.ndarray = 0.0
    v0: float | np.ndarray = 0.0
    threshold_source: str = ""
    out_shape: tuple[int, ...] = ()
    skips: tuple[Synapse, ...] = ()
    du: float = 1.0
    dv: float = 0.0
    channel_scale: np.ndarray | None = None

    def amplitudes(self) -> np.ndarray | float:
        """What one spike of each output channel stands for, in real units: ``theta_c``
        per channel with per-channel thresholds, else the threshold."""
        if self.channel_scale is None:
            return self.threshold
        return self.threshold * np.asarray(self.channel_scale, dtype=np.float64)


@dataclass(frozen=True)
class SnnNetwork:
    """A converted network in real-valued units, ready to quantize or simulate."""

    input_shape: tuple[int, ...]
    layers: tuple[SpikingLayer, ...]
    timesteps: int
    input_range: tuple[float, float]
