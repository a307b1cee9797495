"""``balancing="auto"`` on a deep clipped network: a VGG-style MNIST CNN with BatchNorm
and ReLU6 (seven layers of neurons), converted with its clips as thresholds
(``balancing="clip"``, what the default did before ``auto`` measured clipped networks)
and with the default (``auto``: the clips or per-channel maxima, shift ``bias`` or
``v0``, bias calibration of the best), at T = 4, 8, 16.

Trained :data:`EPOCHS` epochs on MNIST's training split (Adam, seed 0; cached in
``.data/models``); accuracy of the fixed-point reference (Lava-exact) on the whole test
set; 512 calibration samples. Rows are :class:`ClippedRow` records, also written to
``benchmarks/clipped_auto.csv``.
"""

from __future__ import annotations

import csv
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn

import lava_convert as lc
from benchmarks.cnn import trained_cached
from lava_convert.passes.auto_balancing import describe_settings
from lava_convert.zoo.data import load_dataset
from lava_convert.zoo.train import accuracy

TIMESTEPS = (4, 8, 16)
EPOCHS = 3
CALIBRATION = 512
CSV = Path(__file__).with_name("clipped_auto.csv")


@dataclass(frozen=True)
class ClippedRow:
    conversion: str  # "clip" or "auto"
    timesteps: int
    ann: float
    snn: float
    chosen: str
    convert_s: float


def vgg_relu6(seed: int = 0) -> nn.Sequential:
    """conv16-conv16-pool-conv32-conv32-pool-conv64-pool-fc128-fc10, BatchNorm and ReLU6."""
    def block(c_in, c_out):
        return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                nn.ReLU6()]

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(*block(1, 16), *block(16, 16), nn.AvgPool2d(2),
                             *block(16, 32), *block(32, 32), nn.AvgPool2d(2),
                             *block(32, 64), nn.AvgPool2d(2), nn.Flatten(),
                             nn.Linear(64 * 3 * 3, 128), nn.ReLU6(), nn.Linear(128, 10))


def section(quick: bool) -> str:
    data = load_dataset("mnist")
    model, train_s = trained_cached(vgg_relu6(), Path(".data/models/mnist_vgg_relu6.pt"),
                                    data, quick, EPOCHS)
    n_test = 500 if quick else len(data.x_test)
    x, y = data.x_test[:n_test], data.y_test[:n_test]
    ann = accuracy(model, x, y)
    calib = data.calibration_sample(CALIBRATION)
    rows = []
    for T in TIMESTEPS:
        for label, settings in (("clip", {"balancing": "clip"}), ("auto", {})):
            start = time.perf_counter()
            snn = lc.convert(model, calibration=calib, timesteps=T, progress=False, **settings)
            convert_s = time.perf_counter() - start
            chosen = (describe_settings(snn.balancing_choice.chosen) if snn.balancing_choice
                      else "clip per layer, shift bias")
            rows.append(ClippedRow(label, T, ann, float(np.mean(snn.simulate(x).predictions
                                                                 == y)), chosen, convert_s))
            print(rows[-1], flush=True)
    with CSV.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[f.name for f in fields(ClippedRow)])
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)
    lines = [f"MNIST, {n_test} test images; training "
             + ("cached" if train_s is None else f"{train_s:.0f} s")
             + f"; ANN {100 * ann:.2f} %. Rows also in `benchmarks/clipped_auto.csv`.", "",
             "| T | clip % | auto % | auto chose | clip s | auto s |",
             "|---:|---:|---:|---|---:|---:|"]
    for T in TIMESTEPS:
        clip, auto = (next(r for r in rows if r.timesteps == T and r.conversion == c)
                      for c in ("clip", "auto"))
        lines.append(f"| {T} | {100 * clip.snn:.2f} | {100 * auto.snn:.2f} | {auto.chosen} "
                     f"| {clip.convert_s:.1f} | {auto.convert_s:.1f} |")
    return "\n".join(lines) + "\n"
