"""Our exact encoding run by another executor: nirtorch 2.6's graph interpreter (which
reads recurrent edges from the previous step) with plain torch modules for NIR's nodes,
independent of lava-convert's simulators, gives the readout our float simulation gives."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_nir_round_trip import network

from lava_convert.nir.writer import to_nir
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


NODE_MAP = {
    nir.Affine: affine, nir.Conv2d: conv2d,
    nir.Flatten: lambda node: torch.nn.Flatten(start_dim=1),  # NIR's dims exclude the batch
    nir.I: lambda node: Integrator(node.r),
    nir.Threshold: lambda node: Heaviside(node.threshold),
    nir.Scale: lambda node: Multiply(node.scale),
}


@pytest.mark.parametrize("name", ["dense", "conv, flatten, dense", "conv identity shortcut",
                                  "dense shortcut from a conv layer"])
def test_nirtorch_runs_the_exact_encoding_as_we_do(name):
    snn = network(name)
    graph = to_nir(snn, "exact")
    module = nirtorch.nir_to_torch(graph, NODE_MAP, dtype=torch.float64)
    x = np.random.default_rng(5).random((16, *snn.input_shape))
    T = snn.timesteps
    state = None
    with torch.no_grad():
        for _ in range(T):
            v, state = module(torch.as_tensor(x, dtype=torch.float64), state)
    ours = simulate_float(snn, x, T)
    theirs = v.numpy() / T  # the readout's potential after T steps, per step
    assert np.allclose(theirs, ours.output, rtol=1e-9, atol=1e-9)
    assert np.abs(ours.output).max() > 0
