"""A small ResNet on Fashion-MNIST: accuracy vs T (fixed point), Lava confirmation.

``lava_convert.zoo.models.resnet``: stem conv8, three stages of one basic block (8, 16, 32
channels; the 2nd and 3rd halve the resolution with a strided 1x1 conv + BN shortcut,
the first has an identity shortcut), global average pooling (folded into the
classifier), Linear. QCFS activations (L=4, trainable thresholds) everywhere,
converted with soft reset and a V_th/2 initial potential, with and without bias
calibration, and with potential then bias calibration at small T. Accuracy is the
fixed-point reference simulator's on the full test set. The calibrated T=16 network and
the more accurate calibrated T=4 network are exported to netx_exports/ once Lava
confirms them spike for spike on the first 500 test samples (two shards).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

import lava_convert as lc
from benchmarks.cnn import TIMESTEPS, accuracy_table, lava_summary
from lava_convert.sim.reference import simulate_fixed
from lava_convert.zoo.data import load_dataset
from lava_convert.zoo.models import resnet
from lava_convert.zoo.train import accuracy, train_classifier

BIAS_CALIBRATION = 512
EPOCHS = 8
LEVELS = 4
LAVA_SAMPLES = 500
#: T values also converted with potential then bias calibration.
POTENTIAL_TIMESTEPS = (4, 8, 16)
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
    settings = dict(calibration=calib, shift="v0", bias_calibration=BIAS_CALIBRATION)
    # without calibration (V_th/2 start) nothing depends on T: one run gives every T
    plain = lc.convert(model, calibration=calib, timesteps=TIMESTEPS[-1], shift="v0")
    curve = simulate_fixed(plain.fixed, x_test, TIMESTEPS[-1]).accuracy_curve(y_test)
    accs = {0: [float(curve[T - 1]) for T in TIMESTEPS], BIAS_CALIBRATION: [],
            "potential + bias": []}
    convert_s, t_sweep, nets = 0.0, time.perf_counter(), {}
    for T in TIMESTEPS:
        if time.perf_counter() - t_sweep > SWEEP_BUDGET_S and T not in (4, 16):
            accs[BIAS_CALIBRATION].append(None)
            continue
        t0 = time.perf_counter()
        nets[T, "bias"] = lc.convert(model, timesteps=T, **settings)
        convert_s = max(convert_s, time.perf_counter() - t0)
        accs[BIAS_CALIBRATION].append(
            simulate_fixed(nets[T, "bias"].fixed, x_test, T).accuracy(y_test))
    for T in TIMESTEPS:
        if T not in POTENTIAL_TIMESTEPS:
            accs["potential + bias"].append(None)
            continue
        nets[T, "potential"] = lc.convert(model, timesteps=T,
                                          potential_calibration=BIAS_CALIBRATION, **settings)
        accs["potential + bias"].append(
            simulate_fixed(nets[T, "potential"].fixed, x_test, T).accuracy(y_test))
    i4 = TIMESTEPS.index(4)
    method4 = "potential" if accs["potential + bias"][i4] > accs[BIAS_CALIBRATION][i4] else "bias"
    shipped = {16: (nets[16, "bias"], EXPORT, accs[BIAS_CALIBRATION][TIMESTEPS.index(16)]),
               4: (nets[4, method4], EXPORT_T4,
                   max(accs["potential + bias"][i4], accs[BIAS_CALIBRATION][i4]))}
    confirmations = {}
    for T, (net, filename, acc) in shipped.items():
        ref = simulate_fixed(net.fixed, x_test[:n_lava], T)
        lava = lc.run_lava(net.fixed, x_test[:n_lava], T, progress=False, workers=2)
        identical = all(np.array_equal(lava.spike_counts[k], ref.spike_counts[k])
                        for k in lava.spike_counts)
        confirmations[T] = dict(T=T, samples=n_lava, acc=lava.accuracy(y_test[:n_lava]),
                                ref=ref.accuracy(y_test[:n_lava]), identical=identical,
                                sps=n_lava / lava.wall_time_s, wall=lava.wall_time_s,
                                steps=lava.info["steps"], file=filename)
        if export_dir is not None and identical:
            net.accuracy.update(ann=ann, snn_reference=acc, reference_samples=n_test,
                                snn_lava=lava.accuracy(y_test[:n_lava]), lava_samples=n_lava)
            net.export(export_dir / filename)
    best = nets[16, "bias"]
    return dict(ann=ann, accs=accs, n_test=n_test, train_s=train_s,
                convert_s=convert_s,
                notes=[n for n in best.ann.notes if "residual" in n or "pooling" in n],
                warnings=list(best.warnings), lava=confirmations,
                method4="potential + bias" if method4 == "potential" else "bias")


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
        *(f"{lv['file']}: " + lava_summary(lv) + " (two shards)." for lv in r["lava"].values()),
        "",
        f"The T=4 export uses {r['method4']} calibration (the more accurate at T=4). Slowest "
        f"conversion (bias calibration, T={TIMESTEPS[-1]}): {r['convert_s']:.0f} s.",
        "",
        "Graph: " + "; ".join(r["notes"]) + ".",
        "",
        "Quantization warnings: " + ("; ".join(r["warnings"]) or "none") + ".",
        "",
    ])
