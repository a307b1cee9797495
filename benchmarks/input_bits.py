"""The graded input's width against the first layer's weight resolution.

The input payload and the first layer's integer weights share its 24-bit state: each
input bit costs the weights one. On the peers' MLPs (one epoch on all of MNIST; plain
ReLU with ``balancing="auto"``, and QCFS L=4 with its clips, V_th/2 start and potential +
bias calibration, as in the ``peers`` section) and the ``qcfs_levels`` section's cached
MNIST CNN with QCFS L=2 (bias calibration), each converted at T = 4 and 8 with
``input_bits`` 4..8 and ``"auto"``: accuracy on the full MNIST test set (fixed point,
Lava-exact), the float SNN's accuracy, and the first layer's weight bits. Plain-ReLU
MLP: per-channel 99.9th-percentile thresholds with a V_th/2 start (SpikingJelly's
channel-wise mode with a half-threshold start, which it runs in float) too.
"""

from __future__ import annotations

import torch

import lava_convert as lc
from benchmarks.cnn import trained_cnn
from benchmarks.peers import CALIBRATION, as_relus, mnist_split, qcfs_twin, relu_mlp, trained
from lava_convert.sim.reference import simulate_fixed, simulate_float
from lava_convert.zoo.train import accuracy

WIDTHS = (4, 5, 6, 7, 8, "auto")
TIMESTEPS = (4, 8)


def rows(model, calib, x, y, settings: dict) -> list[str]:
    """One row per T: fixed-point accuracy per width, the width auto chose, float SNN."""
    out = []
    for T in TIMESTEPS:
        cells, chosen, floating = [], None, None
        for bits in WIDTHS:
            converted = lc.convert(model, calibration=calib, timesteps=T, input_bits=bits,
                                   **settings)
            acc = simulate_fixed(converted.fixed, x, T).accuracy(y)
            q = converted.fixed.quantization[0]
            cells.append(f"{100 * acc:.2f} ({q.weight_bits})")
            if bits == "auto":
                chosen = converted.fixed.input_bits
                floating = simulate_float(converted.snn, x, T).accuracy(y)
        out.append(f"| {T} | " + " | ".join(cells) + f" | {chosen} | {100 * floating:.2f} |")
    return out


def section(quick: bool = False) -> str:
    torch.set_num_threads(2)
    data, x, y, calib = mnist_split(quick)
    n_test = len(x)
    mlp = trained(qcfs_twin(relu_mlp), data, quick)
    cnn, _ = trained_cnn("mnist", 2, data, quick)
    networks = {
        "MLP with ReLU, auto balancing": (trained(relu_mlp, data, quick), {}),
        "the QCFS MLP's weights with ReLUs, per-channel p99.9, V_th/2 start": (
            as_relus(mlp), dict(balancing="percentile", percentile=99.9,
                                channel_thresholds=True, shift="v0")),
        "MLP with QCFS L=4, clips, V_th/2 start, potential + bias calibration": (
            mlp, dict(shift="v0", potential_calibration=CALIBRATION,
                      bias_calibration=CALIBRATION)),
        "CNN with QCFS L=2 (`qcfs_levels`), V_th/2 start, bias calibration": (
            cnn, dict(shift="v0", bias_calibration=512)),
    }
    head = "| T | " + " | ".join(f"{b} bits" if b != "auto" else "auto" for b in WIDTHS) + \
        " | auto chose | float SNN |"
    lines = ["## Input width: accuracy (%) and the first layer's weight bits", "",
             f"MNIST, {n_test} test images, fixed point (Lava-exact reference); each cell: "
             "accuracy (bits the first layer's largest integer weight uses). `auto` picks "
             "the width whose quantized first layer reproduces the real-valued current on "
             "the calibration samples most closely (`choose_input_bits`); the float SNN is "
             "that conversion without quantization.", ""]
    for name, (model, settings) in networks.items():
        lines += [f"**{name}** (ANN {100 * accuracy(model, x, y):.2f} %)", "", head,
                  "|---" * (len(WIDTHS) + 3) + "|", *rows(model, calib, x, y, settings), ""]
    return "\n".join(lines)
