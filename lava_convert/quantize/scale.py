"""Quantize a float SNN to Loihi's fixed-point ranges (what NetX can carry).

Ranges (Lava 0.10 / NetX):

* dense weights: integers in ``[-WEIGHT_MAX, WEIGHT_MAX]`` per input unit. NetX re-expresses
  them as an 8-bit mantissa with a shared exponent (``optimize_weight_bits``)
  and the synapse delivers exactly ``sum(w * payload)``;
* threshold ``vth``: unsigned 17 bit (``VTH_MAX``), compared as ``vth << STATE_SHIFT``;
* bias: 13-bit signed mantissa with NetX's fixed exponent 6 (one bias unit
  equals one unit of synaptic current);
* state: ``u`` wraps and ``v`` saturates at 24 bits, i.e. ``STATE_LIMIT`` current units.

Per layer one scale ``s`` (integer current units per real unit) maps weights
(of the main synapse and of residual shortcuts into the layer), bias and
threshold together, so the neuron's decisions are unchanged up to rounding.
``s`` is the largest value that keeps every quantity in range::

    s = min( WEIGHT_MAX / max|w|,               weights (CONV_WEIGHT_MAX for conv; shortcuts too)
             BIAS_MANT_MAX / max|b|,            bias mantissa
             STATE_LIMIT / (V_th + I_max) )     v and u never leave 24 bits

``I_max`` is the largest current magnitude the layer can receive in one step:
exact for spike inputs (sum of positive or negative weights, shortcuts
included, plus bias); for the analog first layer, the largest current on
calibration data times ``config.headroom`` (capped by the exact bound for
inputs in the calibrated range). The readout layer gets the largest threshold
that still cannot be reached, so it integrates without ever spiking or
saturating in a step.
"""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np
import torch

from ..config import ConversionConfig
from ..errors import QuantizationError
from ..hw.loihi import (
    BIAS_EXP,
    BIAS_EXP_MAX,
    BIAS_MANT_MAX,
    DECAY_UNITY,
    STATE_LIMIT,
    STATE_SHIFT,
    VTH_MAX,
    fixed_decays,
    payload_max,
    weight_limit,
)
from ..ir import FixedLayer, FixedNetwork, LayerQuantization, SnnNetwork, SpikingLayer
from ..sim.kernels import box_bound
from ..sim.synapse import current
from ..targets import target_rules

log = logging.getLogger(__name__)

#: What to do about each range that can limit a layer's scale.
_LIMITER_ADVICE = {
    "bias": "NetX's fixed bias exponent ties the bias unit to the weight unit, so the "
            "largest bias sets the scale; retrain with smaller biases (weight decay on them, "
            "or no bias before a BatchNorm) to free it",
    "state headroom": "the threshold plus the largest current must fit the 24-bit state; a "
                      "narrower weight range (weight decay) or a lower input range frees it",
    "weights": "the largest weight sets the scale; weight decay narrows the weight range",
}
#: Warn when more than this share of a layer's non-zero weights round to 0.
UNDERFLOW_WARN = 0.25
#: Graded input widths ``input_bits="auto"`` chooses from (:func:`choose_input_bits`).
AUTO_INPUT_BITS = tuple(range(4, 13))
#: Samples :func:`choose_input_bits` compares currents on: at most the first 1024, fewer
#: when the first layer's multiplications per sample times the samples would pass
#: ``INPUT_BITS_PRODUCTS`` (a CIFAR-sized first conv: 32), never below 32.
INPUT_BITS_SAMPLES, INPUT_BITS_MIN_SAMPLES, INPUT_BITS_PRODUCTS = 1024, 32, 2**25


def _observed_current(layer: SpikingLayer, x: np.ndarray) -> float:
    """Largest |current| of the first layer for calibration samples ``x``."""
    with torch.no_grad():
        a = current(layer.synapse, torch.as_tensor(x), bias=torch.as_tensor(layer.bias))
    return float(a.abs().max())


def _first_layer_current(layer: SpikingLayer, x: np.ndarray, headroom: float) -> float:
    """``I_max`` of the analog first layer: its largest current on ``x`` times
    ``headroom``, capped by the exact bound for inputs in the range ``x`` spans (a
    decaying current: :func:`_decayed`)."""
    observed = max(_observed_current(layer, x[lo:lo + 1024]) for lo in range(0, len(x), 1024))
    if layer.kind == "dense":  # per input feature
        flat = x.reshape(len(x), -1)
        lo_in, hi_in = flat.min(axis=0), flat.max(axis=0)
    else:  # one range for every position, zero padding included
        lo_in, hi_in = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    bound = box_bound(layer.synapse.weight, layer.bias, lo_in, hi_in)
    return _decayed(layer, min(bound, observed * headroom))


def _decayed(layer: SpikingLayer, i_max: float) -> float:
    """``i_max`` for a layer whose current decays (``du < 1``): it sums up to ``1/du``
    steps of input."""
    return i_max / max(layer.du, 1.0 / DECAY_UNITY) if layer.du < 1.0 else i_max


def _input_scale(snn: SnnNetwork, input_bits: int) -> float:
    """Payload units per real input unit: the input range on the largest payload."""
    lo_x, hi_x = snn.input_range
    amplitude = max(abs(lo_x), abs(hi_x)) or 1.0
    return payload_max(input_bits, lo_x < 0) / amplitude


def choose_input_bits(snn: SnnNetwork, x: np.ndarray, config: ConversionConfig,
                      i_max: float | None = None) -> tuple[int, dict[int, float]]:
    """The graded input width for ``input_bits="auto"``, and the error of each candidate.

    The first layer's current is ``W x`` with ``x`` an integer payload and ``W`` integer
    weights, and both share its 24-bit state: each bit more for the input is one bit
    less for the weights (their scale is set by the largest current). For each width of
    :data:`AUTO_INPUT_BITS` the first layer is quantized as :func:`quantize` would, and
    its current on ``x`` (the first :data:`INPUT_BITS_SAMPLES`, fewer for a large first
    layer) compared with the real-valued one; the width
    with the smallest mean squared error wins (ties: the wider). ``i_max``: the first
    layer's current limit as :func:`quantize` takes it (default: from ``x``)."""
    layer = snn.layers[0]
    x = np.asarray(x, dtype=np.float64).reshape(len(x), *snn.input_shape)
    if i_max is None:
        i_max = _first_layer_current(layer, x, config.headroom)
    per_sample = int(np.prod(layer.out_shape)) * int(np.prod(layer.synapse.weight.shape[1:]))
    x = x[:max(INPUT_BITS_MIN_SAMPLES, min(INPUT_BITS_SAMPLES, INPUT_BITS_PRODUCTS // per_sample))]
    signed = snn.input_range[0] < 0
    xt = torch.as_tensor(x)
    with torch.no_grad():
        exact = current(layer.synapse, xt)
    errors = {}
    for bits in AUTO_INPUT_BITS:
        input_scale = _input_scale(snn, bits)
        w_unit = layer.synapse.weight / input_scale
        s, _ = _scale(layer, w_unit, i_max, target_rules(config.target).free_bias_exponent)
        weight = torch.as_tensor(np.rint(w_unit * s))
        top = payload_max(bits, signed)
        payload = torch.clamp(torch.round(xt * input_scale), -top if signed else 0, top)
        with torch.no_grad():  # in torch: the comparison runs on every core
            fixed = current(layer.synapse, payload, weight) / s
            errors[bits] = float(torch.mean((fixed - exact) ** 2))
    least = min(errors.values())
    best = max(b for b, e in errors.items() if e <= least * (1 + 1e-9))  # ties: the wider
    log.info("input_bits='auto': %d bits (first-layer current error %s)", best,
             ", ".join(f"{b}: {e:.3g}" for b, e in errors.items()))
    return best, errors


def weight_bits(weight: np.ndarray) -> int:
    """Bits (sign included) the largest integer weight of a layer uses."""
    return int(np.ceil(np.log2(np.abs(weight).max() + 1))) + 1


def _scale(layer: SpikingLayer, w_unit: np.ndarray, i_max: float,
           free_bias: bool) -> tuple[float, str]:
    """The largest scale every range allows, and which range set it. With ``free_bias``
    the bias mantissa does not limit it (a larger bias exponent takes the bias instead)."""
    candidates = {"weights": min([weight_limit(layer.kind) / float(np.abs(w_unit).max())] + [
        weight_limit(k.kind) / float(np.abs(k.weight).max()) for k in layer.skips
        if np.any(k.weight)])}
    if np.any(layer.bias != 0):
        top = BIAS_MANT_MAX << (BIAS_EXP_MAX - BIAS_EXP) if free_bias else BIAS_MANT_MAX
        candidates["bias"] = top / float(np.abs(layer.bias).max())
    if layer.spiking:
        candidates["state headroom"] = STATE_LIMIT / (layer.threshold + i_max)
    elif i_max > 0:
        candidates["state headroom"] = (STATE_LIMIT // 2) / i_max
    limit = min(candidates, key=candidates.get)
    return candidates[limit], limit


def _rounded(w: np.ndarray, s: float) -> np.ndarray:
    """``rint(w * s)`` as int64 (halves to even, as ``np.rint``), in torch: every core."""
    return torch.round(torch.as_tensor(w, dtype=torch.float64) * s).to(torch.int64).numpy()


def _underflow(w: np.ndarray, weight: np.ndarray) -> float:
    """Share of the non-zero real weights ``w`` whose integer ``weight`` is 0."""
    nonzero = torch.as_tensor(w) != 0
    lost = torch.logical_and(nonzero, torch.as_tensor(weight) == 0)
    return float(lost.sum()) / max(int(nonzero.sum()), 1)


def _bias_exponent(bias_units: np.ndarray) -> int:
    """The smallest bias exponent (>= NetX's 6) whose 13-bit mantissa holds ``bias_units``
    (current units): each step up halves the bias resolution and doubles its range."""
    top = float(np.abs(bias_units).max(initial=0.0))
    extra = 0
    while top / 2**extra > BIAS_MANT_MAX + 0.5 and extra < BIAS_EXP_MAX - BIAS_EXP:
        extra += 1
    return BIAS_EXP + extra


def quantize(snn: SnnNetwork, x_calib: np.ndarray, config: ConversionConfig,
             grid: FixedNetwork | None = None) -> FixedNetwork:
    """Map every layer of ``snn`` to Loihi integers (see module docstring for the rule);
    the result carries one :class:`~lava_convert.ir.LayerQuantization` record per layer.

    With ``grid`` (an earlier quantization of ``snn``, whose weights :func:`on_grid` put
    on its grid) each layer keeps that network's scale and the input its width: only the
    biases change; they are clipped to the 13-bit mantissa. Otherwise the input width is
    ``config.input_bits``, chosen by :func:`choose_input_bits` when that is ``"auto"``.

    Raises:
        QuantizationError: a layer whose weights are all zero or all round to zero, or
            whose threshold does not fit Loihi's 17 bits at its scale.
    """
    x = np.asarray(x_calib, dtype=np.float64).reshape(len(x_calib), *snn.input_shape)
    first_i_max = _first_layer_current(snn.layers[0], x, config.headroom)
    if grid is not None:
        input_bits = grid.input_bits
    elif config.input_bits == "auto":
        input_bits = choose_input_bits(snn, x, config, first_i_max)[0]
    else:
        input_bits = config.input_bits
    signed = snn.input_range[0] < 0
    input_scale = _input_scale(snn, input_bits)

    layers, report = [], []
    for i, layer in enumerate(snn.layers):
        if i == 0:
            w_unit = layer.synapse.weight / input_scale
            i_max = first_i_max
        else:
            w_unit = layer.synapse.weight
            i_max = _decayed(layer, box_bound(w_unit, layer.bias, 0.0, 1.0, layer.skips))
        if not np.any(w_unit != 0):
            raise QuantizationError(
                f"layer '{layer.name}' has only zero weights and cannot be written to NetX: "
                "remove the layer or retrain"
            )
        free_bias = target_rules(config.target).free_bias_exponent
        s, limit = _scale(layer, w_unit, i_max, free_bias)
        if grid is not None:
            s, limit = grid.quantization[i].scale, grid.quantization[i].scale_limited_by
        weight = _rounded(w_unit, s)
        bias_exp = _bias_exponent(layer.bias * s) if free_bias else BIAS_EXP
        bias = np.rint(layer.bias * s / 2 ** (bias_exp - BIAS_EXP)).astype(np.int64)
        if np.abs(bias).max(initial=0) > BIAS_MANT_MAX:
            log.info("layer %s: calibrated bias clipped to the 13-bit mantissa", layer.name)
            bias = np.clip(bias, -BIAS_MANT_MAX, BIAS_MANT_MAX)
        if not np.any(weight):
            raise QuantizationError(
                f"layer '{layer.name}': every weight rounds to 0 in Loihi's integers (scale "
                f"{s:.3g} set by {limit}; largest |weight| {np.abs(w_unit).max():.3g}): its "
                "input would be ignored. The bias or current range dwarfs the weights: retrain "
                "with a smaller bias, or rescale the layer"
            )
        underflow = _underflow(w_unit, weight)
        notes = []
        if underflow > UNDERFLOW_WARN:
            notes.append(f"layer {layer.name}: {100 * underflow:.0f}% of its non-zero weights "
                         f"round to 0 because the scale is limited by {limit}: "
                         f"{_LIMITER_ADVICE[limit]}")
        if layer.spiking:
            vth = int(round(layer.threshold * s))
            if not 1 <= vth <= VTH_MAX:
                raise QuantizationError(
                    f"layer '{layer.name}': threshold {layer.threshold:.3g} becomes {vth} at "
                    f"scale {s:.3g} (set by {limit}), outside Loihi's 1..{VTH_MAX}: the "
                    "threshold is out of proportion to the weights (largest |weight| "
                    f"{np.abs(layer.synapse.weight).max():.3g}). Raise the layer's "
                    "ThresholdReLU/QCFS threshold or use balancing='max'"
                )
        else:
            vth = int(VTH_MAX - math.ceil(i_max * s))
        if vth < 1:
            raise QuantizationError(
                f"layer '{layer.name}': no threshold fits Loihi's 17 bits next to a current of "
                f"{i_max:.3g}; lower the layer's weights or input range"
            )
        used_bits = weight_bits(weight)
        if used_bits < 5:
            notes.append(f"layer {layer.name}: weights use only {used_bits} bits because the "
                         f"scale is limited by {limit}: {_LIMITER_ADVICE[limit]}")
        for note in notes:
            log.warning("%s", note)
        report.append(LayerQuantization(
            name=layer.name, scale=s, scale_limited_by=limit, vth=vth,
            threshold=float(layer.threshold), threshold_source=layer.threshold_source,
            weight_bits=used_bits, weights_underflow=underflow, max_current=i_max * s,
            shift=np.asarray(layer.shift, dtype=float).tolist(),
            v0=np.asarray(layer.v0, dtype=float).tolist(),
            bias_exp=bias_exp,
            warnings=tuple(notes)))
        v0 = np.rint(np.asarray(layer.v0, dtype=np.float64) * s).astype(np.int64) << STATE_SHIFT
        v0 = int(v0) if v0.ndim == 0 else v0.reshape(-1)  # Lava units
        du, dv = fixed_decays(layer.du, layer.dv)
        shape = tuple(layer.out_shape) if layer.kind == "conv" else (len(weight),)
        layers.append(FixedLayer(
            name=layer.name, kind=layer.kind, shape=shape,
            synapse=dataclasses.replace(layer.synapse, weight=weight), bias=bias, vth=vth,
            spiking=layer.spiking, reset=layer.reset, bias_exp=bias_exp, scale=s, v0=v0,
            du=du, dv=dv,
            skips=tuple(dataclasses.replace(k, weight=np.rint(k.weight * s).astype(np.int64))
                        for k in layer.skips)))
    return FixedNetwork(input_shape=snn.input_shape, input_scale=input_scale,
                        input_bits=input_bits, input_signed=signed, layers=tuple(layers),
                        timesteps=snn.timesteps, quantization=tuple(report))


def on_grid(snn: SnnNetwork, net: FixedNetwork) -> SnnNetwork:
    """``snn`` with the weights and thresholds of its quantization ``net`` in real units
    (``w_int / s``, ``vth / s``; the first layer's per input unit), biases unchanged.

    Simulating it in float reproduces the fixed-point network up to the rounding of the
    input and of the biases, so passes that correct biases on it (``calibrate_biases``)
    also correct the systematic error that rounding the weights introduced.
    """
    layers = []
    for i, (layer, fixed) in enumerate(zip(snn.layers, net.layers)):
        unit = fixed.scale / (net.input_scale if i == 0 else 1.0)
        layers.append(dataclasses.replace(
            layer, synapse=dataclasses.replace(layer.synapse, weight=fixed.weight / unit),
            threshold=fixed.vth / fixed.scale if layer.spiking else layer.threshold,
            v0=(fixed.v0 >> STATE_SHIFT) / fixed.scale,
            skips=tuple(dataclasses.replace(k, weight=kq.weight / fixed.scale)
                        for k, kq in zip(layer.skips, fixed.skips))))
    return dataclasses.replace(snn, layers=tuple(layers))
