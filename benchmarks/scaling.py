"""How the cost of converting, simulating and running on Lava grows with the network.

Rows: the digits MLP, the MNIST CNN of the ``cnn`` section, and the CIFAR-sized
ResNet-20, VGG-11 and VGG-16 of the zoo, all with plain ReLUs (so ``balancing="auto"``
has a choice to make) and random weights and inputs, BatchNorm statistics measured on
those inputs (:func:`normalised`; cost rows: accuracy is not measured here), 256
calibration samples, T=16. Per row, in a fresh spawned process (so
its peak resident memory is its own):

* ``convert`` with ``balancing="max"`` and with the default ``"auto"``, seconds;
* the reference's samples/s on 64 samples against the dense float32 floor: T forward
  passes of the PyTorch ANN on the same batch, same threads, timed in the same process
  (``ref_vs_floor`` < 1: the reference is cheaper than a dense time-stepped simulation);
* one sample on Lava's CPU simulator, seconds, or the timeout when it did not finish:
  with our process models (``run_lava``'s default, ``models="fast"``) and with Lava's
  own (``models="stock"``), each after a one-step run with both (Lava's one-time
  start-up, paid by whichever runs first, is then in neither);
* neurons, synapses (dense multiply-accumulates of one ANN forward), Loihi 2 cores and
  chips (estimate, :func:`~lava_convert.report.loihi2.loihi2_fit`), the share of neurons
  spiking per step.

Rows are :class:`ScalingRow` records, written to ``benchmarks/scaling.csv`` too.
"""

from __future__ import annotations

import csv
import multiprocessing
import resource
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch

T = 16
CALIBRATION = 256
REF_SAMPLES = 64
LAVA_TIMEOUT_S = 120
CSV = Path(__file__).with_name("scaling.csv")


@dataclass(frozen=True)
class ScalingRow:
    network: str
    neurons: int
    synapses: int
    convert_max_s: float
    convert_auto_s: float
    ref_samples_per_s: float
    floor_samples_per_s: float
    ref_vs_floor: float
    spiking_per_step: float
    lava_s_per_sample: float
    lava_finished: bool
    lava_stock_s_per_sample: float
    lava_stock_finished: bool
    peak_memory_mib: float
    loihi2_cores: int
    loihi2_chips: int


def _models():
    from benchmarks.cnn import mnist_cnn
    from lava_convert.layers import QCFS
    from lava_convert.zoo.models import mlp, resnet20, vgg11, vgg16

    def relu(model):  # the CNN of the `cnn` section with plain ReLUs
        for name, module in model.named_children():
            setattr(model, name, torch.nn.ReLU()) if isinstance(module, QCFS) else relu(module)
        return model

    return {
        "digits MLP": (lambda: mlp((1, 8, 8), (128, 64), act="relu"), (1, 8, 8)),
        "MNIST CNN": (lambda: relu(mnist_cnn()), (1, 28, 28)),
        "ResNet-20": (lambda: resnet20(act="relu"), (3, 32, 32)),
        "VGG-11": (lambda: vgg11(act="relu"), (3, 32, 32)),
        "VGG-16": (lambda: vgg16(act="relu"), (3, 32, 32)),
    }


def normalised(model: torch.nn.Module, x: np.ndarray) -> torch.nn.Module:
    """``model`` with its BatchNorm statistics measured on ``x`` (one training-mode pass,
    cumulative averages), in evaluation mode: random weights then keep activations of
    order one through every layer, as training does (with the default statistics a
    random VGG-16's activations fall below 1e-7 by its classifier)."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        model(torch.as_tensor(x))
    return model.eval()


def measure(name: str, quick: bool) -> ScalingRow:
    import lava_convert as lc
    from lava_convert.errors import LavaTimeoutError
    from lava_convert.report.cost import macs
    from lava_convert.report.loihi2 import loihi2_fit

    factory, shape = _models()[name]
    rng = np.random.default_rng(0)
    x = rng.random((CALIBRATION, *shape), dtype=np.float32)
    model = normalised(factory(), x)
    import lava_convert.pipeline  # noqa: F401 - imported before timing, not inside it
    t0 = time.perf_counter()
    lc.convert(model, calibration=x, timesteps=T, balancing="max", progress=False)
    t_max = time.perf_counter() - t0
    t0 = time.perf_counter()
    snn = lc.convert(model, calibration=x, timesteps=T, progress=False)
    t_auto = time.perf_counter() - t0
    net = snn.fixed
    xs = rng.random((16 if quick else REF_SAMPLES, *shape), dtype=np.float32)
    lc.simulate(net, xs[:4], T)  # warm-up
    ref = lc.simulate(net, xs, T)
    xt = torch.as_tensor(xs)
    with torch.no_grad():
        model(xt)
        t0 = time.perf_counter()
        for _ in range(T):
            model(xt)
        floor_s = time.perf_counter() - t0
    neurons = sum(layer.size for layer in net.layers)
    spiking = sum(float(c.sum()) for c in ref.spike_counts.values()) / (len(xs) * T * neurons)
    for models in ("fast", "stock"):  # one step each first: Lava's one-time start-up
        lc.run_lava(net, xs[:1], 1, progress=False, models=models)
    lava = {}
    for models in ("fast", "stock"):
        try:
            t0 = time.perf_counter()
            lc.run_lava(net, xs[:1], T, progress=False, timeout_s=LAVA_TIMEOUT_S,
                        models=models)
            lava[models] = (time.perf_counter() - t0, True)
        except LavaTimeoutError:  # the timeout is the measurement
            lava[models] = (float(LAVA_TIMEOUT_S), False)
    fit = loihi2_fit(net)
    return ScalingRow(
        network=name, neurons=neurons, synapses=sum(macs(layer) for layer in net.layers),
        convert_max_s=t_max, convert_auto_s=t_auto,
        ref_samples_per_s=len(xs) / ref.wall_time_s, floor_samples_per_s=len(xs) / floor_s,
        ref_vs_floor=ref.wall_time_s / floor_s, spiking_per_step=spiking,
        lava_s_per_sample=lava["fast"][0], lava_finished=lava["fast"][1],
        lava_stock_s_per_sample=lava["stock"][0], lava_stock_finished=lava["stock"][1],
        peak_memory_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        loihi2_cores=fit.cores, loihi2_chips=fit.chips)


def _child(name: str, quick: bool, queue) -> None:
    multiprocessing.set_start_method("fork", force=True)  # spawned; Lava forks its workers
    try:
        queue.put(measure(name, quick))
    except BaseException as exc:  # noqa: BLE001 - reported by the parent
        queue.put(exc)


def rows(quick: bool, names=None) -> list[ScalingRow]:
    # spawned, not forked: a child forked after this process has run torch on several
    # threads (an earlier section) hangs in its first parallel torch call
    ctx = multiprocessing.get_context("spawn")
    result = []
    for name in names or _models():
        queue = ctx.Queue()
        proc = ctx.Process(target=_child, args=(name, quick, queue))
        proc.start()
        row = queue.get()
        proc.join()
        if isinstance(row, BaseException):
            raise row
        print(row, flush=True)
        result.append(row)
    return result


def section(quick: bool) -> str:
    measured = rows(quick)
    with CSV.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[f.name for f in fields(ScalingRow)])
        writer.writeheader()
        writer.writerows(asdict(r) for r in measured)
    lines = [
        f"Random weights and inputs (BatchNorm statistics measured on them), plain ReLUs, "
        f"{CALIBRATION} calibration samples, T={T}; "
        f"reference on {REF_SAMPLES} samples against T float32 PyTorch forward passes of "
        "the same batch (the dense floor), in the same process; one Lava sample with our "
        "process models (`run_lava`'s default) and with Lava's stock ones (timeout "
        f"{LAVA_TIMEOUT_S} s each). Rows also in `benchmarks/scaling.csv`.",
        "",
        "| network | neurons | synapses (MACs) | convert max s | convert auto s | auto/max "
        "| reference samples/s | dense floor samples/s | reference/floor | spiking per step "
        "| Lava s/sample | Lava stock s/sample | peak MiB | Loihi 2 cores | chips |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in measured:
        lava, stock = (f"{s:.1f}" if done else f"> {LAVA_TIMEOUT_S}" for s, done in (
            (r.lava_s_per_sample, r.lava_finished),
            (r.lava_stock_s_per_sample, r.lava_stock_finished)))
        lines.append(
            f"| {r.network} | {r.neurons:,} | {r.synapses:,} | {r.convert_max_s:.1f} "
            f"| {r.convert_auto_s:.1f} | {r.convert_auto_s / r.convert_max_s:.2f} "
            f"| {r.ref_samples_per_s:.1f} | {r.floor_samples_per_s:.1f} "
            f"| {r.ref_vs_floor:.2f} | {100 * r.spiking_per_step:.1f} % | {lava} | {stock} "
            f"| {r.peak_memory_mib:.0f} | {r.loihi2_cores} | {r.loihi2_chips} |")
    return "\n".join(lines + ["", growth(measured)]) + "\n"


def growth(measured: list[ScalingRow]) -> str:
    """How each cost grows from the smallest to the largest row, against the synapses."""
    small, large = measured[0], measured[-1]

    def ratio(f) -> str:
        return f"{f(large) / f(small):,.0f}x"

    return (f"From the {small.network} to the {large.network} the synapses grow "
            f"{ratio(lambda r: r.synapses)} and the neurons {ratio(lambda r: r.neurons)}; "
            f"`max` conversion time grows {ratio(lambda r: r.convert_max_s)}, `auto` "
            f"{ratio(lambda r: r.convert_auto_s)}, the reference's time per sample "
            f"{ratio(lambda r: 1 / r.ref_samples_per_s)} and the dense floor's "
            f"{ratio(lambda r: 1 / r.floor_samples_per_s)}, peak memory "
            f"{ratio(lambda r: r.peak_memory_mib)}.")
