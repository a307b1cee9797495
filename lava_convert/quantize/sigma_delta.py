"""Quantization for the sigma-delta target (``target="sdnn"``): the ANN's layers as
NetX ``SDNN`` layers that stock ``netx.hdf5.Network`` builds from Lava's ``Delta`` and
``SigmaDelta`` (ReLU) models.

A sigma-delta layer holds ``sigma``, the sum of every message it has received through
its synapse, and sends the change of ``max(sigma + bias << 12, 0) >> 6`` (with a delta
threshold of 0, every change: :mod:`lava_convert.sim.sigma_delta`). On a sample held
still, a layer's messages add up, one step after its input's have, to its quantized
activation, so the network computes its ANN in integers after one step per layer.

Scales. Channel ``c`` of layer ``l`` sends ``s_l[c]`` message units per real unit of
its activation; the Delta input sends ``x_int << 6``, so ``s_0 = 64 * input_scale``. Then
the file's integer weights are ``W[c, j] = round(64 * s_l[c] / s_(l-1)[j] * w[c, j])``
and its biases ``round(s_l[c] * b[c] / 64)``: one scale per channel costs nothing
(the next layer's weights absorb it), and gives a channel of small weights or small
activations the resolution of the others. ``s_l[c]`` is the largest scale that keeps

* the weights within 8 signed bits (127: NetX hands conv weights to Lava unchanged, and
  dense ones of at most 127 stay exact through ``optimize_weight_bits``),
* the messages within stock's 16 bits: the layer's activation range on the calibration
  data (``balancing``: its maximum or a percentile) times
  ``headroom`` at most ``2**15 - 1``,
* the sums within the 24-bit state: the largest pre-activation magnitude times
  ``headroom``, in state units, within the 24-bit state (``V_MAX``);

the output layer takes the smallest of its channels' (the classes compare their sums);
``FixedLayer.scale`` is its ``s / 64`` (the smallest for a hidden layer).

Clips. A sigma-delta neuron computes ReLU only, so a trained clip (``ThresholdReLU``,
``QCFS``, ``ReLU6``) becomes two populations of ReLUs (:func:`split_clips`):
``clip(z, 0, t) = relu(z) - relu(z - t)``, the layer's channels twice (biases ``b`` and
``b - t``) and the next layer's weights ``[W, -W]`` over them: exact, for twice the
neurons and synapses there. A QCFS staircase is not kept (the layers are named in a
warning): the network computes the ANN with its clips but without the steps. The output
layer is a ``SigmaDelta`` too
(Lava's ``Sigma`` takes no bias): its bias is raised by the same offset for every class,
just enough that on the calibration data the largest logit of every sample stays above
0 (times ``headroom``), so the ReLU leaves the winner's margin intact.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np
import torch

from ..config import ConversionConfig
from ..errors import UnsupportedModuleError
from ..hw.loihi import (
    CONV_WEIGHT_MAX,
    SDNN_BIAS_MAX,
    SDNN_MESSAGE_BITS,
    SDNN_SPIKE_EXP,
    SDNN_STATE_EXP,
    V_MAX,
    payload_max,
)
from ..ir import AnnGraph, FixedLayer, FixedNetwork, LayerQuantization
from ..passes.calibration_data import spread
from ..sim.ann import logits
from ..sim.reference import simulate_fixed
from ..sim.synapse import layer_current, prepare_weight
from .scale import weight_bits

log = logging.getLogger(__name__)

#: Largest message magnitude (stock's 16-bit messages, signed).
MESSAGE_LIMIT = 2 ** (SDNN_MESSAGE_BITS - 1) - 1
#: Largest pre-activation magnitude in message units (the 24-bit state holds it shifted
#: left by the state exponent).
PRE_ACTIVATION_LIMIT = V_MAX >> SDNN_STATE_EXP
#: Input widths ``input_bits="auto"`` tries, and the calibration samples it measures on.
INPUT_BITS = (4, 6, 8, 10)
CHOICE_SAMPLES = 256
#: Message units per real unit in a weight or bias (``2**SDNN_SPIKE_EXP``).
UNIT = 1 << SDNN_SPIKE_EXP


def activation_range(values: np.ndarray, config: ConversionConfig) -> float:
    """A layer's activation range on the calibration data under ``config.balancing``: its
    maximum, or its ``config.percentile`` percentile (its maximum where that is 0)."""
    top = float(np.percentile(values, config.percentile)) if config.balancing == \
        "percentile" else float(values.max())
    return top if top > 0 else float(values.max())


def _per_channel(values: np.ndarray, statistic) -> np.ndarray:
    """``statistic`` of ``values`` ``(samples, C, ...)`` per channel (axis 1)."""
    channels = values.reshape(len(values), values.shape[1], -1)
    return np.array([statistic(channels[:, c]) for c in range(values.shape[1])],
                    dtype=np.float64)


def _nonzero(values: np.ndarray) -> np.ndarray:
    """``values`` with zeros (a silent channel, a zero row) replaced by 1e-12: no limit."""
    return np.where(values > 0, values, 1e-12)


def _input_scales(scale, shape: tuple[int, ...], kind: str) -> np.ndarray:
    """The message scale of each input of a weight array of ``shape``: the previous layer's
    one scale, or its scale per channel along the weights' input axis (a dense layer
    after a conv one reads its channels' positions in C,H,W order)."""
    scale = np.asarray(scale, dtype=np.float64)
    if scale.ndim == 0:
        return scale
    if kind == "conv":
        return scale.reshape(1, -1, 1, 1)
    return np.repeat(scale, shape[1] // len(scale)).reshape(1, -1)


@dataclass(frozen=True)
class LayerStatistics:
    """What the calibration data says of one layer, whatever the input width: its
    activation range and largest pre-activation magnitude per output channel, and the
    offset added to a readout's bias (0 for hidden layers)."""

    top: np.ndarray
    reach: np.ndarray
    offset: float


def split_clips(graph: AnnGraph) -> AnnGraph:
    """``graph`` with every clipped hidden layer as two ReLU populations: its channels
    twice, biases ``b`` and ``b - t`` (``relu(z)`` and ``relu(z - t)``), and the next
    layer reading them with weights ``[W, -W]``, so that it sums ``clip(z, 0, t)``
    (a QCFS layer keeps its clip, not its steps). A clipped layer read by a grouped
    convolution is refused, naming both."""
    layers, split = [], False
    for i, layer in enumerate(graph.layers):
        synapse = layer.synapse
        if split:  # this layer reads relu(z) and relu(z - t): weights [W, -W]
            w = np.asarray(synapse.weight, dtype=np.float64)
            if synapse.kind == "conv":
                if synapse.geometry.groups != 1:
                    raise UnsupportedModuleError(
                        f"target 'sdnn': layer {layer.name} is a grouped convolution after "
                        f"the clipped layer {layers[-1].name}, whose clip sigma-delta neurons "
                        "express as two populations a grouped convolution cannot read; "
                        "replace the clip by a ReLU or use the default target")
                w = np.concatenate([w, -w], axis=1)
            else:
                channels = layers[-1].out_shape[0] // 2  # before the split
                w = w.reshape(len(w), channels, -1)
                w = np.concatenate([w, -w], axis=1).reshape(len(w), -1)
            synapse = dataclasses.replace(synapse, weight=w)
            layer = dataclasses.replace(layer, synapse=synapse,
                                        in_shape=tuple(layers[-1].out_shape))
        split = i < len(graph.layers) - 1 and layer.activation in ("clip", "qcfs")
        if split:
            bias = np.asarray(layer.bias, dtype=np.float64)
            out = tuple(layer.out_shape)
            layer = dataclasses.replace(
                layer, synapse=dataclasses.replace(synapse, weight=np.concatenate(
                    [np.asarray(synapse.weight, dtype=np.float64)] * 2)),
                bias=np.concatenate([bias, bias - float(layer.clip)]), activation="relu",
                clip=None, levels=None, out_shape=(2 * out[0], *out[1:]))
        layers.append(layer)
    return dataclasses.replace(graph, layers=tuple(layers))


def layer_statistics(graph: AnnGraph, x: np.ndarray, config: ConversionConfig
                     ) -> list[LayerStatistics]:
    """:class:`LayerStatistics` of every layer of ``graph`` with plain ReLUs, on ``x``."""
    stats, h = [], torch.as_tensor(x)
    for i, layer in enumerate(graph.layers):
        last = i == len(graph.layers) - 1
        weight = prepare_weight(layer.synapse, tuple(h.shape[1:]), torch.float64, "cpu")
        z = layer_current(layer, h, (), weight).numpy()
        offset = 0.0
        if last:  # raise every class alike so that each sample's winner stays above 0
            winners = z.reshape(len(z), -1).max(axis=1)
            offset = max(0.0, -float(winners.min())) * config.headroom
            z = z + offset
        act = np.maximum(z, 0.0)
        stats.append(LayerStatistics(
            top=_per_channel(act, lambda v: activation_range(v, config)),
            reach=_per_channel(np.abs(z), np.max), offset=offset))
        h = torch.as_tensor(act)
    return stats


def quantize_sigma_delta(graph: AnnGraph, x: np.ndarray, config: ConversionConfig
                         ) -> FixedNetwork:
    """``graph`` as a sigma-delta :class:`FixedNetwork` (module docstring), its scales
    set on the calibration samples ``x``; with ``input_bits="auto"`` the input width of
    :data:`INPUT_BITS` whose readout after one step per layer comes closest (mean
    squared error) to the ANN's on up to ``CHOICE_SAMPLES`` of them. A narrower input
    leaves the first layer more of the message range for finer weights; a wider one
    resolves the input more finely."""
    steps = [layer.activation_name or layer.name for layer in graph.layers
             if layer.activation == "qcfs"]
    if steps:
        log.warning("target 'sdnn': the QCFS staircases of %s are not kept (their clips are): "
                    "the network computes their activations unquantized", ", ".join(steps))
    graph = split_clips(graph)
    x = np.asarray(x, dtype=np.float64).reshape(len(x), *graph.input_shape)
    stats = layer_statistics(graph, x, config)
    signed, amplitude = bool(x.min() < 0), float(np.abs(x).max()) or 1.0
    if config.input_bits != "auto":
        return _quantize(graph, stats, config, int(config.input_bits), signed, amplitude)
    samples = x[spread(len(x), CHOICE_SAMPLES)]
    # what the readout computes in real numbers: the logits of the split graph (ReLUs
    # only) with the offset, through ReLU
    target = np.maximum(logits(graph, samples) + stats[-1].offset, 0.0)
    target = target.reshape(len(samples), -1)
    best, best_error = None, np.inf
    for bits in INPUT_BITS:
        net = _quantize(graph, stats, config, bits, signed, amplitude)
        run = simulate_fixed(net, samples, len(net.layers))  # one step per synapse, and one
        error = float(np.mean((run.output - target) ** 2))
        log.info("target 'sdnn': %d-bit input: mean squared readout error %.4g", bits, error)
        if error < best_error:
            best, best_error = net, error
    return best


def _quantize(graph: AnnGraph, stats: list[LayerStatistics], config: ConversionConfig,
              bits: int, signed: bool, amplitude: float) -> FixedNetwork:
    """:func:`quantize_sigma_delta` with a ``bits``-wide input whose largest magnitude
    is ``amplitude``."""
    input_scale = payload_max(bits, signed) / amplitude
    shape = tuple(graph.input_shape)
    layers = [FixedLayer(name="input", kind="input", shape=shape, synapse=None, vth=0,
                         bias=np.zeros(shape, np.int64), neuron="sdnn", scale=input_scale)]
    records = [LayerQuantization(name="input", scale=input_scale,
                                 scale_limited_by=f"{bits}-bit input", vth=0)]
    # message units per real unit of the layer before: one number, or one per channel
    scale = np.float64(UNIT * input_scale)
    for i, (layer, stat) in enumerate(zip(graph.layers, stats)):
        last = i == len(graph.layers) - 1
        bias = np.asarray(layer.bias, dtype=np.float64) + stat.offset
        real = np.asarray(layer.synapse.weight, dtype=np.float64)
        # each output channel's weights in units of its inputs' message scale
        per_input = real / _input_scales(scale, real.shape, layer.synapse.kind)
        axes = tuple(range(1, real.ndim))
        limits = {"weights": CONV_WEIGHT_MAX / (UNIT * _nonzero(np.abs(per_input).max(
                      axis=axes))),
                  "messages": MESSAGE_LIMIT / (config.headroom * _nonzero(stat.top)),
                  "state": PRE_ACTIVATION_LIMIT / (config.headroom * _nonzero(stat.reach))}
        s = np.min(np.stack(list(limits.values())), axis=0)  # one scale per output channel
        if last:  # one scale for every class: the argmax compares them
            s = np.full_like(s, s.min())
        limited_by = max(limits, key=lambda k: int(np.sum(limits[k] == s)))
        w_int = np.clip(np.rint(UNIT * s.reshape(-1, *[1] * len(axes)) * per_input),
                        -CONV_WEIGHT_MAX, CONV_WEIGHT_MAX).astype(np.int64)
        b_int = np.rint(s * bias / UNIT)
        warnings = []
        if np.abs(b_int).max(initial=0) > SDNN_BIAS_MAX:
            warnings.append(f"layer {layer.name}: biases up to {np.abs(b_int).max():.0f} "
                            f"clipped to the sigma-delta limit {SDNN_BIAS_MAX}")
            log.warning("%s", warnings[-1])
        b_int = np.clip(b_int, -SDNN_BIAS_MAX, SDNN_BIAS_MAX).astype(np.int64)
        underflow = float(np.mean(w_int[real != 0] == 0)) if np.any(real) else 0.0
        layer_scale = float(s.min()) / UNIT  # the readout's (all channels alike)
        layers.append(FixedLayer(
            name=layer.name, kind=layer.synapse.kind, shape=tuple(layer.out_shape),
            synapse=dataclasses.replace(layer.synapse, weight=w_int, source=i), bias=b_int,
            vth=0, neuron="sdnn", scale=layer_scale))
        records.append(LayerQuantization(
            name=layer.name, scale=layer_scale, scale_limited_by=limited_by, vth=0,
            threshold=float(np.max(stat.top)), threshold_source=config.balancing,
            weight_bits=weight_bits(w_int), weights_underflow=underflow,
            max_current=float(np.max(stat.reach * s)), shift=stat.offset,
            warnings=tuple(warnings)))
        scale = s
    return FixedNetwork(input_shape=shape, input_scale=input_scale, input_bits=bits,
                        input_signed=signed, layers=tuple(layers), timesteps=config.timesteps,
                        quantization=tuple(records))
