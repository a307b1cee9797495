"""Operation counts: fan-out, synaptic operations and MACs against brute force."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import fixed_layer

from lava_convert.ir import FixedNetwork
from lava_convert.report.cost import fanout, macs, run_cost
from lava_convert.sim.inputs import quantize_input
from lava_convert.sim.reference import simulate_fixed


@pytest.mark.parametrize("stride, padding, dilation, groups", [
    ((1, 1), (0, 0), (1, 1), 1), ((2, 1), (1, 0), (1, 1), 2), ((2, 2), (1, 1), (2, 1), 1),
    ((3, 3), (0, 0), (1, 1), 1)])
def test_conv_fanout_counts_every_connection(stride, padding, dilation, groups):
    rng = np.random.default_rng(0)
    w = rng.integers(-3, 4, (4, 4 // groups, 3, 3))
    in_shape = (4, 9, 8)
    out = F.conv2d(torch.zeros(1, *in_shape), torch.zeros(w.shape, dtype=torch.float32),
                   stride=stride, padding=padding, dilation=dilation, groups=groups).shape[1:]
    layer = fixed_layer(name="c", kind="conv", shape=tuple(out), weight=w,
                       bias=np.zeros(4, np.int64), vth=10, stride=stride, padding=padding,
                       dilation=dilation, groups=groups)
    fan = fanout(layer.synapse, in_shape)
    # brute force: perturb each input and count the outputs whose current changes
    x = torch.zeros(1, *in_shape, dtype=torch.float64)
    mask = torch.as_tensor((w != 0).astype(np.float64))
    for idx in rng.choice(x.numel(), 25, replace=False):
        e = torch.zeros(x.numel(), dtype=torch.float64)
        e[idx] = 1.0
        reached = F.conv2d(e.reshape(x.shape), mask, stride=stride, padding=padding,
                           dilation=dilation, groups=groups)
        assert fan[idx] == reached.sum().item()
    assert macs(layer) == int(np.count_nonzero(w)) * int(np.prod(out[1:]))


def test_run_cost_totals_and_energy():
    rng = np.random.default_rng(1)
    w1 = rng.integers(-5, 9, (6, 4))
    w1[0, :2] = 0
    w2 = rng.integers(-5, 9, (3, 6))
    layers = (fixed_layer(name="h", kind="dense", shape=(6,), weight=w1, bias=np.zeros(6, int),
                         vth=40),
              fixed_layer(name="o", kind="dense", shape=(3,), weight=w2, bias=np.zeros(3, int),
                         vth=2**16, spiking=False))
    net = FixedNetwork(input_shape=(4,), input_scale=10.0, input_bits=8, input_signed=False,
                       layers=layers, timesteps=8)
    x = rng.random((5, 4))
    x[:, 1] = 0  # a silent input pixel sends nothing
    result = simulate_fixed(net, x, 8)
    cost = run_cost(net, result, x)
    inp, hidden, out = cost.layers
    x_int = quantize_input(net, x)
    assert inp.spikes == pytest.approx((x_int != 0).sum(axis=1).mean() * 8)
    assert inp.synops == pytest.approx(((x_int != 0) * (w1 != 0).sum(axis=0)).sum(1).mean() * 8)
    counts = result.spike_counts["h"]
    assert hidden.synops == pytest.approx((counts * (w2 != 0).sum(axis=0)).sum(1).mean())
    assert hidden.neuron_updates == 6 * 8 and out.neuron_updates == 3 * 8
    assert cost.ann_macs == np.count_nonzero(w1) + np.count_nonzero(w2)
    # the estimate is built on these counts: 23.6 pJ per synaptic op, 52 pJ per update
    assert cost.energy.dynamic_j == pytest.approx(cost.synops * 23.6e-12 + (48 + 24) * 52e-12)
    assert cost.energy.ann_int8_j == pytest.approx(cost.ann_macs * 0.23e-12)
    assert cost.energy.timesteps == 8
