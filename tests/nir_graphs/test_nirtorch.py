"""Our exact encoding run by another executor: nirtorch 2.6's graph interpreter (which
reads recurrent edges from the previous step) with plain torch modules for NIR's nodes,
independent of lava-convert's simulators, gives the readout our float simulation gives,
initial potentials included; and what a reader that ignores our metadata gets from the
``if`` encoding is what :func:`plain_reading` says."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_nir_round_trip import network

import lava_convert as lc
from lava_convert.nir.writer import plain_reading, to_nir
from lava_convert.sim.reference import simulate_float

nir = pytest.importorskip("nir")
nirtorch = pytest.importorskip("nirtorch")


class Integrator(torch.nn.Module):
    """NIR's I at dt = 1: v <- v + r x; outputs v."""

    def __init__(self, r):
        super().__init__()
        self.r = torch.as_tensor(r, dtype=torch.float64)

    def forward(self, x, state=None):
        v = (torch.zeros_like(x) if state is None else state) + self.r * x
        return v, v


class Heaviside(torch.nn.Module):
    def __init__(self, threshold):
        super().__init__()
        self.threshold = torch.as_tensor(threshold, dtype=torch.float64)

    def forward(self, v):
        return (v > self.threshold).to(torch.float64)


class Multiply(torch.nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.scale = torch.as_tensor(scale, dtype=torch.float64)

    def forward(self, x):
        return x * self.scale


def affine(node):
    layer = torch.nn.Linear(node.weight.shape[1], node.weight.shape[0]).double()
    layer.weight.data = torch.tensor(np.array(node.weight), dtype=torch.float64)
    layer.bias.data = torch.tensor(np.array(node.bias), dtype=torch.float64)
    return layer


def conv2d(node):
    c_out, c_in, *kernel = node.weight.shape
    groups = int(node.groups)
    layer = torch.nn.Conv2d(c_in * groups, c_out, tuple(kernel), stride=tuple(node.stride),
                            padding=tuple(node.padding), dilation=tuple(node.dilation),
                            groups=groups).double()
    layer.weight.data = torch.tensor(np.array(node.weight), dtype=torch.float64)
    layer.bias.data = torch.tensor(np.array(node.bias), dtype=torch.float64)
    return layer


class HardResetIF(torch.nn.Module):
    """NIR's IF at dt = 1 as NIR defines it: v <- v + r x; spike when v > v_threshold, then
    v <- v_reset."""

    def __init__(self, node):
        super().__init__()
        self.r, self.th, self.reset = (torch.as_tensor(np.array(a), dtype=torch.float64)
                                       for a in (node.r, node.v_threshold, node.v_reset))

    def forward(self, x, state=None):
        v = (torch.zeros_like(x) if state is None else state) + self.r * x
        spikes = (v > self.th).to(torch.float64)
        return spikes, torch.where(spikes > 0, self.reset, v)


NODE_MAP = {
    nir.Affine: affine, nir.Conv2d: conv2d,
    nir.Flatten: lambda node: torch.nn.Flatten(start_dim=1),  # NIR's dims exclude the batch
    nir.I: lambda node: Integrator(node.r),
    nir.Threshold: lambda node: Heaviside(node.threshold),
    nir.Scale: lambda node: Multiply(node.scale),
}


def nirtorch_readout(graph, x, T, node_map=NODE_MAP) -> np.ndarray:
    """The graph's readout after ``T`` steps of ``x``, per step, run by nirtorch."""
    module = nirtorch.nir_to_torch(graph, node_map, dtype=torch.float64)
    state = None
    with torch.no_grad():
        for _ in range(T):
            v, state = module(torch.as_tensor(x, dtype=torch.float64), state)
    return v.numpy() / T


@pytest.mark.parametrize("name", ["dense", "conv, flatten, dense", "conv identity shortcut",
                                  "dense shortcut from a conv layer",
                                  "a start per channel (conv) and per neuron (dense)"])
def test_nirtorch_runs_the_exact_encoding_as_we_do(name):
    snn = network(name)
    x = np.random.default_rng(5).random((16, *snn.input_shape))
    ours = simulate_float(snn, x, snn.timesteps)
    theirs = nirtorch_readout(to_nir(snn, "exact"), x, snn.timesteps)
    assert np.allclose(theirs, ours.output, rtol=1e-9, atol=1e-9)
    assert np.abs(ours.output).max() > 0
    assert plain_reading(snn, "exact")[1] == ()  # nothing left to the metadata


@pytest.fixture(scope="module")
def conversions(digits):
    """The digits converted as users do: plain ReLUs with ``max`` and with ``auto`` (which
    may choose a start of half the threshold), and a QCFS network started at half."""
    from lava_convert.zoo.models import mlp
    from lava_convert.zoo.train import train_classifier

    x, y = digits.x_train, digits.y_train
    relu = train_classifier(mlp((1, 8, 8), (32,), 10, "relu"), x, y, epochs=8)
    qcfs = train_classifier(mlp((1, 8, 8), (32,), 10, "qcfs"), x, y, epochs=8)
    return {"max, v0": lc.convert(relu, calibration=x, timesteps=4, balancing="max",
                                  shift="v0", progress=False),
            "auto": lc.convert(relu, calibration=x, timesteps=4, progress=False),
            "qcfs, v0": lc.convert(qcfs, calibration=x, timesteps=4, shift="v0",
                                   progress=False)}


@pytest.mark.parametrize("name", ["max, v0", "auto", "qcfs, v0"])
def test_nirtorch_reads_converted_networks_exactly(conversions, digits, name):
    """A reader with plain modules for NIR's nodes gets our float readout on the exact
    encoding, the initial potential included (it is in the threshold)."""
    snn = conversions[name].snn
    if name != "auto":
        assert any(np.any(np.asarray(l.v0) != 0) for l in snn.layers)  # tests the start
    x = digits.x_test[:64]
    ours = simulate_float(snn, x, snn.timesteps)
    theirs = nirtorch_readout(to_nir(snn, "exact"), x, snn.timesteps)
    assert np.allclose(theirs, ours.output, rtol=1e-9, atol=1e-9)


def test_the_if_encoding_is_read_as_plain_reading_says(conversions, digits, caplog,
                                                       tmp_path):
    """The ``if`` encoding read by NIR's definition of IF (reset to v_reset, start at 0)
    is the network :func:`plain_reading` gives, not ours; the export says so, with the
    agreement measured on the samples it is given."""
    converted = conversions["max, v0"]
    snn, x = converted.snn, digits.x_test[:128]
    plain, lost = plain_reading(snn, "if")
    hidden = [l.name for l in snn.layers if l.spiking]
    assert lost == tuple(f"layer {n}: hard reset and v0 = 0" for n in hidden)
    theirs = nirtorch_readout(to_nir(snn, "if"), x, snn.timesteps,
                              {**NODE_MAP, nir.IF: HardResetIF})
    assert np.allclose(theirs, simulate_float(plain, x, snn.timesteps).output, rtol=1e-9,
                       atol=1e-9)
    agree = np.mean(theirs.argmax(1) == simulate_float(snn, x, snn.timesteps).predictions)
    with caplog.at_level("WARNING"):
        converted.export_nir(tmp_path / "net.nir", "if", samples=x)
    assert f"agrees with this network's predictions on {100 * agree:.1f} % of 128" in \
        caplog.text
    assert all(n in caplog.text for n in hidden)
