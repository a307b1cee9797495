"""Accuracy of conversion methods vs T on MNIST and Fashion-MNIST (fixed point, Lava-exact).

For each dataset, three MLPs 784-256-256-10 are trained (ReLU, ThresholdReLU
with theta=1, QCFS with L=8 and trainable thresholds; same seed and schedule)
and converted per T with:

* ReLU + max balancing, soft reset, no shift (the classic data-based baseline);
* ReLU + 99.9th-percentile balancing, soft reset, no shift;
* ThresholdReLU + clip threshold + soft reset + V_th/(2T) bias shift (Deng & Gu),
  and its ablations (hard reset; no shift);
* QCFS (quantization-aware training) + V_th/2 initial potential + soft reset.

Accuracy is the fixed-point reference simulator's on the full test set; a Lava
run on the first 500 test samples confirms the QCFS network at T=16 (identical
predictions required). The QCFS networks at T=16 are exported to netx_exports/.
"""

from __future__ import annotations

import time
from pathlib import Path

import lava_convert as lc
from lava_convert.sim.reference import simulate_fixed
from lava_convert.sim.results import spike_differences
from lava_convert.zoo.data import load_dataset
from lava_convert.zoo.models import mlp
from lava_convert.zoo.train import accuracy, train_classifier

TIMESTEPS = (4, 8, 16, 32, 64, 128)
METHODS = [
    # (label, model, conversion settings)
    ("ReLU + max balancing (classic)", "relu", dict(balancing="max", shift="none")),
    ("ReLU + 99.9th percentile", "relu", dict(balancing="percentile", shift="none")),
    ("ThresholdReLU + soft reset + V_th/2T shift (Deng & Gu)", "threshold",
     dict(balancing="clip", shift="bias")),
    ("  ablation: hard reset + shift", "threshold", dict(balancing="clip", shift="bias",
                                                         reset="hard")),
    ("  ablation: soft reset, no shift", "threshold", dict(balancing="clip", shift="none")),
    ("  ablation: hard reset, no shift", "threshold", dict(balancing="clip", shift="none",
                                                           reset="hard")),
    ("QCFS L=8 (QAT) + soft reset + V_th/2 start", "qcfs", dict(balancing="clip", shift="v0")),
]
DATASETS = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}


def run_dataset(name: str, quick: bool, export_dir: Path | None) -> tuple[list[str], dict]:
    data = load_dataset(name)
    n_test = 1000 if quick else len(data.x_test)
    x_test, y_test = data.x_test[:n_test], data.y_test[:n_test]
    calib = data.calibration_sample(5000)
    epochs = 1 if quick else 10
    models, ann_acc, train_s = {}, {}, {}
    for act in ("relu", "threshold", "qcfs"):
        t0 = time.perf_counter()
        model = mlp((1, 28, 28), (256, 256), 10, act=act, threshold=1.0, levels=8, seed=0)
        models[act] = train_classifier(model, data.x_train, data.y_train, epochs=epochs, lr=1e-3,
                                       batch_size=128, seed=0)
        train_s[act] = time.perf_counter() - t0
        ann_acc[act] = accuracy(models[act], x_test, y_test)
    rows = []
    for label, act, settings in METHODS:
        accs = []
        for T in TIMESTEPS:
            snn = lc.convert(models[act], calibration=calib, timesteps=T, **settings)
            accs.append(simulate_fixed(snn.fixed, x_test, T).accuracy(y_test))
        rows.append((label, ann_acc[act], accs))
    # Lava confirms the QCFS network at T=16, which is exported.
    T, n_lava = 16, 50 if quick else 500
    best = lc.convert(models["qcfs"], calibration=calib, timesteps=T, shift="v0")
    ref = simulate_fixed(best.fixed, x_test, T)
    lava = lc.run_lava(best.fixed, x_test[:n_lava], T, progress=False)
    ref_lava = simulate_fixed(best.fixed, x_test[:n_lava], T)
    identical = not spike_differences(lava, ref_lava)
    lava_info = dict(T=T, samples=n_lava, lava=lava.accuracy(y_test[:n_lava]),
                     reference=ref_lava.accuracy(y_test[:n_lava]), identical=identical,
                     lava_s=lava.wall_time_s)
    if export_dir is not None:
        best.accuracy.update(ann=ann_acc["qcfs"], snn_reference=ref.accuracy(y_test),
                             snn_lava=lava_info["lava"], lava_samples=n_lava)
        best.export(export_dir / f"{name.replace('-', '_')}_mlp_qcfs.net")
    return rows, dict(ann=ann_acc, train_s=train_s, lava=lava_info, n_test=n_test)


def section(quick: bool = False) -> str:
    export_dir = None if quick else Path("netx_exports")
    lines = ["## Conversion methods: accuracy (%) vs T, fixed point (Lava-exact reference)", ""]
    for name, title in DATASETS.items():
        rows, info = run_dataset(name, quick, export_dir)
        lines += [
            f"### {title} ({info['n_test']} test samples), MLP 784-256-256-10",
            "",
            "| method | ANN | " + " | ".join(f"T={T}" for T in TIMESTEPS) +
            " | ANN - SNN at T=8 / 16 |",
            "|---|---" + "|---" * len(TIMESTEPS) + "|---|",
        ]
        for label, ann, accs in rows:
            gap = f"{100 * (ann - accs[1]):+.2f} / {100 * (ann - accs[2]):+.2f}"
            lines.append(f"| {label} | {100 * ann:.2f} | "
                         + " | ".join(f"{100 * a:.2f}" for a in accs) + f" | {gap} |")
        lv = info["lava"]
        lines += [
            "",
            f"Lava check (QCFS network, T={lv['T']}, first {lv['samples']} test samples): Lava "
            f"{100 * lv['lava']:.2f} %, reference {100 * lv['reference']:.2f} %, spike counts "
            f"{'identical' if lv['identical'] else 'DIFFERENT'} ({lv['lava_s']:.0f} s on Lava). "
            "Training time per model: "
            + ", ".join(f"{k} {v:.0f} s" for k, v in info["train_s"].items()) + ".",
            "",
        ]
    lines += ["Gap columns: ANN accuracy minus SNN accuracy in points (lower is better).", ""]
    return "\n".join(lines)
