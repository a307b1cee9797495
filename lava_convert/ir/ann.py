"""The traced ANN: layers ``z = sum of synapses + b`` followed by an activation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from .synapse import HasMainSynapse, Synapse

#: ``relu``; ``clip`` (ThresholdReLU, ``clip(z, 0, theta)``); ``qcfs`` (QCFS staircase with
#: ``levels`` steps up to ``theta``); ``None`` for the output layer (raw logits).
Activation = Literal["relu", "clip", "qcfs"]


@dataclass(frozen=True)
class AnnLayer(HasMainSynapse):
    """An ANN layer: main synapse (from the previous layer), shortcuts, bias, activation.

    Attributes:
        name: Module path in the source model (e.g. ``"net.2"``).
        synapse: The main synapse, reading the previous layer (or the input).
        bias: Float bias per output neuron (dense) or channel (conv); shortcut
            biases (BatchNorm on a shortcut) are part of it.
        activation: See :data:`Activation`; ``None`` for the output layer.
        clip: ``theta`` of a ``"clip"`` or ``"qcfs"`` activation, else ``None``.
        activation_name: Module path of the activation (for messages).
        levels: ``L`` of a ``"qcfs"`` activation.
        in_shape, out_shape: Per-sample shapes, C,H,W for conv inputs/outputs.
        skips: Shortcut synapses from earlier layers (residual adds), BatchNorm folded.
    """

    name: str
    synapse: Synapse
    bias: np.ndarray
    activation: Activation | None
    clip: float | None = None
    activation_name: str | None = None
    levels: int | None = None
    in_shape: tuple[int, ...] = ()
    out_shape: tuple[int, ...] = ()
    skips: tuple[Synapse, ...] = ()


@dataclass(frozen=True)
class AnnGraph:
    """A traced feed-forward ANN: per-sample ``input_shape``, layers in order, and notes
    on what tracing folded or dropped (recorded in the export's sidecar). Evaluate it
    with :func:`lava_convert.sim.ann.forward`."""

    input_shape: tuple[int, ...]
    layers: tuple[AnnLayer, ...]
    notes: tuple[str, ...] = ()
