"""A small ResNet on Fashion-MNIST: accuracy vs T (fixed point), Lava confirmation.

``lava_convert.zoo.models.resnet``: stem conv8, three stages of one basic block (8, 16,
32 channels; the 2nd and 3rd halve the resolution with a strided 1x1 conv + BN shortcut,
the first has an identity shortcut), global average pooling (folded into the
classifier), Linear. QCFS activations (L=4, trainable thresholds) everywhere, converted
with soft reset and a V_th/2 initial potential, with and without bias calibration, and
at small T with potential then bias calibration and with bias then readout calibration.
Accuracy is the fixed-point reference simulator's on the full test set. The same ResNet
trained with QCFS at L=2 (levels matched to small T, as in the ``qcfs_levels`` section)
is converted at T = 2, 4 and 8 with each calibration. At T=16 the most accurate
calibrated L=4 network, at T=4 the most accurate calibrated network of either training,
is exported to netx_exports/ once Lava confirms it spike for spike on the first 500 test
samples (two shards).
"""

from __future__ import annotations

from pathlib import Path

import torch

from benchmarks.cnn import (
    POTENTIAL_TIMESTEPS,
    accuracy_table,
    best_calibrated,
    confirm_on_lava,
    export_confirmed,
    lava_summary,
    sweep,
    trained_cached,
)
from benchmarks.qcfs_levels import level_rows
from benchmarks.qcfs_levels import table as levels_table
from lava_convert.zoo.data import load_dataset
from lava_convert.zoo.models import resnet
from lava_convert.zoo.train import accuracy

BIAS_CALIBRATION = 512
EPOCHS = 8
LEVELS = 4
#: Levels of the second network, trained for small T (QCFS levels matched to T).
MATCHED_LEVELS = 2
LAVA_SAMPLES = 500
EXPORT_T4 = "fashion_mnist_resnet_qcfs_t4.net"
#: Calibrated conversions at larger T are skipped (and reported so) past this many seconds.
SWEEP_BUDGET_S = 600
EXPORT = "fashion_mnist_resnet_qcfs.net"


def trained_resnet(levels: int, data, quick: bool) -> tuple[torch.nn.Module, float | None]:
    """The ResNet with QCFS at ``levels``, trained (:data:`EPOCHS` epochs, seed 0) or read
    from .data/models; and the training seconds (``None``: cached)."""
    return trained_cached(resnet(levels=levels),
                          Path(f".data/models/fashion_mnist_resnet_l{levels}.pt"),
                          data, quick, EPOCHS)


def run(quick: bool, export_dir: Path | None) -> dict:
    data = load_dataset("fashion-mnist")
    n_test = 300 if quick else len(data.x_test)
    x_test, y_test = data.x_test[:n_test], data.y_test[:n_test]
    calib = data.calibration_sample(2000)
    model, train_s = trained_resnet(LEVELS, data, quick)
    ann = accuracy(model, x_test, y_test)
    n_lava = 10 if quick else LAVA_SAMPLES
    samples = 64 if quick else BIAS_CALIBRATION
    accs, nets, convert_s = sweep(model, calib, x_test, y_test, samples=samples,
                                  budget_s=SWEEP_BUDGET_S)
    small, small_train_s = trained_resnet(MATCHED_LEVELS, data, quick)
    # initial potentials per layer only: this section runs about an hour already
    small_rows, small_nets = level_rows(small, MATCHED_LEVELS, calib, x_test, y_test, samples,
                                        per_channel=False)
    # T=4 export: the most accurate calibrated network at T=4 of either training
    method, acc = best_calibrated(accs, nets, 4)

    def label(method) -> str:
        return "bias" if method == samples else method

    candidates = {(LEVELS, label(method)): (acc, nets[4, method], ann)}
    candidates.update({(MATCHED_LEVELS, row["method"]): (row["cells"][4][0],
                                                          small_nets[4, row["method"]], row["ann"])
                       for row in small_rows if row["method"] != "none"})
    best_4 = max(candidates, key=lambda k: candidates[k][0])
    method_16, acc_16 = best_calibrated(accs, nets, 16)
    exports = {16: (EXPORT, nets[16, method_16], acc_16, ann,
                    f"L={LEVELS}, {label(method_16)}"),
               4: (EXPORT_T4, candidates[best_4][1], candidates[best_4][0],
                   candidates[best_4][2], f"L={best_4[0]}, {best_4[1]}")}
    confirmations = {}
    for T, (filename, net, acc_T, ann_T, chosen) in exports.items():
        lava = confirm_on_lava(net, x_test[:n_lava], y_test[:n_lava], T, workers=2)
        path = None if export_dir is None else export_confirmed(
            net, export_dir / filename, lava, ann=ann_T, accuracy=acc_T, samples=n_test)
        confirmations[T] = dict(lava, file=filename, path=path, method=chosen,
                                snn=acc_T, ann=ann_T)
    best = nets[16, samples]
    return dict(ann=ann, accs=accs, n_test=n_test, train_s=train_s, convert_s=convert_s,
                small_rows=small_rows, small_train_s=small_train_s,
                notes=[n for n in best.ann.notes if "residual" in n or "pooling" in n],
                warnings=list(best.warnings), lava=confirmations)


def trained(seconds: float | None) -> str:
    return ("skipped (model cached by an earlier run of this section)" if seconds is None
            else f"{seconds:.0f} s")


def section(quick: bool = False) -> str:
    r = run(quick, None if quick else Path("netx_exports"))
    return "\n".join([
        "## ResNet on Fashion-MNIST: accuracy (%) vs T, fixed point (Lava-exact reference)",
        "",
        "`lava_convert.zoo.models.resnet()`: stem conv8, three stages of one basic block (8, 16, "
        "32 channels; identity shortcut, then two strided 1x1 conv + BN shortcuts), global "
        f"average pooling, Linear; QCFS L={LEVELS}, {EPOCHS} epochs. Soft reset, V_th/2 initial "
        f"potential, bias calibration on {BIAS_CALIBRATION} training samples or off, or (at "
        f"T = {', '.join(map(str, POTENTIAL_TIMESTEPS))}) potential then bias calibration, or "
        "bias then readout calibration. Each "
        "residual add is one neuron group fed by two synapses; in Lava each shortcut passes "
        "a one-step delay line so both paths arrive together.",
        "",
        f"{r['n_test']} test samples; training " + trained(r["train_s"]) + ". Without bias "
        "calibration nothing depends on T (V_th/2 start), so that row is one run read after "
        "each T; with it, each T is its own conversion.",
        "",
        *accuracy_table(r["ann"], r["accs"]),
        "",
        f"### The same ResNet with QCFS L={MATCHED_LEVELS}: accuracy % / spikes per inference",
        "",
        f"Trained like the L={LEVELS} network (training " + trained(r["small_train_s"])
        + f"); calibrations on {BIAS_CALIBRATION} training samples as in the `qcfs_levels` "
        "section (readout: the readout's weights refitted to the ANN's logits after "
        "potential and bias calibration); each T its own conversion.",
        "",
        *levels_table(r["small_rows"]),
        "",
        *(f"T={lv['T']} export: {lv['method']} calibration (the most accurate calibrated "
          f"network at T={lv['T']}: {100 * lv['snn']:.2f} %, ANN {100 * lv['ann']:.2f} %, gap "
          f"{100 * (lv['ann'] - lv['snn']):+.2f}), "
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
