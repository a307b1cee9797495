"""Bias calibration (Li et al., "A Free Lunch From ANN", ICML 2021): correct each spiking
layer's bias for its average conversion error, one layer at a time."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from ..ir import AnnGraph, SnnNetwork, SpikingLayer
from .layerwise import LayerProblem, calibrate_layers, per_channel

log = logging.getLogger(__name__)


#: Passes over the layers made by :func:`calibrate_biases`.
BIAS_CALIBRATION_ROUNDS = 2


def calibrate_biases(graph: AnnGraph, snn: SnnNetwork, x: np.ndarray,
                     progress: bool = False) -> SnnNetwork:
    """Bias calibration (Li et al., "A Free Lunch From ANN", ICML 2021).

    For each hidden spiking layer ``l`` in order (not a spiking readout: its ANN
    target, the logits, is no spike rate), simulate the float SNN on ``x`` and
    add to its bias the mean difference between the ANN activation and the
    SNN's rate in real units, ``e_l = mean(a_l - counts_l V_th^l / T)``
    (per neuron for dense layers, per channel for conv layers; with per-channel
    thresholds ``V_th`` is the channel's, and the correction is scaled as the
    channel's inputs are). A constant
    extra current ``e`` per step raises a neuron's rate by ``e / V_th``, so
    this removes the layer's average conversion error given the (already
    corrected) layers before it. Two passes over the layers
    (``BIAS_CALIBRATION_ROUNDS``); the correction is recorded in ``shift``.
    """
    return calibrate_layers(graph, snn, x, _correct_bias, rounds=BIAS_CALIBRATION_ROUNDS,
                            desc="bias calibration", progress=progress)


def _correct_bias(layer: SpikingLayer, problem: LayerProblem) -> SpikingLayer:
    error = per_channel(layer, problem.error(layer))
    if layer.channel_scale is not None:  # the layer's inputs are scaled by channel
        error = error / np.reshape(layer.channel_scale, np.shape(error))
    log.info("layer %s: bias calibration, mean |correction| %.4g (V_th %.4g)",
             layer.name, float(np.abs(error).mean()), layer.threshold)
    return dataclasses.replace(layer, bias=layer.bias + error, shift=layer.shift + error)
