"""A small ResNet on Fashion-MNIST: accuracy vs T (fixed point), Lava confirmation.

``lava_convert.zoo.models.resnet``: stem conv8, three stages of one basic block (8, 16, 32
channels; the 2nd and 3rd halve the resolution with a strided 1x1 conv + BN shortcut,
the first has an identity shortcut), global average pooling (folded into the
classifier), Linear. QCFS activations (L=4, trainable thresholds) everywhere,
converted with soft reset and a V_th/2 initial potential, with and without bias
calibration, and with potential then bias calibration at small T. Accuracy is the
fixed-point reference simulator's on the full test set. At T=16 and at T=4 the more
accurate calibrated network is exported to netx_exports/ once Lava confirms it spike
for spike on the first 500 test samples (two shards).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.cnn import (
    POTENTIAL_TIMESTEPS,
    accuracy_table,
    best_calibrated,
    confirm_on_lava,
    export_confirmed,
    lava_summary,
    sweep,
)
from lava_convert.zoo.data import load_dataset
from lava_convert.zoo.models import resnet
from lava_convert.zoo.train import accuracy, train_classifier

BIAS_CALIBRATION = 512
EPOCHS = 8
LEVELS = 4
LAVA_SAMPLES = 500
EXPORT_T4 = "fashion_mnist_resnet_qcfs_t4.net"
#: Calibrated conversions at larger T are skipped (and reported so) past this many seconds.
SWEEP_BUDGET_S = 600
EXPORT = "fashion_mnist_resnet_qcfs.net"
#: The trained ANN is kept here (git-ignored) so a rerun skips the training.
MODEL_CACHE = Path(".data/models/fashion_mnist_resnet_l4.pt")


def run(quick: bool, export_dir: Path | None) -> dict:
    data = load_dataset("fashion-mnist")
    n_test = 300 if quick else len(data.x_test)
    x_test, y_test = data.x_test[:n_test], data.y_test[:n_test]
    calib = data.x_train[np.random.default_rng(0).choice(len(data.x_train), 2000, replace=False)]
    n_train = 3000 if quick else len(data.x_train)
    t0 = time.perf_counter()
    model = resnet(levels=LEVELS)
    if not quick and MODEL_CACHE.is_file():  # trained by this recipe before
        model.load_state_dict(torch.load(MODEL_CACHE, weights_only=True))
        train_s = None
    else:
        model = train_classifier(model, data.x_train[:n_train], data.y_train[:n_train],
                                 epochs=1 if quick else EPOCHS, lr=2e-3, batch_size=128, seed=0)
        train_s = time.perf_counter() - t0
        if not quick:
            MODEL_CACHE.parent.mkdir(parents=True, exist_ok=True)
            torch.save(model.state_dict(), MODEL_CACHE)
    model.eval()
    ann = accuracy(model, x_test, y_test)
    n_lava = 10 if quick else LAVA_SAMPLES
    accs, nets, convert_s = sweep(model, calib, x_test, y_test,
                                  samples=64 if quick else BIAS_CALIBRATION,
                                  budget_s=SWEEP_BUDGET_S)
    confirmations = {}
    for T, filename in ((16, EXPORT), (4, EXPORT_T4)):
        method, acc = best_calibrated(accs, nets, T)
        lava = confirm_on_lava(nets[T, method], x_test[:n_lava], y_test[:n_lava], T, workers=2)
        path = None if export_dir is None else export_confirmed(
            nets[T, method], export_dir / filename, lava, ann=ann, accuracy=acc,
            samples=n_test)
        confirmations[T] = dict(lava, file=filename, path=path,
                                method=method if isinstance(method, str) else "bias")
    best = nets[16, BIAS_CALIBRATION]
    return dict(ann=ann, accs=accs, n_test=n_test, train_s=train_s, convert_s=convert_s,
                notes=[n for n in best.ann.notes if "residual" in n or "pooling" in n],
                warnings=list(best.warnings), lava=confirmations)


def section(quick: bool = False) -> str:
    r = run(quick, None if quick else Path("netx_exports"))
    return "\n".join([
        "## ResNet on Fashion-MNIST: accuracy (%) vs T, fixed point (Lava-exact reference)",
        "",
        "`lava_convert.zoo.models.resnet()`: stem conv8, three stages of one basic block (8, 16, "
        "32 channels; identity shortcut, then two strided 1x1 conv + BN shortcuts), global "
        f"average pooling, Linear; QCFS L={LEVELS}, {EPOCHS} epochs. Soft reset, V_th/2 initial "
        f"potential, bias calibration on {BIAS_CALIBRATION} training samples or off, or "
        f"potential then bias calibration (at T = {', '.join(map(str, POTENTIAL_TIMESTEPS))}). "
        "Each "
        "residual add is one neuron group fed by two synapses; in Lava each shortcut passes "
        "a one-step delay line so both paths arrive together.",
        "",
        f"{r['n_test']} test samples; training "
        + ("skipped (model cached by an earlier run of this section)" if r["train_s"] is None
           else f"{r['train_s']:.0f} s") + ". Without bias "
        "calibration nothing depends on T (V_th/2 start), so that row is one run read after "
        "each T; with it, each T is its own conversion.",
        "",
        *accuracy_table(r["ann"], r["accs"]),
        "",
        *(f"T={lv['T']}: {lv['method']} calibration (the more accurate at T={lv['T']}), "
          + (f"exported to {lv['path']}" if lv["path"] else f"{lv['file']} not exported")
          + ". " + lava_summary(lv) + " (two shards)." for lv in r["lava"].values()),
        "",
        f"Slowest conversion with calibration: {r['convert_s']:.0f} s.",
        "",
        "Graph: " + "; ".join(r["notes"]) + ".",
        "",
        "Quantization warnings: " + ("; ".join(r["warnings"]) or "none") + ".",
        "",
    ])
