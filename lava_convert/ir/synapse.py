"""The one synapse type of the IR: a dense matrix or a 2-D convolution, reading the output
of one layer. Every layer's main input and every residual shortcut is a :class:`Synapse`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

#: A synapse is a matrix product (``"dense"``) or a 2-D cross-correlation (``"conv"``).
SynapseKind = Literal["dense", "conv"]
SYNAPSE_KINDS: tuple[str, ...] = ("dense", "conv")


@dataclass(frozen=True)
class ConvGeometry:
    """Stride, padding, dilation (each ``(H, W)``) and groups of a 2-D convolution."""

    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1


@dataclass(frozen=True)
class Synapse:
    """Weights from the output of layer ``source`` (-1: the network input) into a layer.

    ``weight`` is ``(out, in)`` for ``"dense"`` (a 3-D source is read flattened
    in C,H,W order) or ``(C_out, C_in/groups, kH, kW)`` for ``"conv"`` (PyTorch
    orientation, ``geometry`` holds the rest). Units are those of the stage that
    holds it: float in the ANN and SNN, integers in a FixedLayer. Several
    synapses into one neuron group add, in Lava as in every simulator here.
    """

    kind: SynapseKind
    weight: np.ndarray
    source: int = -1
    geometry: ConvGeometry = ConvGeometry()

    def __post_init__(self) -> None:
        if self.kind not in SYNAPSE_KINDS:
            raise ValueError(f"synapse kind {self.kind!r} is not one of {SYNAPSE_KINDS}")


class HasMainSynapse:
    """For layers with a ``synapse`` attribute: their kind is their main synapse's."""

    synapse: Synapse

    @property
    def kind(self) -> str:
        return self.synapse.kind
