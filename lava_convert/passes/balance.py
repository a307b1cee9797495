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
from contextlib import contextmanager

import numpy as np

from ..config import ConversionConfig
from ..errors import CalibrationError, ConfigError
from ..ir import AnnGraph, SnnNetwork, SpikingLayer
from ..sim.ann import forward
from .calibration_data import check_calibration

log = logging.getLogger(__name__)


#: Histogram resolution of percentile balancing: the value is exact to max / HIST_BINS.
HIST_BINS = 65536
#: Most bytes of activations :func:`shared_activations` keeps.
SHARED_ACTIVATIONS_BYTES = 2**30
_shared: dict = {}


@contextmanager
def shared_activations(graph: AnnGraph, x: np.ndarray):
    """Within this block the statistics of ``graph`` on ``x`` (every threshold rule's)
    reuse one ANN forward pass per batch, kept while they fit ``SHARED_ACTIVATIONS_BYTES``,
    and each histogram is filled once (``balancing="auto"`` compares several rules on the
    same data)."""
    key = (id(graph), id(x))
    _shared[key] = {"activations": {}, "statistics": {}}  # (lo, hi) -> activations
    try:
        yield
    finally:
        _shared.pop(key, None)


def _forward(graph: AnnGraph, x: np.ndarray, lo: int, batch_size: int) -> list[np.ndarray]:
    """``forward(graph, x[lo:lo + batch_size])``, from :func:`shared_activations` if kept."""
    shared = _shared.get((id(graph), id(x)))
    if shared is None:
        return forward(graph, x[lo:lo + batch_size])
    cache, key = shared["activations"], (lo, min(lo + batch_size, len(x)))
    if key not in cache:  # by the samples: batch sizes past len(x) share a pass
        acts = forward(graph, x[lo:lo + batch_size])
        kept = sum(a.nbytes for batch in cache.values() for a in batch)
        if kept + sum(a.nbytes for a in acts) > SHARED_ACTIVATIONS_BYTES:
            return acts
        cache[key] = acts
    return cache[key]


def _statistic(graph: AnnGraph, x: np.ndarray, key: tuple, compute):
    """``compute()``, computed once per ``key`` within :func:`shared_activations`."""
    shared = _shared.get((id(graph), id(x)))
    if shared is None:
        return compute()
    if key not in shared["statistics"]:
        shared["statistics"][key] = compute()
    return shared["statistics"][key]


def activation_statistics(graph: AnnGraph, x: np.ndarray, percentile: float | None = None,
                          batch_size: int = 2048) -> list[tuple[float, float | None]]:
    """``(max, percentile)`` of every layer's activations, in batches (memory-bounded).

    The maximum streams; the percentile takes a second pass that fills a
    ``HIST_BINS``-bin histogram over ``[0, max]`` per layer and returns the
    upper edge of the bin holding the requested rank (never below the true
    percentile, at most ``max / HIST_BINS`` above it). The last layer's entry is
    the largest logit.
    """
    maxima = _statistic(graph, x, ("max", batch_size),
                        lambda: _layer_maxima(graph, x, batch_size))
    if percentile is None:
        return [(float(m), None) for m in maxima]
    hists, total = _statistic(graph, x, ("histogram", batch_size),
                              lambda: _layer_histograms(graph, x, maxima, batch_size))
    result = []
    for i in range(len(maxima)):
        top = max(maxima[i], 0.0) or 1.0
        rank = np.searchsorted(np.cumsum(hists[i]), percentile / 100.0 * total[i])
        result.append((float(maxima[i]), float(min(rank + 1, HIST_BINS)) * top / HIST_BINS))
    return result


def _layer_maxima(graph: AnnGraph, x: np.ndarray, batch_size: int) -> np.ndarray:
    maxima = np.full(len(graph.layers), -np.inf)
    for lo in range(0, len(x), batch_size):
        for i, a in enumerate(_forward(graph, x, lo, batch_size)):
            maxima[i] = max(maxima[i], float(a.max()))
    return maxima


def _layer_histograms(graph: AnnGraph, x: np.ndarray, maxima: np.ndarray,
                      batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per layer, a ``HIST_BINS``-bin histogram of its activations over ``[0, max]``, and
    how many activations it counts."""
    n = len(graph.layers)
    hists = np.zeros((n, HIST_BINS), dtype=np.int64)
    total = np.zeros(n, dtype=np.int64)
    for lo in range(0, len(x), batch_size):
        for i, a in enumerate(_forward(graph, x, lo, batch_size)):
            top = max(maxima[i], 0.0) or 1.0
            idx = np.clip((a.ravel() / top * HIST_BINS).astype(np.int64), 0, HIST_BINS - 1)
            hists[i] += np.bincount(idx, minlength=HIST_BINS)
            total[i] += a.size
    return hists, total


#: Histogram resolution per channel of per-channel percentile balancing.
CHANNEL_BINS = 2048
#: Smallest per-channel threshold, as a share of the layer's largest (4 bits of weight).
CHANNEL_RATIO_MIN = 1 / 16


def channel_statistics(graph: AnnGraph, x: np.ndarray, layers: list[int],
                       percentile: float | None = None,
                       batch_size: int = 1024) -> dict[int, np.ndarray]:
    """Per output channel of the layers ``layers`` (per neuron of a dense layer): the
    largest activation, or (with ``percentile``) that percentile of the channel's
    activations (upper edge of a ``CHANNEL_BINS``-bin histogram bin over
    ``[0, channel max]``)."""
    key = (tuple(layers), batch_size)
    tops = _statistic(graph, x, ("channel max", *key),
                      lambda: _channel_maxima(graph, x, layers, batch_size))
    if percentile is None:
        return tops
    hists, count = _statistic(graph, x, ("channel histogram", *key),
                              lambda: _channel_histograms(graph, x, tops, batch_size))
    out = {}
    for i in layers:
        rank = np.array([np.searchsorted(np.cumsum(h), percentile / 100.0 * count[i])
                         for h in hists[i]])
        # a channel that never activates has no percentile: 0, as its largest activation
        out[i] = np.where(tops[i] > 0, np.minimum(rank + 1, CHANNEL_BINS) * tops[i]
                          / CHANNEL_BINS, 0.0)
    return out


def _channel_maxima(graph: AnnGraph, x: np.ndarray, layers: list[int],
                    batch_size: int) -> dict[int, np.ndarray]:
    tops: dict[int, np.ndarray] = {}
    for lo in range(0, len(x), batch_size):
        acts = _forward(graph, x, lo, batch_size)
        for i in layers:
            a = acts[i].reshape(len(acts[i]), graph.layers[i].out_shape[0], -1)
            m = a.max(axis=(0, 2))
            tops[i] = m if i not in tops else np.maximum(tops[i], m)
    return tops


def _channel_histograms(graph: AnnGraph, x: np.ndarray, tops: dict[int, np.ndarray],
                        batch_size: int) -> tuple[dict[int, np.ndarray], dict[int, int]]:
    """Per layer of ``tops`` and channel, a ``CHANNEL_BINS``-bin histogram of its
    activations over ``[0, channel max]``, and how many activations each counts."""
    hists = {i: np.zeros((len(top), CHANNEL_BINS), dtype=np.int64) for i, top in tops.items()}
    count = dict.fromkeys(tops, 0)
    for lo in range(0, len(x), batch_size):
        acts = _forward(graph, x, lo, batch_size)
        for i in tops:
            a = acts[i].reshape(len(acts[i]), len(tops[i]), -1).transpose(1, 0, 2)
            a = a.reshape(len(tops[i]), -1)
            top = np.where(tops[i] > 0, tops[i], 1.0)[:, None]
            idx = np.clip((a / top * CHANNEL_BINS).astype(np.int64), 0, CHANNEL_BINS - 1)
            # one bincount for all channels: channel c's bins start at c * CHANNEL_BINS
            offsets = np.arange(len(idx), dtype=np.int64)[:, None] * CHANNEL_BINS
            hists[i] += np.bincount((idx + offsets).ravel(), minlength=len(idx) * CHANNEL_BINS
                                    ).reshape(len(idx), CHANNEL_BINS)
            count[i] += a.shape[1]
    return hists, count


def layer_thresholds(
    graph: AnnGraph, x: np.ndarray, config: ConversionConfig
) -> list[tuple[float | np.ndarray, str]]:
    """``(V_th, source)`` for every hidden layer, from clips or calibration activations;
    with ``config.channel_thresholds`` a data-driven layer's ``V_th`` is one value per
    output channel (conv) or neuron (dense)."""
    needs_data = config.balancing in ("max", "percentile") or any(
        l.activation not in ("clip", "qcfs") for l in graph.layers[:-1])
    stats = activation_statistics(
        graph, x, config.percentile if config.balancing == "percentile" else None
    ) if needs_data else [(0.0, None)] * len(graph.layers)
    per_channel = {}
    if config.channel_thresholds:
        chosen = [i for i, l in enumerate(graph.layers[:-1]) if _data_driven(l, config)]
        if chosen:
            pct = config.percentile if config.balancing == "percentile" else None
            per_channel = channel_statistics(graph, x, chosen, pct)
    result = []
    for i, (layer, (top, pct)) in enumerate(zip(graph.layers[:-1], stats[:-1])):
        mode = config.balancing
        if i in per_channel:
            theta = per_channel[i]
            silent = theta <= 0
            if np.all(silent):
                raise CalibrationError(
                    f"layer '{layer.name}' never activates on the calibration data: its "
                    "thresholds cannot be set; use more or more varied calibration samples")
            # a channel that never activates keeps the layer's largest threshold (silent);
            # none goes below CHANNEL_RATIO_MIN of it: its inputs are scaled up by the
            # ratio, and in Loihi's integers that costs the rest of the layer resolution
            theta = np.where(silent, theta.max(), theta)
            theta = np.maximum(theta, theta.max() * CHANNEL_RATIO_MIN)
            label = "max" if mode in ("auto", "max") else f"p{config.percentile:g}"
            result.append((theta, f"{label} per channel"))
            continue
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


def _data_driven(layer, config: ConversionConfig) -> bool:
    """Whether the layer's threshold comes from calibration data (not a trained clip)."""
    if config.balancing == "clip":
        return False
    return config.balancing != "auto" or layer.activation not in ("clip", "qcfs")


def _scale_inputs(synapse, amplitude, source_shape) -> np.ndarray:
    """The synapse's weights times what one spike of each input channel carries
    (a scalar, or one value per channel of a conv source of shape ``source_shape``)."""
    weight = synapse.weight
    if np.ndim(amplitude) == 0:
        return weight * amplitude
    amplitude = np.asarray(amplitude, dtype=np.float64)
    if synapse.kind == "dense":  # the source is read flattened in C,H,W order
        per_input = np.repeat(amplitude, int(np.prod(source_shape[1:])))
        return weight * per_input[None, :]
    c_out, c_in_group = weight.shape[:2]
    groups = synapse.geometry.groups
    group_of_out = np.arange(c_out) // (c_out // groups)
    index = group_of_out[:, None] * c_in_group + np.arange(c_in_group)[None, :]
    return weight * amplitude[index][:, :, None, None]


def _scale_outputs(weight: np.ndarray, factor) -> np.ndarray:
    """``weight`` with output channel (or row) ``c`` multiplied by ``factor[c]``."""
    if np.ndim(factor) == 0:
        return weight * factor
    return weight * np.asarray(factor).reshape(-1, *([1] * (weight.ndim - 1)))


def _scale_bias(bias: np.ndarray, factor) -> np.ndarray:
    if np.ndim(factor) == 0:
        return bias * factor
    factor = np.asarray(factor)
    bias = np.asarray(bias, dtype=np.float64)
    return bias * (factor if bias.ndim <= 1 else factor[:, None, None])


def balance(graph: AnnGraph, x: np.ndarray, config: ConversionConfig,
            thresholds: list | None = None) -> SnnNetwork:
    """Threshold balancing, reset rule, shift and read-out: AnnGraph -> SnnNetwork.

    Refuses (``CalibrationError``) calibration data that does not fit the graph, a
    layer that never activates on it (no threshold can be set), and
    ``readout="spikes"`` without a positive logit; ``ConfigError`` for
    ``balancing="clip"`` on a layer without a clip."""
    x = check_calibration(x, graph.input_shape)
    # ``thresholds``: :func:`layer_thresholds` for ``config``, when the caller has them
    thresholds = list(thresholds if thresholds is not None
                      else layer_thresholds(graph, x, config))
    if config.readout == "spikes":
        top_logit = activation_statistics(graph, x)[-1][0]
        if not top_logit > 0:
            raise CalibrationError("readout='spikes' needs a positive logit on calibration "
                                   "data to set the output threshold; use readout='potential'")
        thresholds.append((top_logit, "max logit"))
    T = config.timesteps
    layers, previous = [], 1.0
    shapes = [graph.input_shape] + [l.out_shape for l in graph.layers]
    for i, layer in enumerate(graph.layers):
        weight = _scale_inputs(layer.synapse, previous, shapes[i])
        # a shortcut carries its source's spikes, of amplitude V_th of the source
        skips = [(k, _scale_inputs(k, thresholds[k.source][0], shapes[k.source + 1]))
                 for k in layer.skips]
        if i < len(thresholds):
            theta, source = thresholds[i]
            # per-channel thresholds theta_c: channel c's inputs are scaled by top / theta_c,
            # so that the layer's one threshold top decides as theta_c would
            top = float(np.max(theta))
            factor = top / np.asarray(theta) if np.ndim(theta) else 1.0
            shift = top / (2 * T) if config.shift == "bias" else 0.0
            v0 = top / 2 if config.shift == "v0" else 0.0
            layers.append(SpikingLayer(
                name=layer.name,
                synapse=dataclasses.replace(layer.synapse, weight=_scale_outputs(weight, factor)),
                bias=_scale_bias(layer.bias, factor) + shift, threshold=top,
                spiking=True, reset=config.reset, shift=shift, v0=v0, threshold_source=source,
                out_shape=layer.out_shape,
                skips=tuple(dataclasses.replace(k, weight=_scale_outputs(w, factor))
                            for k, w in skips),
                channel_scale=np.asarray(theta) / top if np.ndim(theta) else None,
            ))
            log.info("layer %s: V_th=%.4g (%s), shift %.4g, v0 %.4g", layer.name, top, source,
                     shift, v0)
            previous = theta
        else:
            layers.append(SpikingLayer(
                name=layer.name, synapse=dataclasses.replace(layer.synapse, weight=weight),
                bias=layer.bias.copy(), threshold=0.0, spiking=False, reset="soft",
                threshold_source="readout", out_shape=layer.out_shape,
                skips=tuple(dataclasses.replace(k, weight=w) for k, w in skips)))
    return SnnNetwork(input_shape=graph.input_shape, layers=tuple(layers), timesteps=T,
                      input_range=(float(x.min()), float(x.max())))
