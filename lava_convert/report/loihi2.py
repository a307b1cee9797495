"""The Loihi 2 fit check: every exact limit of Lava's fixed-point models, checked per layer,
what stands between a file and the chip, and an **estimate** of the cores and chips it needs.

Exact limits (Lava 0.10 / lava-dl 0.6 fixed-point models, :mod:`lava_convert.hw.loihi`):

* dense weights: NetX's ``optimize_weight_bits`` re-expresses them as an 8-bit mantissa
  with a shared exponent; it clips anything outside ``[DENSE_WEIGHT_MIN, WEIGHT_MAX]``;
* conv weights: 8-bit signed, no exponent;
* threshold mantissa: unsigned 17 bit; bias mantissa: signed 13 bit (exponent 6);
* ``u`` (this step's synaptic input) wraps at 24 bits: measured on calibration data by
  the converter's fixed-point check when the file records it (an exact limit), and
  bounded for *any* input (a headroom note: the first layer's scale is set from the
  calibration data, so inputs far outside it could wrap);
* decays ``du``, ``dv``: 12 bit; graded input payload: at most 24 bits;
* shortcut delay lines: Loihi's synaptic delays reach ``MAX_SYNAPTIC_DELAY`` steps (NetX
  clamps beyond);
* sigma-delta layers: the delta threshold and bias mantissas, shifted left by 12 bits,
  within the 24-bit state; and (a headroom note) their messages for any input within 16
  bits, bounded layer by layer from the input's payload width.

Resource estimate. Intel has not published every per-core capacity of Loihi 2; the
figures used are (each an assumption, and the result is labelled an estimate):

* 128 neuro-cores per chip, up to 1 million neurons and 120 million synapses per chip
  (Intel Labs, "Taking Neuromorphic Computing to the Next Level with Loihi 2", technology
  brief, 2021). Spread evenly: 8192 neurons and 937,500 synapses per core. The synapse
  figure is the brief's densest encoding; 8-bit weights take more memory, so the synapse
  side of the estimate is a lower bound;
* fan-in: ``FAN_IN_PER_CORE`` input axons per core, the figure published for Loihi 1
  (Davies et al.,
  "Loihi: A Neuromorphic Manycore Processor with On-Chip Learning", IEEE Micro 38(1),
  2018, Table 1); no Loihi 2 figure is published. A dense layer whose input is wider
  needs its synapses split over several cores, which the estimate counts; a conv core
  reads only the patch its neurons see, which the estimate does not model;
* conv layers are counted with every connection expanded (as if weights were not shared).

Cores per layer = max(neurons / neurons per core, synapses / synapses per core, dense
fan-in / ``FAN_IN_PER_CORE``), rounded up; chips = total cores / ``CORES_PER_CHIP``,
rounded up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..hw.loihi import (
    BIAS_MANT_MAX,
    CONV_WEIGHT_MAX,
    CORES_PER_CHIP,
    DECAY_UNITY,
    DENSE_WEIGHT_MIN,
    FAN_IN_PER_CORE,
    MAX_MESSAGE_BITS,
    MAX_SYNAPTIC_DELAY,
    NEURONS_PER_CHIP,
    SDNN_BIAS_MAX,
    SDNN_MESSAGE_BITS,
    SDNN_SPIKE_EXP,
    SDNN_STATE_EXP,
    SDNN_VTH_MAX,
    STATE_SHIFT,
    SYNAPSES_PER_CHIP,
    U_WRAP,
    VTH_MAX,
    WEIGHT_MAX,
    payload_max,
)
from ..ir import FixedLayer, FixedNetwork, skip_delays
from ..netx.reader import read_netx
from .cost import macs

#: Spread evenly over the cores (an assumption: see the module docstring).
NEURONS_PER_CORE = NEURONS_PER_CHIP // CORES_PER_CHIP
SYNAPSES_PER_CORE = SYNAPSES_PER_CHIP // CORES_PER_CHIP


@dataclass(frozen=True)
class Limit:
    """One limit checked on one layer: what was found, what is allowed. ``exact`` limits
    are representability (a value fits or the file cannot run as written); the others
    are headroom notes for inputs beyond the calibration data."""

    name: str
    found: str
    allowed: str
    ok: bool
    exact: bool = True


@dataclass(frozen=True)
class LayerFit:
    """The fit of one layer: its limits and its share of the resource estimate."""

    name: str
    limits: tuple[Limit, ...]
    neurons: int
    synapses: int
    fan_in: int
    cores: int

    @property
    def ok(self) -> bool:
        """Every exact limit holds."""
        return all(limit.ok for limit in self.limits if limit.exact)


@dataclass(frozen=True)
class Loihi2Fit:
    """The Loihi 2 fit check of a network (:func:`loihi2_fit`)."""

    layers: tuple[LayerFit, ...]
    custom: tuple[str, ...]
    cores: int
    chips: int

    @property
    def ok(self) -> bool:
        """All exact limits hold (the custom parts still need their own implementation)."""
        return all(layer.ok for layer in self.layers)

    @property
    def headroom_notes(self) -> tuple[str, ...]:
        return tuple(f"layer {layer.name}: {limit.name} is {limit.found} ({limit.allowed})"
                     for layer in self.layers for limit in layer.limits
                     if not limit.exact and not limit.ok)

    def to_dict(self) -> dict:
        return {"ok": self.ok, "custom": list(self.custom),
                "headroom_notes": list(self.headroom_notes), "cores_estimate": self.cores,
                "chips_estimate": self.chips,
                "layers": [{"name": l.name, "ok": l.ok, "neurons": l.neurons,
                            "synapses": l.synapses, "fan_in": l.fan_in,
                            "cores_estimate": l.cores,
                            "limits": [vars(limit) for limit in l.limits]} for l in self.layers],
                "estimate_note": "cores and chips are an estimate from published per-chip "
                                 "totals spread over 128 cores (Intel Loihi 2 brief, 2021) and "
                                 "Loihi 1's fan-in (Davies et al. 2018)"}


def _range(name: str, values, low: int, high: int) -> Limit:
    values = np.asarray(values)
    lo, hi = (int(values.min()), int(values.max())) if values.size else (0, 0)
    return Limit(name, f"{lo}..{hi}", f"{low}..{high}", low <= lo and hi <= high)


def _largest_input(layer: FixedLayer, low: int, high: int) -> int:
    """Largest |synaptic input| in one step (integer current units), exact for inputs in
    ``[low, high]`` on the main synapse (spikes: 0..1) and spikes on the shortcuts (per
    output neuron or channel; zero padding lies inside the box when low <= 0)."""
    if layer.synapse is None:
        return max(abs(low), abs(high))
    top = bottom = 0.0
    for synapse, (lo, hi) in ((layer.synapse, (low, high)), *((k, (0, 1)) for k in layer.skips)):
        w = np.asarray(synapse.weight, dtype=np.float64).reshape(len(synapse.weight), -1)
        top = top + np.maximum(w * hi, w * lo).sum(axis=1)
        bottom = bottom + np.minimum(w * hi, w * lo).sum(axis=1)
    return int(max(np.abs(top).max(), np.abs(bottom).max()))


def _sigma_delta_limits(net: FixedNetwork, i: int, reach: list[int]) -> list[Limit]:
    """A sigma-delta layer's neuron limits: threshold and bias, shifted left by 12 bits,
    within the 24-bit state; and (a headroom note) its messages for any input within
    their 16 bits, bounding layer by layer (``reach``: the largest message of each layer
    so far, appended to)."""
    layer = net.layers[i]
    limits = [_range("delta threshold mantissa (vth << 12 in 24 bits)", layer.vth, 0,
                     SDNN_VTH_MAX),
              _range("bias mantissa (bias << 12 in 24 bits)", layer.bias, -SDNN_BIAS_MAX,
                     SDNN_BIAS_MAX)]
    if layer.synapse is None:  # Delta: it sends the input with 6 fractional bits
        largest = payload_max(net.input_bits, net.input_signed) << SDNN_SPIKE_EXP
    else:
        low = -reach[-1] if i == 1 and net.input_signed else 0
        state = _largest_input(layer, low, reach[-1]) + (
            int(np.abs(layer.bias).max(initial=0)) << (SDNN_SPIKE_EXP + SDNN_STATE_EXP))
        largest = state >> SDNN_STATE_EXP
    reach.append(largest)
    limit = 2 ** (SDNN_MESSAGE_BITS - 1) - 1
    limits.append(Limit(f"messages for any input ({SDNN_MESSAGE_BITS} bits)", str(largest),
                        f"<= {limit}", largest <= limit, exact=False))
    return limits


def _layer_fit(net: FixedNetwork, i: int, delays: list[int], reach: list[int]) -> LayerFit:
    layer = net.layers[i]
    limits = []
    for synapse, what in ((layer.synapse, "weights"), *((k, f"shortcut {j} weights")
                                                          for j, k in enumerate(layer.skips))):
        if synapse is None:
            continue
        if synapse.kind == "dense":
            limits.append(_range(f"{what} (dense: 8-bit mantissa, shared exponent)",
                                 synapse.weight, DENSE_WEIGHT_MIN, WEIGHT_MAX))
        else:
            limits.append(_range(f"{what} (conv: 8-bit signed)", synapse.weight,
                                 -CONV_WEIGHT_MAX - 1, CONV_WEIGHT_MAX))
    if layer.neuron == "sdnn":
        limits += _sigma_delta_limits(net, i, reach)
    else:
        limits += _lif_limits(net, i)
    if delays:
        limits.append(_range("shortcut delay lines (steps)", delays, 0, MAX_SYNAPTIC_DELAY))
    fan_in = sum(int(np.prod(s.weight.shape[1:])) for s in (layer.synapse, *layer.skips)
                 if s is not None)  # inputs of one neuron
    synapses = macs(layer)
    dense_in = fan_in if layer.kind == "dense" else 0
    cores = max(math.ceil(layer.size / NEURONS_PER_CORE),
                math.ceil(synapses / SYNAPSES_PER_CORE), math.ceil(dense_in / FAN_IN_PER_CORE),
                1)
    return LayerFit(layer.name, tuple(limits), layer.size, synapses, fan_in, cores)


def _lif_limits(net: FixedNetwork, i: int) -> list[Limit]:
    """A LIF layer's neuron limits: threshold, bias and decay widths, ``u`` within 24 bits
    on the calibration data (when the file records it) and (a headroom note) for any
    input."""
    layer = net.layers[i]
    limits = [_range("threshold mantissa (17 bit)", layer.vth, 0, VTH_MAX),
              _range("bias mantissa (13 bit)", layer.bias, -BIAS_MANT_MAX, BIAS_MANT_MAX),
              _range("du, dv (12 bit)", [layer.du, layer.dv], 0, DECAY_UNITY - 1)]
    checked = net.check.layer(layer.name) if net.check is not None else None
    if checked is not None:
        limits.append(Limit("|u| on calibration data (24-bit wrap)", str(checked.max_abs_u),
                            f"<= {U_WRAP}", checked.max_abs_u <= U_WRAP))
    top = payload_max(net.input_bits, net.input_signed) if i == 0 else 1
    low = -top if i == 0 and net.input_signed else 0
    u = _largest_input(layer, low, top) << STATE_SHIFT
    limits.append(Limit("|u| for any input (24-bit wrap)", str(u), f"<= {U_WRAP}",
                        u <= U_WRAP, exact=False))
    return limits


def custom_parts(net: FixedNetwork) -> tuple[str, ...]:
    """What Loihi 2 cannot run with Intel's stock neuron and synapse models (graded input
    spikes are a Loihi 2 feature, checked as a limit, not listed here)."""
    what = {"soft_reset": "soft reset in layers {}: a custom neuron model (microcode on the "
                          "neuro-cores); convert with target='stock-netx' to avoid it",
            "v0": "initial potential v0 in layers {}: set by the custom neuron model at each "
                  "sample's start",
            "residual": "residual shortcuts into layers {}: a second synapse into one neuron "
                        "group and lava-convert's SpikeDelay process (or Loihi's synaptic "
                        "delays)"}
    uses = net.extension_layers()
    per_neuron = [layer.name for layer in net.layers if np.ndim(layer.v0)]
    if per_neuron:
        what["v0"] += f", one value per neuron in layers {per_neuron} (a per-neuron parameter)"
    parts = [what[kind].format(uses[kind]) for kind in ("soft_reset", "v0", "residual")
             if uses[kind]]
    if not net.layers[-1].spiking and net.neuron_model == "lif":
        parts.append("integrating readout: the class is read from the last layer's potential "
                     "v, which needs a state probe on the chip instead of output spikes")
    return tuple(parts)


def loihi2_fit(net: FixedNetwork | str | Path) -> Loihi2Fit:
    """The Loihi 2 fit check of ``net`` (a FixedNetwork or a ``.net`` path; see the module
    docstring)."""
    if not isinstance(net, FixedNetwork):
        net = read_netx(net)
    delays, reach = skip_delays(net.layers), []
    layers = tuple(_layer_fit(net, i, d, reach) for i, d in enumerate(delays))
    cores = sum(layer.cores for layer in layers)
    input_limit = Limit("graded input payload bits", str(net.input_bits),
                        f"<= {MAX_MESSAGE_BITS}", net.input_bits <= MAX_MESSAGE_BITS)
    first = layers[0]
    layers = (LayerFit(first.name, (input_limit, *first.limits), first.neurons,
                       first.synapses, first.fan_in, first.cores), *layers[1:])
    return Loihi2Fit(layers=layers, custom=custom_parts(net), cores=cores,
                     chips=math.ceil(cores / CORES_PER_CHIP))
