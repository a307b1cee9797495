"""The fixed-point check: how much quantization changed each layer, measured on
calibration samples against the float SNN."""

from __future__ import annotations

import logging

import numpy as np

from ..hw.loihi import U_WRAP, V_MAX
from ..ir import FixedNetwork, LayerCheck, QuantizationCheck, SnnNetwork
from ..sim.kernels import products_per_step
from ..sim.reference import simulate_fixed, simulate_float

log = logging.getLogger(__name__)


#: Most calibration samples the check simulates; fewest, for large networks.
CHECK_SAMPLES, MIN_CHECK_SAMPLES = 256, 32
#: Multiplications (:func:`~lava_convert.sim.kernels.products_per_step` times T, per
#: sample) the check spends at most, above ``MIN_CHECK_SAMPLES``: every MNIST-sized
#: network is checked on 256 samples; a CIFAR VGG at T=16 on 32 (about 10 s here).
CHECK_BUDGET = 2**35


def check_samples(net: FixedNetwork, available: int) -> int:
    """How many calibration samples the check simulates (of ``available``)."""
    per_sample = max(1, products_per_step(net) * net.timesteps)
    fits = max(MIN_CHECK_SAMPLES, min(CHECK_SAMPLES, CHECK_BUDGET // per_sample))
    return min(available, fits)


def check_fixed_point(net: FixedNetwork, snn: SnnNetwork, x: np.ndarray,
                      tolerance: float, samples: int | None = None) -> QuantizationCheck:
    """Simulate calibration samples in fixed and float point; warn where quantization costs.

    ``samples`` (default :func:`check_samples`: 256, fewer for networks whose simulation
    costs more than ``CHECK_BUDGET``) spread evenly over ``x``; the result records it.

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
    n = check_samples(net, len(x)) if samples is None else min(samples, len(x))
    if n < min(len(x), CHECK_SAMPLES):
        log.info("fixed-point check on %d of %d calibration samples (the simulation of this "
                 "network costs %.3g multiplications per sample)", n, len(x),
                 products_per_step(net) * net.timesteps)
    x = x[np.linspace(0, len(x) - 1, n).astype(int)]
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
        prediction_mismatch=float(np.mean(fixed.predictions != flt.predictions)), samples=n)
