"""Bias calibration on the MNIST CNN: accuracy vs T with and without it (fixed point).

Trains the conv8-conv8-pool-conv16-pool-fc64-fc10 QCFS network of
:mod:`benchmarks.cnn` (L=8, 4 epochs, full training set), converts it with the
V_th/2 initial potential, with and without ``bias_calibration=512``, and runs
the fixed-point (Lava-exact) reference on the full test set.
"""

from __future__ import annotations

import time

import numpy as np

import lava_convert as lc
from benchmarks.cnn import mnist_cnn
from lava_convert.data import load_dataset
from lava_convert.train import accuracy, train_classifier

TIMESTEPS = (8, 16, 32)


def section(quick: bool = False) -> str:
    data = load_dataset("mnist")
    n_train, n_test = (5000, 1000) if quick else (len(data.x_train), len(data.x_test))
    x_test, y_test = data.x_test[:n_test], data.y_test[:n_test]
    calib = data.x_train[np.random.default_rng(0).choice(len(data.x_train), 2000, replace=False)]
    model = train_classifier(mnist_cnn(), data.x_train[:n_train], data.y_train[:n_train],
                             epochs=1 if quick else 4, lr=2e-3, batch_size=128, seed=0)
    ann = accuracy(model, x_test, y_test)
    rows = []
    for samples in (0, 512):
        accs, seconds = [], []
        for T in TIMESTEPS:
            t0 = time.perf_counter()
            net = lc.convert(model, calibration=calib, timesteps=T, shift="v0",
                             bias_calibration=samples)
            seconds.append(time.perf_counter() - t0)
            accs.append(net.simulate(x_test, T).accuracy(y_test))
        rows.append((samples, accs, seconds))
    lines = ["## Bias calibration (MNIST CNN, QCFS L=8, V_th/2 initial potential)", "",
             f"Fixed-point reference on {n_test} test samples; ANN {100 * ann:.2f} %.", "",
             "| bias_calibration | " + " | ".join(f"T={T}" for T in TIMESTEPS)
             + " | ANN - SNN at T=16 | conversion time (s) |",
             "|---" * (len(TIMESTEPS) + 3) + "|"]
    for samples, accs, seconds in rows:
        lines.append(f"| {samples or 'off'} | " + " | ".join(f"{100 * a:.2f}" for a in accs)
                     + f" | {100 * (ann - accs[1]):+.2f} | {max(seconds):.1f} |")
    return "\n".join(lines + [""])
