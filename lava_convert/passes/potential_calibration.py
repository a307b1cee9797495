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
per layer: exact on Lava, where it is the neuron's initial voltage (refused by stock
NetX, which starts at 0).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from ..ir import AnnGraph, SnnNetwork, SpikingLayer
from .layerwise import LayerProblem, calibrate_layers

log = logging.getLogger(__name__)

#: Candidate initial potentials, as fractions of each layer's threshold.
V0_FRACTIONS: tuple[float, ...] = tuple(k / 8 for k in range(9))


def calibrate_potentials(graph: AnnGraph, snn: SnnNetwork, x: np.ndarray,
                         progress: bool = False) -> SnnNetwork:
    """Each hidden spiking layer's ``v0``: the candidate of :data:`V0_FRACTIONS` x
    ``V_th`` with the smallest mean squared error between the ANN's activations and
    the layer's spike rates on ``x`` (ties: the one closest to ``V_th/2``). The bias is
    left as it is; run bias calibration afterwards to absorb the remaining mean error."""
    return calibrate_layers(graph, snn, x, _best_v0, desc="potential calibration",
                            progress=progress)


def _best_v0(layer: SpikingLayer, problem: LayerProblem) -> SpikingLayer:
    rates = problem.rates(layer, v0s=[f * layer.threshold for f in V0_FRACTIONS])
    errors = [float(np.mean((problem.target - r) ** 2)) for r in rates]
    best = min(range(len(V0_FRACTIONS)),
               key=lambda k: (errors[k], abs(V0_FRACTIONS[k] - 0.5)))
    log.info("layer %s: potential calibration, v0 = %.3g V_th (mean squared error %.4g; "
             "%.4g at V_th/2)", layer.name, V0_FRACTIONS[best], errors[best],
             errors[V0_FRACTIONS.index(0.5)])
    return dataclasses.replace(layer, v0=V0_FRACTIONS[best] * layer.threshold)
