"""CNNs on MNIST and Fashion-MNIST: accuracy vs T (fixed point), Lava confirmation and speed.

The network is conv-conv-pool-conv-pool-fc-fc (28x28x1 -> 8 -> 8 -> pool -> 16 -> pool
-> 64 -> 10) with QCFS activations (L=8, trainable thresholds, quantization-aware
training; cached in .data/models), converted with soft reset and a V_th/2 initial
potential, without calibration, with bias calibration (512 training samples), and at
T = 4, 8, 16 with potential then bias calibration and with bias then readout calibration.
Pooling is folded into the following
layer. Accuracy is the fixed-point reference simulator's on the full test set; Lava
runs the most accurate calibrated T=16 network on the first 500 test samples
(identical spike counts required) and gives Lava's throughput; that network is
exported to netx_exports/ once Lava confirms it.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

import lava_convert as lc
from lava_convert.sim.reference import simulate_fixed
from lava_convert.sim.results import spike_differences
from lava_convert.zoo.data import load_dataset
from lava_convert.zoo.train import accuracy, train_classifier

TIMESTEPS = (4, 8, 16, 32, 64, 128)
#: T values also converted with potential then bias calibration (its cost grows with T).
POTENTIAL_TIMESTEPS = (4, 8, 16)
#: Row label of potential then bias calibration.
POTENTIAL = "potential + bias"
READOUT = "bias + readout"
BIAS_CALIBRATION = 512
LEVELS = 8
EPOCHS = 4
LAVA_SAMPLES = 500
#: Calibrated conversions at T other than 4 and 16 are skipped (and reported so) past
#: this many seconds of a sweep.
SWEEP_BUDGET_S = 900
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


def trained_cnn(name: str, levels: int, data, quick: bool) -> tuple[nn.Module, float | None]:
    """The QCFS CNN at ``levels`` on dataset ``name``, trained (4 epochs, seed 0) or read
    from the cache in .data/models; and the training seconds (``None``: cached)."""
    return trained_cached(mnist_cnn(levels),
                          Path(f".data/models/{name.replace('-', '_')}_cnn_qcfs_l{levels}.pt"),
                          data, quick, EPOCHS)


def trained_cached(model: nn.Module, cache: Path, data, quick: bool,
                   epochs: int) -> tuple[nn.Module, float | None]:
    """``model`` trained on ``data`` (``epochs`` epochs, seed 0; one epoch on 3000 images
    when ``quick``) or read from ``cache`` (git-ignored, so a rerun skips the training);
    and the training seconds (``None``: cached)."""
    if not quick and cache.is_file():
        model.load_state_dict(torch.load(cache, weights_only=True))
        return model.eval(), None
    n = 3000 if quick else len(data.x_train)
    start = time.perf_counter()
    train_classifier(model, data.x_train[:n], data.y_train[:n], epochs=1 if quick else epochs,
                     lr=2e-3, batch_size=128, seed=0)
    if not quick:
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), cache)
    return model.eval(), time.perf_counter() - start


def sweep(model: nn.Module, calib: np.ndarray, x: np.ndarray, y: np.ndarray, *,
          samples: int, budget_s: float = float("inf")) -> tuple[dict, dict, float]:
    """Accuracy of ``model`` converted (soft reset, V_th/2 start) at each of
    :data:`TIMESTEPS`: without calibration (nothing then depends on T: one run read after
    each T), with bias calibration on ``samples`` calibration samples (each T its own
    conversion; past ``budget_s`` seconds only T=4 and 16 are still converted), and with
    potential then bias calibration and with bias then readout calibration at
    :data:`POTENTIAL_TIMESTEPS`.

    Returns (accuracies by row label, one per T or ``None`` where not run; the calibrated
    networks by (T, row label); the slowest conversion in seconds)."""
    plain = lc.convert(model, calibration=calib, timesteps=TIMESTEPS[-1], shift="v0")
    curve = simulate_fixed(plain.fixed, x, TIMESTEPS[-1]).accuracy_curve(y)
    accs = {0: [float(curve[T - 1]) for T in TIMESTEPS], samples: [], POTENTIAL: [],
            READOUT: []}
    nets, slowest, begun = {}, 0.0, time.perf_counter()
    for label, settings in ((samples, {}), (POTENTIAL, {"potential_calibration": samples}),
                            (READOUT, {"readout_calibration": samples})):
        for T in TIMESTEPS:
            over = time.perf_counter() - begun > budget_s and T not in (4, 16)
            if over or (label != samples and T not in POTENTIAL_TIMESTEPS):
                accs[label].append(None)
                continue
            start = time.perf_counter()
            nets[T, label] = lc.convert(model, calibration=calib, timesteps=T, shift="v0",
                                        bias_calibration=samples, **settings)
            slowest = max(slowest, time.perf_counter() - start)
            accs[label].append(simulate_fixed(nets[T, label].fixed, x, T).accuracy(y))
    return accs, nets, slowest


def best_calibrated(accs: dict, nets: dict, T: int) -> tuple[str | int, float]:
    """The calibrated row most accurate at ``T`` (on ties the first of bias, bias +
    readout, potential + bias) and its accuracy."""
    i = TIMESTEPS.index(T)
    label = max((key for key in accs if key and (T, key) in nets), key=lambda key: (
        accs[key][i], key != POTENTIAL, key != READOUT))
    return label, accs[label][i]


def confirm_on_lava(net, x: np.ndarray, y: np.ndarray, T: int, *, workers: int = 1) -> dict:
    """Lava against the reference on ``x``: accuracies, identical spike counts, speed."""
    ref = simulate_fixed(net.fixed, x, T)
    lava = lc.run_lava(net.fixed, x, T, progress=False, workers=workers)
    identical = not spike_differences(lava, ref)
    return dict(T=T, samples=len(x), acc=lava.accuracy(y), ref=ref.accuracy(y),
                identical=identical, sps=len(x) / lava.wall_time_s, wall=lava.wall_time_s,
                steps=lava.info["steps"], ref_sps=len(x) / ref.wall_time_s)


def export_confirmed(net, path: Path, lava: dict, *, ann: float, accuracy: float,
                     samples: int) -> Path | None:
    """Export ``net`` to ``path`` with its measured accuracies if Lava confirmed it spike
    for spike (else nothing is written)."""
    if not lava["identical"]:
        return None
    net.accuracy.update(ann=ann, snn_reference=accuracy, reference_samples=samples,
                        snn_lava=lava["acc"], lava_samples=lava["samples"])
    return net.export(path)


def run_dataset(name: str, quick: bool, export_dir: Path | None) -> dict:
    data = load_dataset(name)
    n_test = 500 if quick else len(data.x_test)
    x_test, y_test = data.x_test[:n_test], data.y_test[:n_test]
    calib = data.calibration_sample(2000)
    model, train_s = trained_cnn(name, LEVELS, data, quick)
    ann = accuracy(model, x_test, y_test)
    accs, nets, convert_s = sweep(model, calib, x_test, y_test,
                                  samples=64 if quick else BIAS_CALIBRATION,
                                  budget_s=SWEEP_BUDGET_S)
    T, n_lava = 16, 20 if quick else LAVA_SAMPLES
    method, acc = best_calibrated(accs, nets, T)
    best = nets[T, method]
    lava = confirm_on_lava(best, x_test[:n_lava], y_test[:n_lava], T)
    path = None if export_dir is None else export_confirmed(
        best, export_dir / f"{name.replace('-', '_')}_cnn_qcfs.net", lava, ann=ann,
        accuracy=acc, samples=n_test)
    synapses = sum(int(np.prod(l.weight.shape)) * (int(np.prod(l.shape[1:]))
                   if l.kind == "conv" else 1) for l in best.fixed.layers)
    return dict(ann=ann, accs=accs, n_test=n_test, train_s=train_s, convert_s=convert_s,
                notes=best.ann.notes, lava=lava, synapses=synapses, path=path,
                method=method if isinstance(method, str) else "bias")


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
             f"conv8-conv8-pool-conv16-pool-fc64-fc10, QCFS L={LEVELS} (quantization-aware, "
             f"{EPOCHS} epochs), soft reset, V_th/2 initial potential; no calibration, bias "
             f"calibration on {BIAS_CALIBRATION} training samples, or (at T = "
             f"{', '.join(map(str, POTENTIAL_TIMESTEPS))}) potential then bias calibration, "
             "or bias then readout calibration (the readout's weights refitted to the ANN's "
             "logits); average "
             "pooling folded into the next layer.", ""]
    for name, title in DATASETS.items():
        r = run_dataset(name, quick, export_dir)
        lv = r["lava"]
        trained = "cached" if r["train_s"] is None else f"{r['train_s']:.0f} s"
        lines += [
            f"### {title} ({r['n_test']} test samples; training {trained})",
            "",
            *accuracy_table(r["ann"], r["accs"]),
            "",
            f"T=16 export: {r['method']} calibration (the most accurate at T=16)"
            + (f", {r['path']}" if r["path"] else ", not exported") + ". "
            + lava_summary(lv) + f" vs reference {lv['ref_sps']:.0f} samples/s on the same "
            f"samples. Synaptic connections after folding: {r['synapses']:,}. Slowest "
            f"conversion with calibration: {r['convert_s']:.0f} s.",
            "",
            "Folds: " + "; ".join(r["notes"]) + ".",
            "",
        ]
    lines += [
        "Where Lava's time goes, measured per layer: the `lava_time` section.",
        "",
    ]
    return "\n".join(lines)
