"""Simulation speed at T=32: our reference (fixed point, float64, float32) against
SpikingJelly's simulation of its own conversion of the same ANN.

The plain-ReLU CNN and MLP of :mod:`benchmarks.peers` (one epoch on all of MNIST), each
converted with max balancing by lava-convert and by SpikingJelly's ``ann2snn`` (mode
max); 1000 test images, 2 torch threads for all, best of three interleaved rounds (so a
load on the machine slows every contender alike). Needs the peers of ``make bench``
(``requirements-peers.lock``).
"""

from __future__ import annotations

import copy
import time

import torch

import lava_convert as lc
from benchmarks.peers import relu_cnn, relu_mlp, trained
from lava_convert.sim.reference import simulate_fixed, simulate_float
from lava_convert.zoo.data import load_dataset

T = 32
SAMPLES = 1000
ROUNDS = 3


def speed(model, calib, x) -> dict[str, float]:
    """Samples per second at T=32 of each contender on ``x``."""
    from spikingjelly.activation_based import ann2snn, functional

    converted = lc.convert(model, calibration=calib, timesteps=T, balancing="max")
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.tensor(calib, dtype=torch.float32),
                                       torch.zeros(len(calib))), batch_size=256)
    sj = ann2snn.FXConverter(recipe=ann2snn.RateCodingRecipe(dataloader=loader, mode="max"),
                             device="cpu").convert(copy.deepcopy(model)).eval()
    xt = torch.tensor(x, dtype=torch.float32)

    def run_sj():
        with torch.no_grad():
            for lo in range(0, len(x), 500):
                functional.reset_net(sj)
                for _ in range(T):
                    sj(xt[lo:lo + 500])

    runs = {"ours, fixed point": lambda: simulate_fixed(converted.fixed, x, T),
            "ours, float64": lambda: simulate_float(converted.snn, x, T),
            "ours, float32": lambda: simulate_float(converted.snn, x, T, dtype=torch.float32),
            "SpikingJelly": run_sj}
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(ROUNDS):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: len(x) / s for name, s in best.items()}


def section(quick: bool = False) -> str:
    torch.set_num_threads(2)
    title = "## Simulation speed at T=32: our reference and SpikingJelly"
    try:
        import spikingjelly  # noqa: F401
    except ImportError:
        return "\n".join([title, "", "SpikingJelly is not installed (`make bench` installs "
                          "it): not measured.", ""])
    data = load_dataset("mnist")
    calib = data.calibration_sample(2000)
    n = 200 if quick else SAMPLES
    lines = [title, "",
             f"MNIST, {n} test images, the plain-ReLU networks of the `peers` section, max "
             f"balancing in both converters; {torch.get_num_threads()} torch threads for "
             f"all, best of {ROUNDS} interleaved rounds. Ours: the fixed-point reference "
             "(Lava-exact) and the real-valued simulation of the same converted network in "
             "float64 and float32.", "",
             "| network | " + " | ".join(["ours, fixed point", "ours, float64", "ours, float32",
                                          "SpikingJelly", "fixed point / SpikingJelly"])
             + " |", "|---" * 6 + "|"]
    for name, factory in (("CNN", relu_cnn), ("MLP", relu_mlp)):
        s = speed(trained(factory, data, quick), calib, data.x_test[:n])
        lines.append(f"| {name} | " + " | ".join(f"{v:.0f}" for v in s.values())
                     + f" | {s['ours, fixed point'] / s['SpikingJelly']:.2f}x |")
    return "\n".join(lines + ["", "Samples per second.", ""])
