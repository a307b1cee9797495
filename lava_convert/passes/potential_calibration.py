"""Potential calibration: choose each spiking layer's initial membrane potential.

Starting every neuron at ``v0 = V_th/2`` rounds each neuron's count to the nearest
whole spike when its input current is constant (Bu et al., "Optimized Potential
Initialization for Low-Latency Spiking Neural Networks", AAAI 2022; the QCFS
conversion). Inside a network the current is not constant: spikes arrive unevenly, and
at small T which starting point loses least depends on the layer. Li et al. ("A Free
Lunch From ANN", ICML 2021) calibrate the initial potential against the ANN on a few
hundred samples; here each hidden spiking layer, in order, gets the ``v0`` of
:data:`V0_FRACTIONS` (times its threshold) whose spike rates are closest to the ANN's
activations in mean squared error, given the calibrated layers before it. One ``v0``
per layer, or one per output channel (``scope="channel"``): a channel's neurons see
currents of their own, and the start that rounds one channel's counts best need not
suit the next. Exact on Lava, where it is the neuron's initial voltage (one per neuron;
refused by stock NetX, which starts at 0).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from ..config import POTENTIAL_SCOPES
from ..errors import ConfigError
from ..ir import AnnGraph, SnnNetwork, SpikingLayer
from .layerwise import LayerProblem, calibrate_layers

log = logging.getLogger(__name__)

#: Candidate initial potentials, as fractions of each layer's threshold.
V0_FRACTIONS: tuple[float, ...] = tuple(k / 8 for k in range(9))


def calibrate_potentials(graph: AnnGraph, snn: SnnNetwork, x: np.ndarray,
                         progress: bool = False, scope: str = "layer") -> SnnNetwork:
    """Each hidden spiking layer's ``v0``: the candidate of :data:`V0_FRACTIONS` x
    ``V_th`` with the smallest mean squared error between the ANN's activations and
    the layer's spike rates on ``x`` (ties: the one closest to ``V_th/2``); with
    ``scope="channel"`` one per output channel of a conv layer (per neuron of a dense
    layer), each chosen on its own channel's error. The bias is left as it is; run bias
    calibration afterwards to absorb the remaining mean error."""
    if scope not in POTENTIAL_SCOPES:
        raise ConfigError(f"scope={scope!r} is invalid: use one of {POTENTIAL_SCOPES}")
    correct = _best_v0_per_channel if scope == "channel" else _best_v0
    return calibrate_layers(graph, snn, x, correct, desc="potential calibration",
                            progress=progress)


def _candidate_errors(layer: SpikingLayer, problem: LayerProblem) -> np.ndarray:
    """Squared error of each candidate start, ``(len(V0_FRACTIONS), samples, neurons)``."""
    rates = problem.rates(layer, v0s=[f * layer.threshold for f in V0_FRACTIONS])
    return (problem.target[None] - rates) ** 2


def _closest(errors: np.ndarray) -> np.ndarray:
    """The index of the smallest error along the first axis; ties go to the candidate
    closest to ``V_th/2``."""
    order = np.argsort(np.abs(np.asarray(V0_FRACTIONS) - 0.5), kind="stable")
    return order[np.argmin(errors[order], axis=0)]


def _best_v0(layer: SpikingLayer, problem: LayerProblem) -> SpikingLayer:
    errors = _candidate_errors(layer, problem).mean(axis=(1, 2))
    best = int(_closest(errors))
    log.info("layer %s: potential calibration, v0 = %.3g V_th (mean squared error %.4g; "
             "%.4g at V_th/2)", layer.name, V0_FRACTIONS[best], errors[best],
             errors[V0_FRACTIONS.index(0.5)])
    return dataclasses.replace(layer, v0=V0_FRACTIONS[best] * layer.threshold)


def _best_v0_per_channel(layer: SpikingLayer, problem: LayerProblem) -> SpikingLayer:
    errors = _candidate_errors(layer, problem)
    channels = layer.out_shape[0] if layer.kind == "conv" else errors.shape[-1]
    per_channel = errors.reshape(len(V0_FRACTIONS), -1, channels,
                                 errors.shape[-1] // channels).mean(axis=(1, 3))
    best = _closest(per_channel)
    fractions = np.asarray(V0_FRACTIONS)[best]
    log.info("layer %s: potential calibration per channel, v0 = %.3g..%.3g V_th (mean "
             "squared error %.4g; %.4g at V_th/2)", layer.name, fractions.min(),
             fractions.max(), float(per_channel[best, np.arange(channels)].mean()),
             float(per_channel[V0_FRACTIONS.index(0.5)].mean()))
    return dataclasses.replace(layer, v0=fractions * layer.threshold)
