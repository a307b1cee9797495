"""A bias that limits the scale: the per-layer bias exponent against NetX's fixed one.

An MLP 784-256-256-10 with BatchNorm1d after each hidden Linear (folded into it; 3 epochs
on MNIST, cached in .data/models). Folding BatchNorm makes large biases; with NetX's fixed
bias exponent (6) the largest bias sets the first layer's scale and most of its weights
round to zero. lava-convert's target gives such a layer a larger bias exponent instead.
Fixed-point vs float SNN accuracy on the full test set, T=16 and 32; "fixed exponent" is
the previous rule (reproduced by pinning the exponent at 6).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

import lava_convert as lc
from lava_convert.quantize import scale as quantize_scale
from lava_convert.zoo.data import load_dataset
from lava_convert.zoo.train import accuracy, train_classifier

MODEL = Path(".data/models/mnist_bn_mlp.pt")


def bn_mlp() -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.BatchNorm1d(256), nn.ReLU(),
                         nn.Dropout(0.1), nn.Linear(256, 256), nn.BatchNorm1d(256), nn.ReLU(),
                         nn.Linear(256, 10))


def section(quick: bool = False) -> str:
    data = load_dataset("mnist")
    torch.manual_seed(0)
    model = bn_mlp()
    if MODEL.is_file() and not quick:
        model.load_state_dict(torch.load(MODEL, weights_only=True))
    else:
        train_classifier(model, data.x_train, data.y_train, epochs=1 if quick else 3, lr=1e-3,
                         batch_size=128)
        if not quick:
            MODEL.parent.mkdir(parents=True, exist_ok=True)
            torch.save(model.state_dict(), MODEL)
    model.eval()
    n = 1000 if quick else len(data.x_test)
    x, y = data.x_test[:n], data.y_test[:n]
    calib = data.calibration_sample(2000)
    lines = ["## Bias exponent: BatchNorm-folded MLP on MNIST, fixed point vs float (%)", "",
             f"{n} test samples; ANN {100 * accuracy(model, x, y):.2f} %.", "",
             "| bias rule | T | fixed point | float | float - fixed | layer 1 scale set by "
             "| layer 1 weights rounded to 0 | layer 1 bias exponent |",
             "|---|---|---|---|---|---|---|---|"]
    original = quantize_scale._scale, quantize_scale._bias_exponent
    try:
        for rule in ("fixed exponent 6 (previous rule)", "per-layer exponent (now)"):
            if rule.startswith("fixed"):
                quantize_scale._scale = lambda layer, w, i, free: original[0](layer, w, i, False)
                quantize_scale._bias_exponent = lambda bias: 6
            else:
                quantize_scale._scale, quantize_scale._bias_exponent = original
            for T in (16, 32):
                c = lc.convert(model, calib, timesteps=T)
                fixed = c.simulate(x, T).accuracy(y)
                flt = c.simulate(x, T, mode="float").accuracy(y)
                q = c.fixed.quantization[0]
                lines.append(f"| {rule} | {T} | {100 * fixed:.2f} | {100 * flt:.2f} | "
                             f"{100 * (flt - fixed):+.2f} | {q.scale_limited_by} | "
                             f"{100 * q.weights_underflow:.0f} % | {q.bias_exp} |")
    finally:
        quantize_scale._scale, quantize_scale._bias_exponent = original
    return "\n".join(lines + [""])
