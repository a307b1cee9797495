"""``target="sdnn"`` beside the rate-coded targets: accuracy against the ANN after T steps,
messages and synaptic operations per inference.

Networks (MNIST and Fashion-MNIST, whole test sets; 2000 calibration images):

* the CNN of the ``cnn`` section (conv8-conv8-pool-conv16-pool-fc64-fc10, BatchNorm)
  trained with plain ReLUs, 4 epochs (seed 0; cached in ``.data/models``): what the
  sigma-delta target converts exactly;
* the same CNN trained with QCFS (L=8), the shipped exports' source: the sigma-delta
  target keeps its clips (two ReLU populations each) but not its staircase;
* the ResNet of the ``resnet`` section: refused (residual shortcuts).

Sigma-delta: one conversion (``ConversionConfig.for_target("sdnn")``), simulated from rest
for 16 steps; its accuracy after T steps is read from the predictions after each step
(the run to T is the first T steps of the run to 16); its traffic is counted for runs of
depth + 1 steps (every layer has heard from the input) and of 16. Rate-coded, at T=4 and T=16: the
default target (``balancing="auto"``) and ``stock-netx``, each converted for its T.
Every accuracy is the fixed-point reference's (Lava-exact; sigma-delta equal to stock
NetX message for message, tests/pipeline/test_sdnn_target.py). Per inference:
messages (sigma-delta: non-zero graded messages of every layer, the Delta input's
included, which takes the host's input as its state; rate-coded: spikes, and the graded
input's non-zero payloads each step, which its first synapse reads),
synaptic operations (each message or spike times the synapses it drives), and bits sent
(16 per sigma-delta message; 1 per spike, the input's payload width per input event).
Rows are :class:`SdnnRow` records, also written to ``benchmarks/sdnn.csv``.
"""

from __future__ import annotations

import csv
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn

import lava_convert as lc
from benchmarks.cnn import EPOCHS, mnist_cnn, trained_cached, trained_cnn
from lava_convert.errors import UnsupportedModuleError
from lava_convert.hw.loihi import SDNN_MESSAGE_BITS
from lava_convert.report.cost import run_cost
from lava_convert.zoo.data import load_dataset
from lava_convert.zoo.models import resnet
from lava_convert.zoo.train import accuracy

SDNN_STEPS = (2, 3, 4, 5, 6, 8, 16)
RATE_STEPS = (4, 16)
CALIBRATION = 2000
CSV = Path(__file__).with_name("sdnn.csv")


@dataclass(frozen=True)
class SdnnRow:
    dataset: str
    network: str
    target: str
    timesteps: int
    ann: float
    snn: float
    messages: float
    synops: float
    kbits: float
    convert_s: float


def relu_cnn(seed: int = 0) -> nn.Sequential:
    """The ``cnn`` section's CNN with plain ReLUs."""
    model = mnist_cnn(seed=seed)
    for i, module in enumerate(model):
        if isinstance(module, lc.QCFS):
            model[i] = nn.ReLU()
    return model


def _traffic(net, result, x) -> tuple[float, float, float]:
    """(messages or spikes, synaptic operations, kbit sent) per inference."""
    cost = run_cost(net, result, x)
    graded = cost.layers[0].spikes  # the input's non-zero payloads, one per step
    if net.neuron_model == "sdnn":  # the Delta input layer takes them as its state
        events = sum(layer.spikes for layer in cost.layers[1:])
        return events, cost.synops, SDNN_MESSAGE_BITS * events / 1000
    events = sum(layer.spikes for layer in cost.layers)
    return events, cost.synops, ((events - graded) + net.input_bits * graded) / 1000


def _rows(dataset: str, name: str, model: nn.Module, data, x, y) -> list[SdnnRow]:
    ann = accuracy(model, x, y)
    calib = data.calibration_sample(CALIBRATION)
    rows = []
    start = time.perf_counter()
    snn = lc.convert(model, calibration=calib, progress=False,
                     config=lc.ConversionConfig.for_target("sdnn", timesteps=max(SDNN_STEPS)))
    convert_s = time.perf_counter() - start
    settled = len(snn.fixed.layers)  # one step per synapse, and one
    runs = {T: lc.simulate(snn.fixed, x, T) for T in (settled, max(SDNN_STEPS))}
    curve = runs[max(SDNN_STEPS)].accuracy_curve(y)  # a run to T is the first T steps
    for T in SDNN_STEPS:
        traffic = _traffic(snn.fixed, runs[T], x) if T in runs else (np.nan,) * 3
        rows.append(SdnnRow(dataset, name, "sdnn", T, ann, float(curve[T - 1]), *traffic,
                            convert_s))
        print(rows[-1], flush=True)
    for target in ("lava-convert", "stock-netx"):
        for T in RATE_STEPS:
            start = time.perf_counter()
            converted = lc.convert(model, calibration=calib, progress=False,
                                   config=lc.ConversionConfig.for_target(target, timesteps=T))
            convert_s = time.perf_counter() - start
            run = lc.simulate(converted.fixed, x, T)
            rows.append(SdnnRow(dataset, name, target, T, ann, run.accuracy(y),
                                *_traffic(converted.fixed, run, x), convert_s))
            print(rows[-1], flush=True)
    return rows


def section(quick: bool) -> str:
    rows, notes = [], []
    for dataset in ("mnist", "fashion-mnist"):
        data = load_dataset(dataset)
        n = 500 if quick else len(data.x_test)
        x, y = data.x_test[:n], data.y_test[:n]
        cache = Path(f".data/models/{dataset.replace('-', '_')}_cnn_relu.pt")
        relu, _ = trained_cached(relu_cnn(), cache, data, quick, EPOCHS)
        rows += _rows(dataset, "CNN, ReLU", relu, data, x, y)
        qcfs, _ = trained_cnn(dataset, 8, data, quick)
        rows += _rows(dataset, "CNN, QCFS L=8", qcfs, data, x, y)
    try:
        lc.convert(resnet(act="relu"), calibration=x[:16], progress=False,
                   config=lc.ConversionConfig.for_target("sdnn"))
    except UnsupportedModuleError as exc:
        notes.append(f"ResNet (the `resnet` section's, ReLU): refused: {exc}")
    with CSV.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[f.name for f in fields(SdnnRow)])
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)
    return _render(rows, notes, n)


def _render(rows: list[SdnnRow], notes: list[str], n: int) -> str:
    lines = [f"MNIST and Fashion-MNIST, {n} test images each; {CALIBRATION} calibration "
             "images. Rows also in `benchmarks/sdnn.csv`. Sigma-delta: one conversion, "
             "accuracy after T steps of a run from rest (traffic for T = depth + 1 and 16, "
             "'-' elsewhere); the CNN has 5 layers of synapses "
             "after its input layer, so every layer has heard from the input from T=6 on "
             "(depth + 1). Rate-coded: converted for each T.", ""]
    for (dataset, network) in dict.fromkeys((r.dataset, r.network) for r in rows):
        group = [r for r in rows if (r.dataset, r.network) == (dataset, network)]
        ann = group[0].ann
        lines += [f"**{dataset}, {network}** (ANN {100 * ann:.2f} %)", "",
                  "| target | T | accuracy % | ANN - SNN | messages or spikes | synaptic ops "
                  "| kbit sent | convert s |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for r in group:
            traffic = ("| - | - | - " if np.isnan(r.messages) else
                       f"| {r.messages:,.0f} | {r.synops:,.0f} | {r.kbits:,.1f} ")
            lines.append(f"| {r.target} | {r.timesteps} | {100 * r.snn:.2f} | "
                         f"{100 * (r.ann - r.snn):+.2f} {traffic}| {r.convert_s:.1f} |")
        lines.append("")
    lines += [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    torch.set_num_threads(2)
    print(section(quick=False))
