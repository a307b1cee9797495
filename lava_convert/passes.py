"""Conversion passes: calibration checks and threshold balancing (ANN -> float SNN).

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

from .config import ConversionConfig
from .errors import CalibrationError, ConfigError
from .ir import AnnGraph, SnnNetwork, SpikingLayer

log = logging.getLogger(__name__)


def check_calibration(x: np.ndarray, input_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Validate calibration samples; return them as float64 ``(batch, *shape)``."""
    try:
        x = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise CalibrationError(f"calibration data is not numeric: {exc}") from exc
    if x.ndim < 2 or len(x) == 0:
        raise CalibrationError(
            f"calibration data must be a non-empty batch (samples, ...), got shape {x.shape}: "
            "pass a few hundred training samples"
        )
    if not np.all(np.isfinite(x)):
        bad = int(np.sum(~np.isfinite(x)))
        raise CalibrationError(f"calibration data contains {bad} NaN/inf values: clean the data")
    if input_shape is not None and tuple(x.shape[1:]) != tuple(input_shape):
        raise CalibrationError(
            f"calibration samples have shape {tuple(x.shape[1:])}, the network expects "
            f"{tuple(input_shape)}"
        )
    return x


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
        for i, a in enumerate(graph.forward(x[lo:lo + batch_size])):
            maxima[i] = max(maxima[i], float(a.max()))
    if percentile is None:
        return [(float(m), None) for m in maxima]
    hists = np.zeros((n, HIST_BINS), dtype=np.int64)
    total = np.zeros(n, dtype=np.int64)
    for lo in range(0, len(x), batch_size):
        for i, a in enumerate(graph.forward(x[lo:lo + batch_size])):
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
    """Threshold balancing, reset rule, shift and read-out: AnnGraph -> SnnNetwork."""
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
        weight = layer.weight * previous
        # a shortcut carries its source's spikes, of amplitude V_th of the source
        skips = tuple(dataclasses.replace(k, weight=k.weight * thresholds[k.source][0])
                      for k in layer.skips)
        if i < len(thresholds):
            theta, source = thresholds[i]
            shift = theta / (2 * T) if config.shift == "bias" else 0.0
            v0 = theta / 2 if config.shift == "v0" else 0.0
            layers.append(SpikingLayer(
                name=layer.name, weight=weight, bias=layer.bias + shift, threshold=theta,
                spiking=True, reset=config.reset, shift=shift, v0=v0,
                ann_threshold_source=source, kind=layer.kind, out_shape=layer.out_shape,
                conv=layer.conv, skips=skips,
            ))
            log.info("layer %s: V_th=%.4g (%s), shift %.4g, v0 %.4g", layer.name, theta, source,
                     shift, v0)
            previous = theta
        else:
            layers.append(SpikingLayer(name=layer.name, weight=weight, bias=layer.bias.copy(),
                                       threshold=0.0, spiking=False, reset="soft",
                                       ann_threshold_source="readout", kind=layer.kind,
                                       out_shape=layer.out_shape, conv=layer.conv, skips=skips))
    return SnnNetwork(input_shape=graph.input_shape, layers=tuple(layers), timesteps=T,
                      input_range=(float(x.min()), float(x.max())))


#: Passes over the layers made by :func:`calibrate_biases`.
BIAS_CALIBRATION_ROUNDS = 2
#: Samples simulated together by :func:`calibrate_biases` (small batches run faster on CPU).
CALIBRATION_CHUNK = 64


def calibrate_biases(graph: AnnGraph, snn: SnnNetwork, x: np.ndarray) -> SnnNetwork:
    """Bias calibration (Li et al., "A Free Lunch From ANN", ICML 2021).

    For each spiking layer ``l`` in order, simulate the float SNN on ``x`` and
    add to its bias the mean difference between the ANN activation and the
    SNN's rate in real units, ``e_l = mean(a_l - counts_l V_th^l / T)``
    (per neuron for dense layers, per channel for conv layers). A constant
    extra current ``e`` per step raises a neuron's rate by ``e / V_th``, so
    this removes the layer's average conversion error given the (already
    corrected) layers before it. Two passes over the layers
    (``BIAS_CALIBRATION_ROUNDS``); the correction is recorded in ``shift``.
    The spike trains entering each layer (and its shortcuts) are kept until no
    later layer reads them, so a pass simulates every layer twice (before and
    after its correction) rather than the whole network once per layer.
    """
    import dataclasses

    import torch

    from .reference import float_layer_trains

    T = snn.timesteps
    activations = graph.forward(x)
    xt = torch.as_tensor(np.asarray(x, dtype=np.float64)).reshape(len(x), *snn.input_shape)
    chunks = torch.split(xt, CALIBRATION_CHUNK)
    last_use = _last_uses(snn.layers)

    def counts_and_trains(i, layer, trains):
        skips = [trains[k.source] for k in layer.skips]
        out = [float_layer_trains(layer, inp, [s[c] for s in skips])
               for c, inp in enumerate(trains[i - 1])]
        return torch.cat([t.sum(dim=0).reshape(t.shape[1], -1) for t in out]).numpy(), out

    for _ in range(BIAS_CALIBRATION_ROUNDS):
        trains = {-1: [c.expand(T, *c.shape) for c in chunks]}  # by layer index, -1 the input
        layers = list(snn.layers)
        for i, layer in enumerate(layers):
            if layer.spiking:
                counts, _ = counts_and_trains(i, layer, trains)
                error = activations[i].reshape(len(x), -1) - counts / T * layer.threshold
                if layer.kind == "conv":
                    error = error.reshape(len(x), layer.out_shape[0], -1).mean(axis=(0, 2))
                else:
                    error = error.mean(axis=0)
                error = error.reshape(np.shape(layer.bias))
                layer = layers[i] = dataclasses.replace(layer, bias=layer.bias + error,
                                                        shift=layer.shift + error)
                log.info("layer %s: bias calibration, mean |correction| %.4g (V_th %.4g)",
                         layer.name, float(np.abs(error).mean()), layer.threshold)
            if i + 1 < len(layers):
                trains[i] = counts_and_trains(i, layer, trains)[1]
            for j in [j for j in trains if last_use.get(j, j + 1) <= i]:
                del trains[j]  # no later layer reads these spikes
        snn = dataclasses.replace(snn, layers=tuple(layers))
    return snn


def _last_uses(layers) -> dict[int, int]:
    """For each layer index (-1: the input), the last layer that reads its output."""
    last = {}
    for t, layer in enumerate(layers):
        last[t - 1] = t
        for k in layer.skips:
            last[k.source] = max(last.get(k.source, t), t)
    return last
