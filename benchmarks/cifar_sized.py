"""Accuracy at CIFAR resolution (32x32x3): QCFS-trained ResNet-20 and VGG-11 networks
against their ANN at T = 4, 8, 16, 32.

Data: CIFAR cannot be had on the machine these rows were measured on, so by default the
images are Fashion-MNIST padded to 32x32 (two zero rows and columns on each side) and
repeated to 3 channels: the networks, their sizes and every conversion step are the
CIFAR ones, the task is not. Where CIFAR-10 is at hand (found as ``--data cifar10``
finds it), ``LAVA_CONVERT_BENCH_DATA=cifar10 python -m benchmarks.run --sections
cifar_sized`` measures the same table on it (normalised per channel with the training
split's statistics).

Networks: the zoo's ``resnet20`` and ``vgg11(width=0.25)`` (VGG-11's layout at a
quarter of its channels, 16 to 128: the full width trains for hours per epoch on two
cores), QCFS L=4 with trainable thresholds, trained :data:`EPOCHS` epochs on the first
:data:`TRAIN_SAMPLES` training images (Adam, cosine schedule, seed 0; cached in
``.data/models``). Converted at each T with the default settings (what a user gets) and,
at T = 4 and 16, with bias calibration on :data:`CALIBRATION` training images; accuracy of the
fixed-point reference (Lava-exact) on the whole test set, the ANN's on the same images.
Rows are :class:`AccuracyRow` records, written to ``benchmarks/cifar_sized.csv`` too.
"""

from __future__ import annotations

import csv
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

import lava_convert as lc
from benchmarks.cnn import trained_cached
from lava_convert.zoo.data import Dataset, load_dataset
from lava_convert.zoo.models import resnet20, vgg11
from lava_convert.zoo.train import accuracy

TIMESTEPS = (4, 8, 16, 32)
#: Bias calibration costs minutes per conversion of ResNet-20: at the goals' T only.
CALIBRATED_TIMESTEPS = (4, 16)
LEVELS = 4
EPOCHS = 6
TRAIN_SAMPLES = 20000
CALIBRATION = 512
CHUNK = 500
CSV = Path(__file__).with_name("cifar_sized.csv")
#: Where the data comes from: "fashion-mnist-32" (default) or "cifar10".
DATA_ENV = "LAVA_CONVERT_BENCH_DATA"


@dataclass(frozen=True)
class AccuracyRow:
    data: str
    network: str
    calibration: str  # "default" or "bias (512)"
    timesteps: int
    ann: float
    snn: float
    convert_s: float


def padded_rgb(x: np.ndarray) -> np.ndarray:
    """28x28 grey images as 32x32x3: two zero rows and columns each side, three copies."""
    return np.repeat(np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2))), 3, axis=1)


def dataset(name: str) -> Dataset:
    if name == "cifar10":
        return load_dataset("cifar10", normalize="train")
    if name != "fashion-mnist-32":
        raise SystemExit(f"{DATA_ENV}={name!r}: use fashion-mnist-32 or cifar10")
    data = load_dataset("fashion-mnist")
    return Dataset(name, padded_rgb(data.x_train), data.y_train, padded_rgb(data.x_test),
                   data.y_test)


def predictions(snn, x: np.ndarray, T: int) -> np.ndarray:
    """The reference's predictions, :data:`CHUNK` samples at a time: a run's spike counts
    (every neuron, every sample) would not fit in memory for a 10,000-image test set."""
    return np.concatenate([lc.simulate(snn, x[lo:lo + CHUNK], T).predictions
                           for lo in range(0, len(x), CHUNK)])


def networks() -> dict:
    return {"ResNet-20": lambda: resnet20(act="qcfs", levels=LEVELS),
            "VGG-11 (quarter width)": lambda: vgg11(act="qcfs", levels=LEVELS, width=0.25)}


def trained(name: str, data: Dataset, quick: bool):
    """The network ``name`` of :func:`networks`, trained on ``data`` (or read from its
    cache in ``.data/models``), and its training seconds (``None``: cached)."""
    n = 600 if quick else TRAIN_SAMPLES
    subset = Dataset(data.name, data.x_train[:n], data.y_train[:n], data.x_test, data.y_test)
    slug = name.split(" ")[0].lower()
    return trained_cached(networks()[name](),
                          Path(f".data/models/{data.name}_{slug}_l{LEVELS}.pt"), subset,
                          quick, EPOCHS)


def measure(name: str, data: Dataset, quick: bool) -> tuple[list[AccuracyRow], float]:
    """Rows of one network, and its training seconds (``None``: cached)."""
    model, train_s = trained(name, data, quick)
    n_test = 200 if quick else len(data.x_test)
    x, y = data.x_test[:n_test], data.y_test[:n_test]
    ann = accuracy(model, x, y)
    calib = data.calibration_sample(CALIBRATION)
    rows = []
    for label, settings, steps in (
            ("default", {}, TIMESTEPS),
            (f"bias ({CALIBRATION})", {"bias_calibration": CALIBRATION}, CALIBRATED_TIMESTEPS)):
        for T in steps:
            start = time.perf_counter()
            snn = lc.convert(model, calibration=calib, timesteps=T, progress=False, **settings)
            convert_s = time.perf_counter() - start
            rows.append(AccuracyRow(data.name, name, label, T, ann,
                                    float(np.mean(predictions(snn, x, T) == y)), convert_s))
            print(rows[-1], flush=True)
    return rows, train_s


def section(quick: bool) -> str:
    name = os.environ.get(DATA_ENV, "fashion-mnist-32")
    data = dataset(name)
    measured, training = [], {}
    for network in networks():
        rows, training[network] = measure(network, data, quick)
        measured += rows
    with CSV.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[f.name for f in fields(AccuracyRow)])
        writer.writeheader()
        writer.writerows(asdict(r) for r in measured)
    what = ("Fashion-MNIST padded to 32x32 and repeated to 3 channels (CIFAR is not on this "
            "machine)" if name == "fashion-mnist-32" else "CIFAR-10, normalised per channel")
    lines = [f"Data: {what}; {len(data.x_test)} test images. QCFS L={LEVELS}, "
             f"{EPOCHS} epochs on {TRAIN_SAMPLES} training images; fixed-point reference "
             "(Lava-exact). Rows also in `benchmarks/cifar_sized.csv`.", ""]
    for network in networks():
        train_s = training[network]
        lines += [f"## {network}: accuracy (%) vs T", "",
                  "training " + ("cached" if train_s is None else f"{train_s:.0f} s"), "",
                  "| conversion | ANN | " + " | ".join(f"T={T}" for T in TIMESTEPS)
                  + " | ANN - SNN at T=4 | at T=16 | slowest conversion s |",
                  "|---" * (len(TIMESTEPS) + 5) + "|"]
        for label in dict.fromkeys(r.calibration for r in measured):
            rows = {r.timesteps: r for r in measured
                    if r.network == network and r.calibration == label}
            ann = rows[4].ann
            lines.append(
                f"| {label} | {100 * ann:.2f} | "
                + " | ".join(f"{100 * rows[T].snn:.2f}" if T in rows else "not run"
                             for T in TIMESTEPS)
                + f" | {100 * (ann - rows[4].snn):+.2f} | {100 * (ann - rows[16].snn):+.2f} "
                f"| {max(r.convert_s for r in rows.values()):.1f} |")
        lines.append("")
    lines.append("Goal: ANN - SNN at most 1.5 points at T=4 and 0.5 at T=16.")
    return "\n".join(lines) + "\n"
