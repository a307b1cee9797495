"""The second (on-grid) bias-calibration pass at small T: always applied (the previous
rule) against kept only when it agrees better with the ANN on the calibration samples.

The MNIST CNN of the ``cnn`` section (QCFS L=8, V_th/2 start, bias calibration on 512
samples), its trained model cached in .data/models by the ``stock_target`` section (trained
here if absent); fixed-point reference on the full test set.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

import lava_convert as lc
from lava_convert import pipeline
from lava_convert.passes.bias_calibration import calibrate_biases
from lava_convert.quantize.scale import on_grid, quantize
from lava_convert.sim.reference import simulate_fixed
from lava_convert.zoo.data import load_dataset
from lava_convert.zoo.train import train_classifier

from .cnn import BIAS_CALIBRATION, mnist_cnn

MODEL = Path(".data/models/mnist_cnn_qcfs.pt")


def _always(stage):
    """The previous rule: requantize with the on-grid calibration whatever it does."""
    grid = calibrate_biases(stage.graph, on_grid(stage.snn, stage.fixed),
                                     stage.calibration_samples())
    return dataclasses.replace(stage, fixed=quantize(grid, stage.x, stage.config, stage.fixed))


def section(quick: bool = False) -> str:
    data = load_dataset("mnist")
    model = mnist_cnn()
    if MODEL.is_file():
        model.load_state_dict(torch.load(MODEL, weights_only=True))
    else:
        n = 5000 if quick else len(data.x_train)
        train_classifier(model, data.x_train[:n], data.y_train[:n], epochs=1 if quick else 4,
                         lr=2e-3, batch_size=128, seed=0)
    model.eval()
    n = 1000 if quick else len(data.x_test)
    x, y = data.x_test[:n], data.y_test[:n]
    calib = data.calibration_sample(2000)
    grid = next(p for p in pipeline.PASSES if p.name == "bias_calibration_on_grid")
    kept = grid.run
    lines = ["## Second bias-calibration pass at small T: MNIST CNN, accuracy (%)", "",
             f"{n} test samples, fixed point (Lava-exact).", "",
             "| rule | T=4 | T=8 | T=16 |", "|---|---|---|---|"]
    try:
        for label, run in (("always applied (previous)", _always),
                           ("kept only if it agrees better (now)", kept)):
            object.__setattr__(grid, "run", run)
            accs = []
            for T in (4, 8, 16):
                c = lc.convert(model, calib, config=lc.ConversionConfig(
                    timesteps=T, shift="v0", bias_calibration=BIAS_CALIBRATION))
                accs.append(simulate_fixed(c.fixed, x, T).accuracy(y))
            lines.append(f"| {label} | " + " | ".join(f"{100 * a:.2f}" for a in accs) + " |")
    finally:
        object.__setattr__(grid, "run", kept)
    return "\n".join(lines + [""])
