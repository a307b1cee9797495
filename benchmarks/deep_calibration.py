"""What a deep residual network at 32x32 needs beyond ``auto``: the QCFS ResNet-20 of
``cifar_sized`` (same data, same cached training) at T=16, converted with the default
(``auto``), with what it chose on that network (per-channel maxima, shift ``v0``), and with
that plus initial potentials calibrated on 256 samples per layer and per channel; and the
cost of ``auto`` against the clips alone at T=8.

Accuracy of the fixed-point reference (Lava-exact) on the first :data:`TEST_SAMPLES` test
images; conversion seconds on this machine, nothing else running. Rows are
:class:`CalibrationRow` records, also written to ``benchmarks/deep_calibration.csv``.
"""

from __future__ import annotations

import csv
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

import lava_convert as lc
from benchmarks.cifar_sized import CALIBRATION, LEVELS, dataset, trained
from lava_convert.zoo.train import accuracy

TEST_SAMPLES = 2000
CSV = Path(__file__).with_name("deep_calibration.csv")
CHOSEN = {"balancing": "max", "channel_thresholds": True, "shift": "v0"}


@dataclass(frozen=True)
class CalibrationRow:
    conversion: str
    timesteps: int
    ann: float
    snn: float
    convert_s: float


def section(quick: bool) -> str:
    data = dataset("fashion-mnist-32")
    model, _ = trained("ResNet-20", data, quick)
    n = 200 if quick else TEST_SAMPLES
    x, y = data.x_test[:n], data.y_test[:n]
    ann = accuracy(model, x, y)
    calib = data.calibration_sample(CALIBRATION)
    rows = []
    for label, T, settings in (
            ("clips (balancing='clip')", 8, {"balancing": "clip"}),
            ("default (auto)", 8, {}),
            ("default (auto)", 16, {}),
            ("per-channel maxima, v0", 16, CHOSEN),
            ("+ potential calibration per layer (256)", 16,
             {**CHOSEN, "potential_calibration": 256}),
            ("+ potential calibration per channel (256)", 16,
             {**CHOSEN, "potential_calibration": 256, "potential_scope": "channel"})):
        start = time.perf_counter()
        snn = lc.convert(model, calibration=calib, timesteps=T, progress=False, **settings)
        convert_s = time.perf_counter() - start
        rows.append(CalibrationRow(label, T, ann, float(np.mean(snn.simulate(x).predictions
                                                                == y)), convert_s))
        print(rows[-1], flush=True)
    with CSV.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[f.name for f in fields(CalibrationRow)])
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)
    lines = [f"QCFS ResNet-20 (L={LEVELS}) of `cifar_sized`, Fashion-MNIST padded to "
             f"32x32x3; first {n} test images (ANN {100 * ann:.2f} %); {CALIBRATION} "
             "calibration samples. Rows also in `benchmarks/deep_calibration.csv`.", "",
             "| conversion | T | accuracy % | ANN - SNN | convert s |",
             "|---|---:|---:|---:|---:|"]
    lines += [f"| {r.conversion} | {r.timesteps} | {100 * r.snn:.2f} | "
              f"{100 * (r.ann - r.snn):+.2f} | {r.convert_s:.1f} |" for r in rows]
    return "\n".join(lines) + "\n"

