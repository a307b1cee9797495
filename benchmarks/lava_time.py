"""Where Lava's time goes, per layer, with Lava's own process models and with ours.

Networks: the exported MNIST CNN (``netx_exports/mnist_cnn_qcfs.net``, written by the
``cnn`` section) and the CIFAR-sized VGG-11 of the ``scaling`` section (random weights,
plain ReLUs, ``balancing="max"``). Per layer and time step, each synapse's arithmetic
in isolation, in one thread as in a Lava worker, on inputs with the layer's measured
spike density (the first layer: one quantized sample):

* stock: what Lava's fixed-point models call each step (``lava.proc.conv.utils.conv``
  with NetX's flipped W,H,C kernel, scipy; the dense matrix-vector product);
* fast: what :class:`~lava_convert.lava.procs.conv_model.PyTorchConvModelFixed` calls
  (:func:`~lava_convert.lava.procs.conv_model.lava_conv`); dense layers are Lava's
  own in both sets.

The whole step is measured on Lava itself with each model set: two runs of different
length, so that compilation and start-up cancel; with stock models only where a sample
takes under ``STOCK_STEP_LIMIT_S`` per step in the synapses alone. What the synapses do
not explain is neuron updates, recording and the messages between the layer processes.
Rows are :class:`LayerTime` records, written to ``benchmarks/lava_time.csv`` too.
"""

from __future__ import annotations

import csv
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch

import lava_convert as lc
from lava_convert.lava.compat import ensure_lava
from lava_convert.sim.inputs import quantize_input
from lava_convert.zoo.data import load_dataset

NET = Path("netx_exports/mnist_cnn_qcfs.net")
CSV = Path(__file__).with_name("lava_time.csv")
#: Each timing repeats its call for at least this long (and at least twice).
BUDGET_S = 0.5
#: The whole step with stock models is measured only below this synapse time per step.
STOCK_STEP_LIMIT_S = 1.0


@dataclass(frozen=True)
class LayerTime:
    network: str
    layer: str  # a layer's name, or "synapses" (their sum) or "step" (a whole Lava step)
    synapse: str
    stock_ms: float | None  # None: not measured (see STOCK_STEP_LIMIT_S)
    fast_ms: float


def _per_call_ms(fn) -> float:
    fn()
    calls, start = 0, time.perf_counter()
    while calls < 2 or time.perf_counter() - start < BUDGET_S:
        fn()
        calls += 1
    return 1000 * (time.perf_counter() - start) / calls


def synapse_rows(network: str, net, x) -> list[LayerTime]:
    """Each layer's synapse time per step, Lava's models and ours."""
    ensure_lava()
    from lava.proc.conv import utils

    from lava_convert.lava.procs.conv_model import lava_conv, torch_kernel
    from lava_convert.lava.procs.network import lava_conv_weight

    ref = lc.simulate(net, x, net.timesteps)
    inp = quantize_input(net, x[:1])[0].reshape(net.input_shape).astype(np.int32)
    rows, rng = [], np.random.default_rng(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a Lava worker
    try:
        for layer in net.layers:
            if layer.kind == "conv":
                w = np.ascontiguousarray(lava_conv_weight(layer.synapse)).astype(np.int32)
                whc, g = inp.transpose(2, 1, 0), layer.geometry
                args = (g.stride[::-1], g.padding[::-1], g.dilation[::-1])
                cache = torch_kernel(w)
                stock = _per_call_ms(lambda w=w, whc=whc, a=args, g=g: utils.conv(
                    whc, w, w.shape[1:3], *a, g.groups))
                fast = _per_call_ms(lambda w=w, whc=whc, a=args, g=g, c=cache: lava_conv(
                    whc, w, *a, g.groups, c))
                what = (f"conv {inp.shape} -> {layer.shape}, kernel {tuple(w.shape[1:3])} "
                        f"stride {g.stride[0]} ({layer.shape[0]} x {inp.shape[0] // g.groups} "
                        "channel pairs)")
            else:
                w, v = layer.weight.astype(np.int32), inp.reshape(-1)
                stock = fast = _per_call_ms(lambda w=w, v=v: w @ v)
                what = f"dense {v.size} -> {layer.shape[0]}"
            rows.append(LayerTime(network, layer.name, what, stock, fast))
            # the next layer's input: spikes with this layer's measured density
            density = ref.spike_counts[layer.name].mean() / net.timesteps
            inp = (rng.random(layer.shape) < density).astype(np.int32)
    finally:
        torch.set_num_threads(threads)
    return rows


def step_ms(net, x, models: str, n_short: int = 1, n_long: int = 3) -> float:
    """Lava's milliseconds per time step after compilation (difference of two runs)."""
    T = net.timesteps
    short = lc.run_lava(net, x[:n_short], T, progress=False, models=models).wall_time_s
    long = lc.run_lava(net, x[:n_long], T, progress=False, models=models).wall_time_s
    return 1000 * (long - short) / ((n_long - n_short) * T)


def network_rows(network: str, net, x, quick: bool) -> list[LayerTime]:
    rows = synapse_rows(network, net, x[:8])
    stock = sum(r.stock_ms for r in rows)
    rows.append(LayerTime(network, "synapses", "all synapses together", stock,
                          sum(r.fast_ms for r in rows)))
    n = (1, 2) if quick else (1, 3)
    whole_stock = step_ms(net, x, "stock", *n) if stock < 1000 * STOCK_STEP_LIMIT_S else None
    rows.append(LayerTime(network, "step", "one Lava time step (measured)", whole_stock,
                          step_ms(net, x, "fast", *n)))
    return rows


def _vgg11():
    from benchmarks.scaling import CALIBRATION, T, _models, normalised

    factory, shape = _models()["VGG-11"]
    x = np.random.default_rng(0).random((CALIBRATION, *shape), dtype=np.float32)
    model = normalised(factory(), x)
    snn = lc.convert(model, calibration=x, timesteps=T, balancing="max", progress=False)
    return snn.fixed, x


def section(quick: bool = False) -> str:
    if not NET.is_file():
        return f"{NET} is missing: run the cnn section first.\n"
    cnn = lc.read_netx(NET)
    measured = network_rows(f"MNIST CNN ({NET.name}, T={cnn.timesteps})", cnn,
                            load_dataset("mnist").x_test[:8], quick)
    vgg, x = _vgg11()
    measured += network_rows(f"VGG-11 CIFAR-sized (random weights, T={vgg.timesteps})", vgg,
                             x, quick)
    with CSV.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[f.name for f in fields(LayerTime)])
        writer.writeheader()
        writer.writerows(asdict(r) for r in measured)
    lines = ["Per layer: each synapse's arithmetic per time step, in one thread, on inputs "
             "with the layer's measured spike density; stock = Lava's `PyConvModelFixed` "
             "(scipy, one channel pair at a time, every position before striding), fast = "
             "our `PyTorchConvModelFixed` (one exact torch call; `run_lava`'s default). "
             "Dense layers are Lava's own in both. The whole step is measured on Lava. Rows "
             "also in `benchmarks/lava_time.csv`.", ""]
    for network in dict.fromkeys(r.network for r in measured):
        lines += [f"## {network}", "", "| layer | synapse | stock ms/step | fast ms/step "
                  "| stock/fast |", "|---|---|---:|---:|---:|"]
        for r in (r for r in measured if r.network == network):
            stock = "not run" if r.stock_ms is None else f"{r.stock_ms:.2f}"
            ratio = "" if r.stock_ms is None else f"{r.stock_ms / r.fast_ms:.1f}x"
            lines.append(f"| {r.layer} | {r.synapse} | {stock} | {r.fast_ms:.2f} | {ratio} |")
        step = next(r for r in measured if r.network == network and r.layer == "step")
        synapses = next(r for r in measured if r.network == network and r.layer == "synapses")
        share = 100 * synapses.fast_ms / step.fast_ms
        rest = step.fast_ms - synapses.fast_ms
        lines += ["", f"With our models the synapses are {share:.0f} % of a step; the rest "
                  f"({rest:.1f} ms) is neuron updates, recording and the messages between "
                  "the layer processes.", ""]
    return "\n".join(lines)
