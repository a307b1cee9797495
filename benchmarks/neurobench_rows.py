"""NeuroBench's metrics of every shipped export (``netx_exports/*.net``) on its test set.

Each file runs on the fixed-point reference (Lava-exact) at its own T on the first
:data:`SAMPLES` test images of its dataset (named by the file: ``digits_*``,
``mnist_*``, ``fashion_mnist_*``); the row is
:func:`lava_convert.report.neurobench.snn_metrics` of that run, next to the accuracy.
Rows are :class:`ExportRow` records, written to ``benchmarks/neurobench.csv`` too.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

import lava_convert as lc
from lava_convert.report.neurobench import NeuroBenchRow, snn_metrics
from lava_convert.zoo.data import load_dataset

EXPORTS = Path("netx_exports")
CSV = Path(__file__).with_name("neurobench.csv")
SAMPLES = 2000
DATASETS = {"digits": "digits", "mnist": "mnist", "fashion_mnist": "fashion-mnist"}


@dataclass(frozen=True)
class ExportRow:
    file: str
    dataset: str
    timesteps: int
    accuracy: float
    metrics: NeuroBenchRow

    def flat(self) -> dict:
        """The row for the CSV: its own fields, then the metrics' (but their name)."""
        head = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "metrics"}
        return {**head, **{k: v for k, v in asdict(self.metrics).items() if k != "network"}}


def dataset_of(name: str) -> str:
    prefix = max((p for p in DATASETS if name.startswith(p + "_")), key=len)
    return DATASETS[prefix]


def section(quick: bool) -> str:
    measured = []
    for path in sorted(EXPORTS.glob("*.net")):
        dataset = dataset_of(path.stem)
        data = load_dataset(dataset)
        n = 100 if quick else SAMPLES
        x, y = data.x_test[:n], data.y_test[:n]
        net = lc.read_netx(path)
        run = lc.simulate(net, x, net.timesteps)
        measured.append(ExportRow(path.name, dataset, net.timesteps,
                                  float(np.mean(run.predictions == y)),
                                  snn_metrics(net, run, x, path.name)))
        print(measured[-1], flush=True)
    with CSV.open("w", newline="") as f:
        rows = [r.flat() for r in measured]
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = [f"Fixed-point reference on the first {100 if quick else SAMPLES} test images of "
             "each file's dataset, at the file's T; NeuroBench's definitions "
             "(`lava_convert.report.neurobench`: synaptic operations per sample, the graded "
             "input's as MACs, spikes' as ACs; footprint at Loihi's integer widths). Rows "
             "also in `benchmarks/neurobench.csv`.", "",
             "| file | T | accuracy % | footprint B | connection sparsity | activation "
             "sparsity | dense synops | effective MACs | effective ACs |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in measured:
        m = r.metrics
        lines.append(f"| {r.file} | {r.timesteps} | {100 * r.accuracy:.2f} | "
                     f"{m.footprint_bytes:,} | {m.connection_sparsity:.3f} | "
                     f"{m.activation_sparsity:.3f} | {m.dense_synops:,.0f} | "
                     f"{m.effective_macs:,.0f} | {m.effective_acs:,.0f} |")
    return "\n".join(lines) + "\n"
