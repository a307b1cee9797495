"""Intermediate representation: data-only, frozen objects passed between pipeline stages.

trace -> :class:`AnnGraph` -> passes -> :class:`SnnNetwork` (float)
-> quantize -> :class:`FixedNetwork` (Loihi integers) -> NetX writer / runtimes.
Every synapse, main or shortcut, is a :class:`Synapse`.
"""

from .ann import Activation, AnnGraph, AnnLayer
from .fixed import (
    LAYER_KINDS,
    NEURON_MODELS,
    STOCK_INPUT_TRANSFORM,
    FixedLayer,
    FixedNetwork,
    LayerKind,
    NeuronModel,
    layer_depths,
    setting_size,
    skip_delays,
)
from .records import LayerCheck, LayerQuantization, QuantizationCheck
from .snn import RESET_MODES, ResetMode, SnnNetwork, SpikingLayer
from .synapse import SYNAPSE_KINDS, ConvGeometry, Synapse, SynapseKind

__all__ = [
    "LAYER_KINDS", "NEURON_MODELS", "RESET_MODES", "STOCK_INPUT_TRANSFORM", "SYNAPSE_KINDS",
    "Activation", "AnnGraph", "AnnLayer", "ConvGeometry", "FixedLayer", "FixedNetwork",
    "LayerCheck", "LayerKind", "LayerQuantization", "NeuronModel", "QuantizationCheck",
    "ResetMode", "SnnNetwork", "SpikingLayer", "Synapse", "SynapseKind",
    "layer_depths", "setting_size", "skip_delays",
]
