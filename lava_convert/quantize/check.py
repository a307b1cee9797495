"""The fixed-point check: how much quantization changed each layer, measured on
calibration samples against the float SNN."""

from __future__ import annotations

import logging

import numpy as np

from ..hw.loihi import U_WRAP, V_MAX
from ..ir import FixedNetwork, LayerCheck, QuantizationCheck, SnnNetwork
from ..sim.reference import simulate_fixed, simulate_float

log = logging.getLogger(__name__)


def check_fixed_point(net: FixedNetwork, snn: SnnNetwork, x: np.ndarray,
                      tolerance: float, samples: int = 256) -> QuantizationCheck:
    """Simulate calibration samples in fixed and float point; warn where quantization costs.

    Returns a :class:`~lava_convert.ir.QuantizationCheck`: per layer the largest
    ``|u|`` and ``|v|`` and the lowest ``v`` (Lava units) and ``rate_error``, the
    mean ``|fixed - float|`` spike count per neuron divided by T (spikes per
    step); the warnings (each also logged; they go into the sidecar):

    * ``rate_error > tolerance`` for a spiking layer (quantization loses
      accuracy); if ``v`` also reached the 24-bit floor ``-V_MAX`` there,
      the warning names it as a likely cause;
    * ``u`` beyond 24 bits (it wraps in Lava). The scales rule this out, so
      this only fires for hand-made networks.

    In hidden layers ``v`` cannot pass ``+V_MAX``: at most the threshold
    before a step, it gains at most the largest current, and the scales keep
    their sum within ``STATE_LIMIT`` units. Reaching the floor ``-V_MAX`` alone
    is logged at info: a neuron held that far below threshold is silent in
    fixed and float point alike, and where its later recovery (sooner from the
    clipped value) changes spikes, ``rate_error`` measures it. In the first
    layer (constant analog input) the floor never changes a spike; a readout
    clips only strongly negative classes.

    and the share of calibration samples whose predicted class differs between
    fixed and float point (``prediction_mismatch``).
    """
    x = x[np.linspace(0, len(x) - 1, min(samples, len(x))).astype(int)]
    x = x.reshape(len(x), *net.input_shape)
    fixed = simulate_fixed(net, x, net.timesteps, track_state=True)
    flt = simulate_float(snn, x, net.timesteps)
    peaks = fixed.info["state_max"]
    warnings, checks = [], []
    limits = {q.name: q.scale_limited_by for q in net.quantization}

    def warn(message: str) -> None:
        log.warning("%s", message)
        warnings.append(message)

    for i, layer in enumerate(net.layers):
        peak = peaks[layer.name]
        diff = np.abs(fixed.spike_counts[layer.name] - flt.spike_counts[layer.name])
        rate_error = float(diff.mean()) / net.timesteps if layer.spiking else 0.0
        checks.append(LayerCheck(name=layer.name, rate_error=rate_error, max_abs_u=peak["u"],
                                 max_abs_v=peak["v"], min_v=peak["v_min"]))
        # first layer: constant input, saturation never changes a spike
        floor = i > 0 and peak["v_min"] <= -V_MAX
        if rate_error > tolerance:
            warn(f"layer {layer.name}: quantization changes spike rates by {rate_error:.4f} "
                 f"spikes/step on average (tolerance {tolerance:g}; scale limited by "
                 f"{limits.get(layer.name, 'an unknown range')}"
                 + (f"; v also reached the 24-bit floor -{V_MAX}, where strongly inhibited "
                    "neurons recover sooner than in float" if floor and layer.spiking else "")
                 + "): see lc.quantization_report; raise input_bits if the input is coarse, or "
                 "retrain with weight decay to narrow the weight range")
        if peak["u"] > U_WRAP:
            warn(f"layer {layer.name}: u exceeded 24 bits on calibration data and wraps in Lava")
        if floor:
            log.info(f"layer %s: v reaches the 24-bit floor -{V_MAX} on calibration data "
                     "(strongly inhibited neurons; %s)", layer.name,
                     f"rate error {rate_error:.4f} spikes/step" if layer.spiking else
                     "the readout's winning class is unaffected unless all classes are that low")
    return QuantizationCheck(
        layers=tuple(checks), warnings=tuple(warnings),
        prediction_mismatch=float(np.mean(fixed.predictions != flt.predictions)))
