"""Calibration arithmetic and what limits the MNIST CNN at T=8.

The QCFS L=8 CNN of the ``cnn`` section (cached model), converted at T=8 with potential
then bias calibration: the layer simulations of calibration in float64 and in float32
(time, chosen initial potentials, fixed-point accuracy on the full test set); then, with
float32, the real-valued SNN of the same conversion (is it quantization?) and 2000
calibration samples instead of 512 (is it the calibration data?).
"""

from __future__ import annotations

import time

import torch

import lava_convert as lc
from lava_convert.passes import layerwise
from lava_convert.sim.reference import simulate_fixed, simulate_float
from lava_convert.zoo.data import load_dataset
from lava_convert.zoo.train import accuracy

from .cnn import trained_cnn

T = 8
LEVELS = 8


def _convert(model, calib, samples: int, dtype: torch.dtype):
    default = layerwise.CALIBRATION_DTYPE
    layerwise.CALIBRATION_DTYPE = dtype
    try:
        start = time.perf_counter()
        net = lc.convert(model, calibration=calib, timesteps=T, shift="v0",
                         potential_calibration=samples, bias_calibration=samples)
        return net, time.perf_counter() - start
    finally:
        layerwise.CALIBRATION_DTYPE = default


def section(quick: bool = False) -> str:
    torch.set_num_threads(2)
    data = load_dataset("mnist")
    n = 500 if quick else len(data.x_test)
    x, y = data.x_test[:n], data.y_test[:n]
    calib = data.calibration_sample(2000)
    model, _ = trained_cnn("mnist", LEVELS, data, quick)
    samples = 64 if quick else 512
    rows = []
    for label, dtype, k in (("float64", torch.float64, samples),
                            ("float32", torch.float32, samples),
                            ("float32", torch.float32, 4 * samples)):
        net, seconds = _convert(model, calib, k, dtype)
        rows.append((label, k, seconds, [round(l.v0 / l.threshold, 3) for l in net.snn.layers[:-1]],
                     simulate_fixed(net.fixed, x, T).accuracy(y),
                     simulate_float(net.snn, x, T).accuracy(y)))
    lines = [f"## Calibration arithmetic, and what limits the MNIST CNN at T={T}", "",
             f"QCFS L={LEVELS} CNN of the `cnn` section (ANN {100 * accuracy(model, x, y):.2f} "
             f"%), T={T}, potential then bias calibration; {n} test samples. Accuracy of "
             "the Lava-exact fixed-point network and of the real-valued SNN it quantizes.", "",
             "| calibration simulated in | samples | conversion s | v0 / V_th per hidden layer | "
             "fixed point % | real-valued SNN % |", "|---|---|---|---|---|---|"]
    lines += [f"| {a} | {k} | {s:.0f} | {', '.join(map(str, v))} | {100 * f:.2f} | "
              f"{100 * r:.2f} |" for a, k, s, v, f, r in rows]
    return "\n".join(lines + [""])
