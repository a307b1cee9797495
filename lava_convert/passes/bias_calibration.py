"""Bias calibration (Li et al., "A Free Lunch From ANN", ICML 2021): correct each spiking
layer's bias for its average conversion error, one layer at a time."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import torch
from tqdm.auto import tqdm

from ..ir import AnnGraph, SnnNetwork
from ..sim.ann import forward
from ..sim.reference import float_layer_trains

log = logging.getLogger(__name__)


#: Passes over the layers made by :func:`calibrate_biases`.
BIAS_CALIBRATION_ROUNDS = 2
#: Samples simulated together by :func:`calibrate_biases` (small batches run faster on CPU).
CALIBRATION_CHUNK = 64


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
    The spike trains entering each layer (and its shortcuts) are kept until no
    later layer reads them, so a pass simulates every layer twice (before and
    after its correction) rather than the whole network once per layer.
    """
    T = snn.timesteps
    activations = forward(graph, x)
    xt = torch.as_tensor(np.asarray(x, dtype=np.float64)).reshape(len(x), *snn.input_shape)
    chunks = torch.split(xt, CALIBRATION_CHUNK)
    last_use = _last_uses(snn.layers)

    def counts_and_trains(i, layer, trains):
        skips = [trains[k.source] for k in layer.skips]
        out = [float_layer_trains(layer, inp, [s[c] for s in skips])
               for c, inp in enumerate(trains[i - 1])]
        return torch.cat([t.sum(dim=0).reshape(t.shape[1], -1) for t in out]).numpy(), out

    bar = tqdm(total=BIAS_CALIBRATION_ROUNDS * len(snn.layers), desc="bias calibration",
               unit="layer", disable=not progress, leave=False)
    for _ in range(BIAS_CALIBRATION_ROUNDS):
        trains = {-1: [c.expand(T, *c.shape) for c in chunks]}  # by layer index, -1 the input
        layers = list(snn.layers)
        for i, layer in enumerate(layers):
            if layer.spiking and i < len(layers) - 1:  # hidden layers: clipped-ReLU targets
                counts, _ = counts_and_trains(i, layer, trains)
                amplitude = layer.amplitudes()  # real units per spike (per channel)
                if np.ndim(amplitude):
                    amplitude = np.repeat(amplitude, counts.shape[1] // len(amplitude))
                error = activations[i].reshape(len(x), -1) - counts / T * amplitude
                if layer.kind == "conv":
                    error = error.reshape(len(x), layer.out_shape[0], -1).mean(axis=(0, 2))
                else:
                    error = error.mean(axis=0)
                if layer.channel_scale is not None:  # the layer's inputs are scaled by channel
                    error = error / layer.channel_scale
                error = error.reshape(np.shape(layer.bias))
                layer = layers[i] = dataclasses.replace(layer, bias=layer.bias + error,
                                                        shift=layer.shift + error)
                log.info("layer %s: bias calibration, mean |correction| %.4g (V_th %.4g)",
                         layer.name, float(np.abs(error).mean()), layer.threshold)
            if i + 1 < len(layers):
                trains[i] = counts_and_trains(i, layer, trains)[1]
            for j in [j for j in trains if last_use.get(j, j + 1) <= i]:
                del trains[j]  # no later layer reads these spikes
            bar.update()
        snn = dataclasses.replace(snn, layers=tuple(layers))
    bar.close()
    return snn


def _last_uses(layers) -> dict[int, int]:
    """For each layer index (-1: the input), the last layer that reads its output."""
    last = {}
    for t, layer in enumerate(layers):
        last[t - 1] = t
        for k in layer.skips:
            last[k.source] = max(last.get(k.source, t), t)
    return last
