"""Threshold balancing: the pass that turns the traced ANN into a float SNN.

For hidden layer ``l`` with ANN activation ``a_l = clip(W_l a_{l-1} + b_l, 0, theta_l)``
the SNN layer gets threshold ``V_th^l = theta_l``, weights ``W_l * V_th^{l-1}``
(a spike of layer ``l-1`` carries amplitude ``V_th^{l-1}``; the analog input
has amplitude 1; a residual shortcut from layer ``s`` gets ``W_k * V_th^s``)
and, with ``shift="bias"``, bias ``b_l + V_th^l / (2T)``:
Deng & Gu's shift that centres the rate staircase ``floor(T z / V_th) / T`` on
the ReLU. The output layer is a non-spiking integrator (``readout="potential"``).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from ..config import ConversionConfig
from ..errors import CalibrationError, ConfigError
from ..ir import AnnGraph, SnnNetwork, SpikingLayer
from ..sim.ann import forward
from .calibration_data import check_calibration

log = logging.getLogger(__name__)


#: Histogram resolution of percentile balancing: the value is exact to max / HIST_BINS.
HIST_BINS = 65536


def activation_statistics(graph: AnnGraph, x: np.ndarray, percentile: float | None = None,
                          batch_size: int = 2048) -> list[tuple[float, float | None]]:
    """``(max, percentile)`` of every layer's activations, in batches (memory-bounded).

    The maximum streams; the percentile takes a second pass that fills a
    ``HIST_BINS``-bin histogram over ``[0, max]`` per layer and returns the
    upper edge of the bin holding the requested rank (never below the true
    percentile, at most ``max / HIST_BINS`` above it). The last layer's entry is
    the largest logit.
    """
    n = len(graph.layers)
    maxima = np.full(n, -np.inf)
    for lo in range(0, len(x), batch_size):
        for i, a in enumerate(forward(graph, x[lo:lo + batch_size])):
            maxima[i] = max(maxima[i], float(a.max()))
    if percentile is None:
        return [(float(m), None) for m in maxima]
    hists = np.zeros((n, HIST_BINS), dtype=np.int64)
    total = np.zeros(n, dtype=np.int64)
    for lo in range(0, len(x), batch_size):
        for i, a in enumerate(forward(graph, x[lo:lo + batch_size])):
            top = max(maxima[i], 0.0) or 1.0
            idx = np.clip((a.ravel() / top * HIST_BINS).astype(np.int64), 0, HIST_BINS - 1)
            hists[i] += np.bincount(idx, minlength=HIST_BINS)
            total[i] += a.size
    result = []
    for i in range(n):
        top = max(maxima[i], 0.0) or 1.0
        rank = np.searchsorted(np.cumsum(hists[i]), percentile / 100.0 * total[i])
        result.append((float(maxima[i]), float(min(rank + 1, HIST_BINS)) * top / HIST_BINS))
    return result


def layer_thresholds(
    graph: AnnGraph, x: np.ndarray, config: ConversionConfig
) -> list[tuple[float, str]]:
    """``(V_th, source)`` for every hidden layer, from clips or calibration activations."""
    needs_data = config.balancing in ("max", "percentile") or any(
        l.activation not in ("clip", "qcfs") for l in graph.layers[:-1])
    stats = activation_statistics(
        graph, x, config.percentile if config.balancing == "percentile" else None
    ) if needs_data else [(0.0, None)] * len(graph.layers)
    result = []
    for layer, (top, pct) in zip(graph.layers[:-1], stats[:-1]):
        mode = config.balancing
        if mode == "auto":
            mode = "clip" if layer.activation in ("clip", "qcfs") else "max"
        if mode == "clip":
            if layer.activation not in ("clip", "qcfs"):
                raise ConfigError(
                    f"balancing='clip' but layer '{layer.name}' has a plain ReLU: use "
                    "ThresholdReLU there, or balancing='max' / 'percentile'"
                )
            theta, source = float(layer.clip), "clip"
        elif mode == "max":
            theta, source = top, "max"
        else:
            theta, source = pct, f"p{config.percentile:g}"
            if theta <= 0:  # mostly silent layer: the percentile lands on zero
                theta, source = top, "max (percentile was 0)"
        if not theta > 0:
            raise CalibrationError(
                f"layer '{layer.name}' never activates on the calibration data (max activation "
                f"{top:.3g}): its threshold cannot be set; use more or more varied "
                "calibration samples, or a ThresholdReLU"
            )
        result.append((theta, source))
    return result


def balance(graph: AnnGraph, x: np.ndarray, config: ConversionConfig) -> SnnNetwork:
    """Threshold balancing, reset rule, shift and read-out: AnnGraph -> SnnNetwork.

    Refuses (``CalibrationError``) calibration data that does not fit the graph, a
    layer that never activates on it (no threshold can be set), and
    ``readout="spikes"`` without a positive logit; ``ConfigError`` for
    ``balancing="clip"`` on a layer without a clip."""
    x = check_calibration(x, graph.input_shape)
    thresholds = layer_thresholds(graph, x, config)
    if config.readout == "spikes":
        top_logit = activation_statistics(graph, x)[-1][0]
        if not top_logit > 0:
            raise CalibrationError("readout='spikes' needs a positive logit on calibration "
                                   "data to set the output threshold; use readout='potential'")
        thresholds.append((top_logit, "max logit"))
    T = config.timesteps
    layers, previous = [], 1.0
    for i, layer in enumerate(graph.layers):
        synapse = dataclasses.replace(layer.synapse, weight=layer.synapse.weight * previous)
        # a shortcut carries its source's spikes, of amplitude V_th of the source
        skips = tuple(dataclasses.replace(k, weight=k.weight * thresholds[k.source][0])
                      for k in layer.skips)
        if i < len(thresholds):
            theta, source = thresholds[i]
            shift = theta / (2 * T) if config.shift == "bias" else 0.0
            v0 = theta / 2 if config.shift == "v0" else 0.0
            layers.append(SpikingLayer(
                name=layer.name, synapse=synapse, bias=layer.bias + shift, threshold=theta,
                spiking=True, reset=config.reset, shift=shift, v0=v0, threshold_source=source,
                out_shape=layer.out_shape, skips=skips,
            ))
            log.info("layer %s: V_th=%.4g (%s), shift %.4g, v0 %.4g", layer.name, theta, source,
                     shift, v0)
            previous = theta
        else:
            layers.append(SpikingLayer(name=layer.name, synapse=synapse, bias=layer.bias.copy(),
                                       threshold=0.0, spiking=False, reset="soft",
                                       threshold_source="readout", out_shape=layer.out_shape,
                                       skips=skips))
    return SnnNetwork(input_shape=graph.input_shape, layers=tuple(layers), timesteps=T,
                      input_range=(float(x.min()), float(x.max())))
