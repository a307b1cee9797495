"""CNNs on MNIST and Fashion-MNIST: accuracy vs T (fixed point), Lava confirmation and speed.

The network is conv-conv-pool-conv-pool-fc-fc (28x28x1 -> 8 -> 8 -> pool -> 16 -> pool
-> 64 -> 10) with QCFS activations (L=8, trainable thresholds, quantization-aware
training), converted with soft reset and a V_th/2 initial potential, with and
without bias calibration (512 training samples). Pooling is folded into the
following layer. Accuracy is the fixed-point reference simulator's on the full
test set; Lava runs the calibrated T=16 network on the first 500 test samples
(identical spike counts required) and gives Lava's throughput. The calibrated
T=16 networks are exported to netx_exports/.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

import lava_convert as lc
from lava_convert.sim.reference import simulate_fixed
from lava_convert.zoo.data import load_dataset
from lava_convert.zoo.train import accuracy, train_classifier

TIMESTEPS = (4, 8, 16, 32, 64, 128)
BIAS_CALIBRATION = 512
DATASETS = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}


def mnist_cnn(levels: int = 8, seed: int = 0) -> nn.Sequential:
    """conv8-conv8-pool-conv16-pool-fc64-fc10 with QCFS activations (28x28x1 input)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), lc.QCFS(levels, 2.0),
            nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), lc.QCFS(levels, 2.0),
            nn.AvgPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), lc.QCFS(levels, 2.0),
            nn.AvgPool2d(2), nn.Flatten(),
            nn.Linear(16 * 7 * 7, 64), lc.QCFS(levels, 2.0),
            nn.Linear(64, 10),
        )


def run_dataset(name: str, quick: bool, export_dir: Path | None) -> dict:
    data = load_dataset(name)
    n_test = 500 if quick else len(data.x_test)
    x_test, y_test = data.x_test[:n_test], data.y_test[:n_test]
    calib = data.x_train[np.random.default_rng(0).choice(len(data.x_train), 2000, replace=False)]
    t0 = time.perf_counter()
    n_train = 5000 if quick else len(data.x_train)
    model = train_classifier(mnist_cnn(), data.x_train[:n_train], data.y_train[:n_train],
                             epochs=1 if quick else 4, lr=2e-3, batch_size=128, seed=0)
    train_s = time.perf_counter() - t0
    ann = accuracy(model, x_test, y_test)
    accs = {0: [], BIAS_CALIBRATION: []}
    convert_s = 0.0
    for samples, row in accs.items():
        for T in TIMESTEPS:
            t0 = time.perf_counter()
            snn = lc.convert(model, calibration=calib, timesteps=T, shift="v0",
                             bias_calibration=samples)
            convert_s = max(convert_s, time.perf_counter() - t0)
            row.append(simulate_fixed(snn.fixed, x_test, T).accuracy(y_test))
            if samples and T == 16:
                best = snn
    T, n_lava = 16, 20 if quick else 500
    ref = simulate_fixed(best.fixed, x_test[:n_lava], T)
    lava = lc.run_lava(best.fixed, x_test[:n_lava], T, progress=False)
    identical = all(np.array_equal(lava.spike_counts[k], ref.spike_counts[k])
                    for k in lava.spike_counts)
    if export_dir is not None:
        best.accuracy.update(ann=ann, snn_reference=accs[BIAS_CALIBRATION][TIMESTEPS.index(T)],
                             snn_lava=lava.accuracy(y_test[:n_lava]), lava_samples=n_lava)
        best.export(export_dir / f"{name.replace('-', '_')}_cnn_qcfs.net")
    synapses = sum(int(np.prod(l.weight.shape)) * (int(np.prod(l.shape[1:]))
                   if l.kind == "conv" else 1) for l in best.fixed.layers)
    return dict(ann=ann, accs=accs, n_test=n_test, train_s=train_s, convert_s=convert_s,
                notes=best.ann.notes,
                lava=dict(T=T, samples=n_lava, acc=lava.accuracy(y_test[:n_lava]),
                          ref=ref.accuracy(y_test[:n_lava]), identical=identical,
                          sps=n_lava / lava.wall_time_s, wall=lava.wall_time_s,
                          steps=lava.info["steps"]),
                ref_sps=n_lava / ref.wall_time_s, synapses=synapses,
                spikes=ref.spikes_per_sample())


def accuracy_table(ann: float, accs: dict) -> list[str]:
    """Markdown rows: accuracy (%) per T by calibration (keys: 0 for none, a number of
    bias-calibration samples, or a label; None: not run)."""
    def pct(a) -> str:
        return "not run" if a is None else f"{100 * a:.2f}"

    def label(key) -> str:
        return key if isinstance(key, str) else f"bias ({key})" if key else "off"

    def gap(row) -> str:
        a = row[TIMESTEPS.index(16)]
        return "-" if a is None else f"{100 * (ann - a):+.2f}"

    return ["| calibration | ANN | " + " | ".join(f"T={T}" for T in TIMESTEPS)
            + " | ANN - SNN at T=16 |", "|---" * (len(TIMESTEPS) + 3) + "|",
            *(f"| {label(key)} | {100 * ann:.2f} | " + " | ".join(pct(a) for a in row)
              + f" | {gap(row)} |" for key, row in accs.items())]


def lava_summary(lv: dict) -> str:
    """One sentence on a Lava confirmation run: accuracy, agreement, speed."""
    return (f"Lava (T={lv['T']}, first {lv['samples']} test samples): {100 * lv['acc']:.2f} % "
            f"(reference {100 * lv['ref']:.2f} %), spike counts "
            f"{'identical' if lv['identical'] else 'DIFFERENT'}; {lv['sps']:.2f} samples/s "
            f"({1000 * lv['wall'] / lv['steps']:.1f} ms per time step, {lv['steps']} steps "
            "including compilation)")


def section(quick: bool = False) -> str:
    export_dir = None if quick else Path("netx_exports")
    lines = ["## CNNs: accuracy (%) vs T, fixed point (Lava-exact reference)", "",
             "conv8-conv8-pool-conv16-pool-fc64-fc10, QCFS L=8 (quantization-aware), soft reset, "
             f"V_th/2 initial potential, bias calibration on {BIAS_CALIBRATION} training samples "
             "or off; average pooling folded into the next layer.", ""]
    for name, title in DATASETS.items():
        r = run_dataset(name, quick, export_dir)
        lv = r["lava"]
        lines += [
            f"### {title} ({r['n_test']} test samples; training {r['train_s']:.0f} s)",
            "",
            *accuracy_table(r["ann"], r["accs"]),
            "",
            lava_summary(lv) + f" vs reference {r['ref_sps']:.0f} samples/s on the same "
            f"samples. Synaptic connections after folding: {r['synapses']:,}. Slowest "
            f"conversion (with calibration, T={TIMESTEPS[-1]}): {r['convert_s']:.0f} s.",
            "",
            "Folds: " + "; ".join(r["notes"]) + ".",
            "",
        ]
    lines += [
        "Where Lava's time goes, measured per layer: the `lava_time` section.",
        "",
    ]
    return "\n".join(lines)
