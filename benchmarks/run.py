"""Benchmarks: speed (reference vs Lava, Lava's floor) and conversion accuracy.

Run with ``make bench`` (``python -m benchmarks.run``); each section replaces
its own part of benchmarks/RESULTS.md
(``--sections speed,memory,conversion,cnn,resnet,lava_time,stock_target,
bias_exponent,calibration_passes,calibration_dtype,shards,nir_snntorch,peers,peer_speed,qcfs_levels,
auto_candidates,input_bits,scaling,cifar_sized,clipped_auto,deep_calibration,neurobench,
sdnn``).

1. Throughput at T=32 (samples per second), in one run, with identical
   predictions and spike counts checked on the samples both ran:
   the digits MLP of ``make demo`` and an MNIST-sized CNN (28x28 input,
   two stride-2 convolutions and a dense readout, random integer weights with
   thresholds set for moderate activity; conversion of trained CNNs is separate).
2. Lava's floor: milliseconds per time step of stock ``netx.hdf5.Network``
   (Lava's LIF) versus our runtime on the same file (soft-reset LIF with
   per-sample recording), excluding compilation.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

import lava_convert as lc
from lava_convert.ir import ConvGeometry, FixedLayer, FixedNetwork, Synapse
from lava_convert.lava.compat import ensure_lava
from lava_convert.report.quantization import format_quantization, quantization_report
from lava_convert.sim.inputs import quantize_input
from lava_convert.sim.reference import simulate_fixed
from lava_convert.sim.results import spike_differences
from lava_convert.zoo.data import load_digits
from lava_convert.zoo.train import accuracy, digits_mlp, train_classifier

RESULTS = Path(__file__).with_name("RESULTS.md")


def mnist_sized_cnn(seed: int = 0) -> FixedNetwork:
    """A 28x28x1 -> 8@14x14 -> 16@7x7 -> 10 network in Loihi integers (random weights)."""
    rng = np.random.default_rng(seed)
    strided = ConvGeometry(stride=(2, 2), padding=(1, 1))
    conv1 = FixedLayer(name="conv1", kind="conv", shape=(8, 14, 14),
                       synapse=Synapse("conv", rng.integers(-60, 80, (8, 1, 3, 3)), -1, strided),
                       bias=np.zeros(8, np.int64), vth=4000)
    conv2 = FixedLayer(name="conv2", kind="conv", shape=(16, 7, 7),
                       synapse=Synapse("conv", rng.integers(-40, 60, (16, 8, 3, 3)), 0, strided),
                       bias=np.zeros(16, np.int64), vth=150)
    fc = FixedLayer(name="fc", kind="dense", shape=(10,),
                    synapse=Synapse("dense", rng.integers(-100, 100, (10, 16 * 7 * 7)), 1),
                    bias=np.zeros(10, np.int64), vth=2**16, spiking=False, scale=1.0)
    return FixedNetwork(input_shape=(1, 28, 28), input_scale=255.0, input_bits=8,
                        input_signed=False, layers=(conv1, conv2, fc), timesteps=32)


def throughput(name: str, net, x_ref, x_lava, T: int) -> dict:
    ref = min((simulate_fixed(net, x_ref, T) for _ in range(3)), key=lambda r: r.wall_time_s)
    lava = lc.run_lava(net, x_lava, T, progress=False)
    ref_same = simulate_fixed(net, x_lava, T)
    identical = not spike_differences(lava, ref_same)
    ref_sps, lava_sps = len(x_ref) / ref.wall_time_s, len(x_lava) / lava.wall_time_s
    spikes = {k: float(v.mean()) * v.shape[1] for k, v in ref.spike_counts.items()}
    return dict(name=name, T=T, ref_samples=len(x_ref), lava_samples=len(x_lava),
                ref_sps=ref_sps, lava_sps=lava_sps, speedup=ref_sps / lava_sps,
                identical=identical,
                spikes=spikes)


def ms_per_step(net_path: Path, x_int: np.ndarray, steps: int, stock: bool) -> float:
    """Time per step after compilation, stock NetX (Lava LIF) or our runtime."""
    ensure_lava()
    from lava.lib.dl.netx import hdf5
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    from lava_convert.lava.procs.process import GradedSource
    from lava_convert.lava.simulate import LavaNetwork

    cfg = Loihi2SimCfg(select_tag="fixed_pt")
    if stock:
        net = hdf5.Network(net_config=str(net_path), input_message_bits=8)
        src = GradedSource(data=x_int, window=1)
        src.s_out.connect(net.inp)
        try:
            src.run(condition=RunSteps(num_steps=1), run_cfg=cfg)
            t0 = time.perf_counter()
            src.run(condition=RunSteps(num_steps=steps), run_cfg=cfg)
            return 1000 * (time.perf_counter() - t0) / steps
        finally:
            src.stop()
    fixed = lc.read_netx(net_path)
    with LavaNetwork(fixed, x_int, timesteps=32, chunk=max(1, steps // 32 + 2)) as lava:
        lava.run_until(1)
        t0 = time.perf_counter()
        lava.run_until(1 + steps)
        return 1000 * (time.perf_counter() - t0) / steps


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"torch {torch.__version__}, lava-nc 0.10.0, lava-dl 0.6.0")


def speed_section(quick: bool) -> str:
    T = 32
    n_mlp_lava, n_cnn_lava, n_steps = (40, 2, 200) if quick else (360, 8, 2000)
    data = load_digits()
    model = train_classifier(digits_mlp(), data.x_train, data.y_train)
    snn = lc.convert(model, calibration=data.x_train, timesteps=T)
    x_many = np.concatenate([data.x_test] * 56)[:20000]  # the test split, repeated
    rows = [throughput("digits MLP 64-128-64-10", snn.fixed, x_many, data.x_test[:n_mlp_lava], T)]
    rng = np.random.default_rng(1)
    cnn = mnist_sized_cnn()
    x_cnn = rng.random((2000, 1, 28, 28))
    rows.append(throughput("MNIST-sized CNN 1x28x28-8c3s2-16c3s2-10", cnn, x_cnn,
                           x_cnn[:n_cnn_lava], T))
    # stock NetX refuses our soft-reset files: both runtimes run the stock-target file
    stock = lc.convert(model, calibration=data.x_train,
                       config=lc.ConversionConfig.stock_netx(timesteps=T))
    tmp = RESULTS.with_name(".bench_digits.net")
    runs = {"stock": [], "ours": []}
    try:
        stock.export(tmp)
        x_int = quantize_input(stock.fixed, data.x_test[: n_steps + 2])
        for _ in range(3):  # interleaved repetitions: this machine's timing noise is large
            runs["stock"].append(ms_per_step(tmp, x_int, n_steps, stock=True))
            runs["ours"].append(ms_per_step(tmp, x_int, n_steps, stock=False))
    finally:
        for p in (tmp, tmp.with_suffix(".json")):
            p.unlink(missing_ok=True)
    floor = {k: float(np.median(v)) for k, v in runs.items()}
    quant = format_quantization(quantization_report(snn, data.x_test))
    lines = [
        f"## Throughput at T={T}: reference simulator vs Lava CPU simulator",
        "",
        "| network | reference samples/s (CPU) | Lava samples/s | speed-up | identical on Lava "
        "samples | samples (ref / Lava) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['name']} | {r['ref_sps']:.0f} | {r['lava_sps']:.2f} | "
                     f"{r['speedup']:.0f}x | {'yes' if r['identical'] else 'NO'} | "
                     f"{r['ref_samples']} / {r['lava_samples']} |")
    lines += [
        "",
        "Identical: spike counts of every neuron and the predictions agree for every sample "
        "run on Lava. Reference times include input quantization; Lava times include "
        "compilation and process start-up; reference: best of 3 runs, Lava: one run. The "
        "MLP's reference run repeats the 360 test samples to 20,000 (larger batches amortise "
        "per-step overhead).",
        f"Digits MLP: ANN {100 * accuracy(model, data.x_test, data.y_test):.2f} %, SNN "
        f"{100 * simulate_fixed(snn.fixed, data.x_test, T).accuracy(data.y_test):.2f} % "
        f"(reference, {len(data.x_test)} test samples).",
        "",
        "## Lava's floor: time per step after compilation (digits MLP, 3 layers)",
        "",
        "The digits MLP converted for stock NetX (`target=\"stock-netx\"`: hard reset, "
        "which stock NetX builds), run by each runtime.",
        "",
        "| runtime | ms per step |",
        "|---|---|",
        f"| stock `netx.hdf5.Network` (Lava LIF) fed by our graded source | {floor['stock']:.3f} |",
        f"| lava-convert runtime (per-sample recording) | {floor['ours']:.3f} |",
        "",
        f"Overhead of our runtime over bare NetX processes: "
        f"{100 * (floor['ours'] / floor['stock'] - 1):+.1f} % (medians of 3 interleaved runs "
        f"of {n_steps} steps; all runs, ms/step: stock "
        f"{', '.join(f'{v:.3f}' for v in runs['stock'])}; ours "
        f"{', '.join(f'{v:.3f}' for v in runs['ours'])}).",
        "",
        "## Quantization report (digits MLP, test split)",
        "",
        "```",
        quant,
        "```",
        "",
    ]
    return "\n".join(lines)


def update_results(path: Path, name: str, body: str, command: str) -> None:
    """Replace (or append) the section ``name`` of the results file."""
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    block = "\n".join([begin, f"Command: `{command}` (part of `make bench`)  ",
                       f"Machine: {machine()}  ",
                       f"Date: {time.strftime('%Y-%m-%d')}", "", body.rstrip(), end])
    text = path.read_text() if path.exists() else "# Benchmark results\n\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    from benchmarks import (
        auto_candidates,
        bias_exponent,
        calibration_dtype,
        calibration_passes,
        cifar_sized,
        clipped_auto,
        cnn,
        conversion,
        deep_calibration,
        input_bits,
        lava_time,
        memory,
        neurobench_rows,
        nir_snntorch,
        peer_speed,
        peers,
        qcfs_levels,
        resnet,
        scaling,
        sdnn,
        shards,
        stock_target,
    )

    sections = {"speed": speed_section, "memory": memory.section,
                "conversion": conversion.section, "cnn": cnn.section, "resnet": resnet.section,
                "lava_time": lava_time.section, "stock_target": stock_target.section,
                "bias_exponent": bias_exponent.section,
                "calibration_passes": calibration_passes.section,
                "calibration_dtype": calibration_dtype.section, "shards": shards.section,
                "nir_snntorch": nir_snntorch.section, "peers": peers.section,
                "peer_speed": peer_speed.section, "qcfs_levels": qcfs_levels.section,
                "auto_candidates": auto_candidates.section, "input_bits": input_bits.section,
                "scaling": scaling.section, "cifar_sized": cifar_sized.section,
                "clipped_auto": clipped_auto.section,
                "deep_calibration": deep_calibration.section,
                "neurobench": neurobench_rows.section, "sdnn": sdnn.section}
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (smoke test)")
    parser.add_argument("--sections", default=",".join(sections),
                        help=f"comma-separated subset of {', '.join(sections)}")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    for name in args.sections.split(","):
        if name not in sections:
            parser.error(f"unknown section {name!r}; choose from {', '.join(sections)}")
        body = sections[name](args.quick)
        command = f"python -m benchmarks.run --sections {name}" + (
            " --quick" if args.quick else "")
        update_results(args.output, name, body, command)
        print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
