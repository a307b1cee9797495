"""QCFS with its quantization levels matched to T, and the calibrations that close the rest.

The CNN of the ``cnn`` section (conv8-conv8-pool-conv16-pool-fc64-fc10) trained with QCFS
at L = 2, 4 and 8 levels on MNIST and Fashion-MNIST (4 epochs each, cached in
.data/models), converted with soft reset and a V_th/2 start at every T >= L of
:data:`TIMESTEPS`: without calibration, with bias calibration, and with potential then
bias calibration, with initial potentials calibrated per channel, and with potential and
bias calibration followed by readout calibration (512 training samples each). Fixed
point (Lava-exact reference) on the full test sets: accuracy and spikes per inference.

For each dataset the most accurate network at T=4 is exported to
netx_exports/<dataset>_cnn_qcfs_t4.net, after Lava confirms it spike for spike on the
first 500 test samples.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

import lava_convert as lc
from lava_convert.sim.reference import simulate_fixed
from lava_convert.zoo.data import load_dataset
from lava_convert.zoo.train import accuracy

from .cnn import DATASETS, EPOCHS, confirm_on_lava, export_confirmed, trained_cnn

LEVELS = (2, 4, 8)
TIMESTEPS = (2, 4, 8)
SAMPLES = 512
LAVA_SAMPLES = 500
EXPORT_T = 4


def methods(samples: int, per_channel: bool = True) -> dict[str, dict]:
    """Conversion settings compared, by label (``per_channel``: with the row of initial
    potentials calibrated per channel; the last row adds readout calibration to potential
    and bias calibration)."""
    rows = {"none": {}, "bias": {"bias_calibration": samples},
            "potential + bias": {"potential_calibration": samples,
                                 "bias_calibration": samples}}
    if per_channel:
        rows["potential per channel + bias"] = {"potential_calibration": samples,
                                                "potential_scope": "channel",
                                                "bias_calibration": samples}
    rows["potential + bias + readout"] = {"potential_calibration": samples,
                                          "bias_calibration": samples,
                                          "readout_calibration": samples}
    return rows


def level_rows(model, levels: int, calib: np.ndarray, x: np.ndarray, y: np.ndarray,
               samples: int, per_channel: bool = True) -> tuple[list[dict], dict]:
    """``model`` (QCFS at ``levels``) converted at each T >= L of :data:`TIMESTEPS` with
    each of :func:`methods`: one table row per calibration, and the networks by (T,
    calibration)."""
    ann = accuracy(model, x, y)
    rows, nets = [], {}
    for method, settings in methods(samples, per_channel).items():
        cells = {}
        for T in (T for T in TIMESTEPS if T >= levels):
            nets[T, method] = lc.convert(model, calibration=calib, timesteps=T, shift="v0",
                                         **settings)
            run = simulate_fixed(nets[T, method].fixed, x, T)
            cells[T] = (run.accuracy(y), sum(run.spikes_per_sample().values()))
        rows.append(dict(levels=levels, ann=ann, method=method, cells=cells))
    return rows, nets


def run_dataset(name: str, quick: bool, export_dir: Path | None) -> dict:
    data = load_dataset(name)
    n_test = 200 if quick else len(data.x_test)
    x, y = data.x_test[:n_test], data.y_test[:n_test]
    calib = data.calibration_sample(2000)
    rows, best, train_s = [], None, {}
    for levels in LEVELS[:1] if quick else LEVELS:
        model, train_s[levels] = trained_cnn(name, levels, data, quick)
        level, nets = level_rows(model, levels, calib, x, y, 64 if quick else SAMPLES)
        rows += level
        for row in level:
            acc = row["cells"].get(EXPORT_T, (None,))[0]
            if acc is not None and (best is None or acc > best[0]):
                best = (acc, nets[EXPORT_T, row["method"]], row["ann"], levels, row["method"])
    accuracy_t4, converted, ann, levels, method = best
    n_lava = 20 if quick else LAVA_SAMPLES
    lava = confirm_on_lava(converted, x[:n_lava], y[:n_lava], EXPORT_T)
    path = None if export_dir is None else export_confirmed(
        converted, export_dir / f"{name.replace('-', '_')}_cnn_qcfs_t4.net", lava, ann=ann,
        accuracy=accuracy_t4, samples=n_test)
    return dict(rows=rows, n_test=n_test, train_s=train_s,
                export=dict(levels=levels, method=method, acc=accuracy_t4, ann=ann, path=path,
                            lava_acc=lava["acc"], ref_acc=lava["ref"], samples=n_lava,
                            identical=lava["identical"]))


def table(rows: list[dict]) -> list[str]:
    head = "| L | ANN | calibration | " + " | ".join(f"T={T}" for T in TIMESTEPS) + \
        " | ANN - SNN at T=4 / 8 |"
    lines = [head, "|---" * (len(TIMESTEPS) + 4) + "|"]
    for row in rows:
        cells = [f"{100 * row['cells'][T][0]:.2f} / {row['cells'][T][1]:.0f}"
                 if T in row["cells"] else "T < L" for T in TIMESTEPS]
        gaps = [f"{100 * (row['ann'] - row['cells'][T][0]):+.2f}" if T in row["cells"] else "-"
                for T in (4, 8)]
        lines.append(f"| {row['levels']} | {100 * row['ann']:.2f} | {row['method']} | "
                     + " | ".join(cells) + f" | {' / '.join(gaps)} |")
    return lines


def section(quick: bool = False) -> str:
    torch.set_num_threads(2)
    export_dir = None if quick else Path("netx_exports")
    lines = ["## QCFS levels matched to T: accuracy (%) / spikes per inference, fixed point",
             "",
             f"The `cnn` section's CNN trained with QCFS at L levels ({EPOCHS} epochs), soft "
             f"reset, V_th/2 start; calibrations on {SAMPLES} training samples: bias (two "
             "passes, the second on the integer grid, kept only if it agrees better), "
             "potential (each layer's initial potential in eighths of its threshold, kept "
             "only if it agrees better) then bias; potential per channel: the same with one "
             "initial potential per output channel (per neuron of a dense layer); readout: "
             "potential and bias calibration, then the readout's weights refitted to the "
             "ANN's logits (least squares, ridge strength by leave-one-out, kept only if "
             "that error falls). Each T is its own conversion; accuracy of the Lava-exact "
             "reference.",
             ""]
    for name, title in DATASETS.items():
        r = run_dataset(name, quick, export_dir)
        e = r["export"]
        trained = ", ".join(f"L={L}: {'cached' if s is None else f'{s:.0f} s'}"
                            for L, s in r["train_s"].items())
        lines += [f"### {title} ({r['n_test']} test samples; training {trained})", "",
                  *table(r["rows"]), "",
                  f"Most accurate at T={EXPORT_T}: L={e['levels']}, calibration {e['method']}: "
                  f"{100 * e['acc']:.2f} % (ANN {100 * e['ann']:.2f} %, gap "
                  f"{100 * (e['ann'] - e['acc']):+.2f}). Lava on the first {e['samples']} test "
                  f"samples: {100 * e['lava_acc']:.2f} % (reference {100 * e['ref_acc']:.2f} %), "
                  f"spike counts {'identical' if e['identical'] else 'DIFFERENT'}"
                  + (f"; exported to {e['path']}." if e["path"] else "."), ""]
    return "\n".join(lines)
