"""NIR from snnTorch to Lava on MNIST: the producer's accuracy, ours in float, Lava-exact.

snnTorch 1.0.0 trains two networks on MNIST (T=8, Leaky neurons with beta 0.9 and
subtractive reset, direct analog input): a dense 784-256-10 and a convolutional one
(conv 1->8 3x3, Leaky, average pooling 2, dense 1568->10). Its ``export_to_nir`` writes
each; ``lc.from_nir(dt=1e-4, reset="soft")`` reads it. Accuracy on the full test set:
snnTorch's own simulation, the imported network in float (ours), and the Lava-exact
fixed-point network; then Lava itself on the first 200 test samples, spike for spike
against the reference.
"""

from __future__ import annotations

import time

import numpy as np
import torch

import lava_convert as lc
from lava_convert.sim.results import spike_differences
from lava_convert.zoo.data import load_dataset

T = 8


def _models():
    import snntorch as snn

    def leaky(shape, **kwargs):
        return snn.Leaky(beta=torch.full(shape, 0.9), threshold=torch.ones(shape),
                         init_hidden=True, reset_delay=False, **kwargs)

    return {
        "dense 784-256-10": torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(784, 256), leaky((256,)),
            torch.nn.Linear(256, 10), leaky((10,), output=True)),
        "conv 8c3-pool-10": torch.nn.Sequential(
            torch.nn.Conv2d(1, 8, 3, padding=1), leaky((8, 28, 28)), torch.nn.AvgPool2d(2),
            torch.nn.Flatten(), torch.nn.Linear(8 * 14 * 14, 10), leaky((10,), output=True)),
    }


def _counts(net, x: torch.Tensor) -> np.ndarray:
    from snntorch import utils

    out = []
    with torch.no_grad():
        for lo in range(0, len(x), 1000):
            utils.reset(net)
            out.append(sum(net(x[lo:lo + 1000])[0] for _ in range(T)).numpy())
    return np.concatenate(out)


def _train(net, x, y, epochs: int) -> float:
    from snntorch import utils

    torch.manual_seed(0)
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-3)
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(x))
        for lo in range(0, len(x), 128):
            batch = order[lo:lo + 128]
            utils.reset(net)
            counts = sum(net(x[batch])[0] for _ in range(T))
            loss = torch.nn.functional.cross_entropy(2 * counts, y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return time.perf_counter() - start


def section(quick: bool = False) -> str:
    from snntorch.export_nir import export_to_nir

    data = load_dataset("mnist")
    n_train, n_test = (5000, 1000) if quick else (len(data.x_train), len(data.x_test))
    x = torch.tensor(data.x_train[:n_train], dtype=torch.float32)
    y = torch.tensor(data.y_train[:n_train])
    x_test, y_test = data.x_test[:n_test], data.y_test[:n_test]
    lines = ["| network | epochs | snnTorch % | imported, float % | Lava-exact (fixed) % "
             "| fixed - snnTorch | Lava = reference (200 samples) |",
             "|---|---|---|---|---|---|---|"]
    torch.manual_seed(0)
    for name, net in _models().items():
        epochs = 1 if quick else 2
        _train(net, x, y, epochs)
        theirs = float(np.mean(_counts(net, torch.tensor(x_test, dtype=torch.float32))
                               .argmax(1) == y_test))
        graph = export_to_nir(net, torch.zeros(1, 1, 28, 28), ignore_dims=[0])
        imported = lc.from_nir(graph, data.x_train[:2000], dt=1e-4, reset="soft",
                               timesteps=T)
        ours = imported.simulate(x_test, mode="float").accuracy(y_test)
        fixed = imported.simulate(x_test).accuracy(y_test)
        sample = x_test[:40 if quick else 200]
        lava, ref = lc.run_lava(imported.fixed, sample, progress=False), \
            imported.simulate(sample)
        same = not spike_differences(lava, ref)
        lines.append(f"| {name} | {epochs} | {100 * theirs:.2f} | {100 * ours:.2f} "
                     f"| {100 * fixed:.2f} | {100 * (fixed - theirs):+.2f} | {same} |")
    return "\n".join([
        "## NIR from snnTorch to Lava: MNIST accuracy", "",
        f"MNIST ({n_train} training, {n_test} test samples), T={T}; snnTorch 1.0.0, nirtorch "
        "2.6, nir 1.0.8. Read with `lc.from_nir(path, calibration, dt=1e-4, reset='soft')`. "
        "Ours differ from snnTorch's simulation where a neuron stays above threshold after "
        "a reset: snnTorch subtracts again at the next step, Lava's neuron fires again "
        "(docs/nir.md).", ""] + lines)
