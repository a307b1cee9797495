"""Convolutional networks: tracing and folding, NetX layout on Lava, and conversion end to end."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import lava_convert as lc
from lava_convert.frontend.torch_fx import trace
from lava_convert.ir import ConvGeometry, FixedLayer, FixedNetwork, Synapse
from lava_convert.sim.ann import forward
from lava_convert.sim.reference import float_layer_trains
from lava_convert.sim.results import assert_same_spikes

GEOMETRIES = [  # (C_in, H, W, C_out, k, stride, padding, dilation, groups)
    (1, 7, 5, 3, 3, 1, 0, 1, 1),
    (2, 9, 6, 4, 3, 2, 1, 1, 2),
    (3, 5, 5, 3, 1, 1, 0, 1, 3),
    (2, 8, 7, 2, (3, 2), (2, 1), (1, 0), 1, 1),
    (1, 9, 9, 2, 3, 1, 2, 2, 1),
]


def conv_readout(c_in, h, w, c_out, k, s, p, d, g, seed=0):
    k, s, p, d = (v if isinstance(v, tuple) else (v, v) for v in (k, s, p, d))
    rng = np.random.default_rng(seed)
    weight = rng.integers(-127, 128, (c_out, c_in // g, *k))
    out = tuple((n + 2 * p[i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i, n in enumerate((h, w)))
    layer = FixedLayer(name="conv", kind="conv", shape=(c_out, *out),
                       synapse=Synapse("conv", weight, geometry=ConvGeometry(s, p, d, g)),
                       bias=rng.integers(-50, 50, c_out), vth=2**16, spiking=False)
    return FixedNetwork(input_shape=(c_in, h, w), input_scale=1.0, input_bits=6,
                        input_signed=False, layers=(layer,), timesteps=1)


@pytest.mark.lava
@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_lava_conv_currents_equal_pytorch_convolution(geometry):
    net = conv_readout(*geometry)
    layer = net.layers[0]
    x = np.random.default_rng(1).integers(0, 64, (2, *net.input_shape)).astype(np.float64)
    lava = lc.run_lava(net, x, timesteps=1, progress=False)  # one step: v = (a + bias) << 6
    want = F.conv2d(torch.as_tensor(x), torch.as_tensor(layer.weight, dtype=torch.float64),
                    torch.as_tensor(layer.bias, dtype=torch.float64), stride=geometry[5],
                    padding=geometry[6], dilation=geometry[7], groups=geometry[8])
    np.testing.assert_array_equal(lava.output, want.reshape(2, -1).numpy())


class CNN(nn.Module):
    def __init__(self, act=nn.ReLU):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), act(),
            nn.Conv2d(4, 6, 3, stride=1, padding=1, groups=2), act(), nn.AvgPool2d(2),
            nn.Conv2d(6, 8, 3, padding=1), act(), nn.AvgPool2d(2))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(8 * 2 * 2, 16), act(),
                                  nn.Linear(16, 3))

    def forward(self, x):
        return self.head(self.features(x))


def trained_stats(model):
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(16, 1, 8, 8))
    return model.eval()


def test_trace_folds_batchnorm_and_pooling_exactly():
    torch.manual_seed(0)
    model = trained_stats(CNN())
    graph = trace(model, (1, 8, 8))
    assert [l.kind for l in graph.layers] == ["conv", "conv", "conv", "dense", "dense"]
    assert graph.layers[2].synapse.geometry.stride == (2, 2)
    assert graph.layers[2].synapse.weight.shape[2:] == (6, 6)
    assert graph.layers[3].synapse.weight.shape == (16, 8 * 4 * 4)
    assert any("synapses" in n for n in graph.notes) and any("batch norm" in n for n in graph.notes)
    x = torch.rand(10, 1, 8, 8)
    np.testing.assert_allclose(forward(graph, x.numpy())[-1], model(x).detach().numpy(),
                               rtol=1e-5, atol=1e-5)


def test_global_pooling_and_relu_after_pooling():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.ReLU(),
                          nn.Flatten(), nn.Linear(3, 2))
    graph = trace(model, (1, 6, 5))
    assert any("identity; dropped" in n for n in graph.notes)
    x = torch.rand(4, 1, 6, 5)
    np.testing.assert_allclose(forward(graph, x.numpy())[-1], model(x).detach().numpy(),
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("model, fragment", [
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                   nn.Linear(2, 2)), "AvgPool2d"),
    (nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect"), nn.ReLU(),
                   nn.Flatten(), nn.Linear(72, 2)), "padding_mode"),
    (nn.Sequential(nn.Conv2d(1, 2, 2, padding="same"), nn.ReLU(), nn.Flatten(),
                   nn.Linear(72, 2)), "asymmetric"),
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.AvgPool2d(2), lc.ThresholdReLU(0.5),
                   nn.Flatten(), nn.Linear(8, 2)), "after average pooling"),
    (nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.AvgPool2d(3, stride=2),
                   nn.Conv2d(2, 2, 1), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2)), "overlapping"),
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.Conv2d(2, 2, 3), nn.ReLU(), nn.Flatten(),
                   nn.Linear(8, 2)), "no activation"),
])
@pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")
def test_unsupported_cnn_constructs_are_named(model, fragment):
    with pytest.raises(lc.UnsupportedModuleError, match=fragment):
        trace(model, (1, 6, 6))


def test_pool_before_padded_conv_that_drops_rows_is_refused():
    model = nn.Sequential(nn.Conv2d(1, 2, 2), nn.ReLU(), nn.AvgPool2d(2),
                          nn.Conv2d(2, 2, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(8, 2))
    with pytest.raises(lc.UnsupportedModuleError, match="drops border rows"):
        trace(model, (1, 6, 6))  # 6 -> conv 5 -> pool drops the 5th row


@pytest.mark.lava
def test_converted_cnn_runs_spike_exact_on_lava(tmp_path):
    torch.manual_seed(0)
    model = trained_stats(CNN(lambda: lc.ThresholdReLU(1.0)))
    x = np.random.default_rng(0).random((64, 1, 8, 8))
    snn = lc.convert(model, calibration=x, timesteps=6)
    for fixed in snn.fixed.layers:
        assert np.abs(fixed.weight).max() <= (127 if fixed.kind == "conv" else 254)
    path = snn.export(tmp_path / "cnn.net")
    # the pooling folded into conv 3 is computed as sum pooling + its 3x3 kernel
    from lava_convert.sim.kernels import plan_kernels

    pools = [getattr(k.weight, "pool", None) for k in plan_kernels(snn.fixed, 255, "cpu")]
    assert pools[2] == (2, 2) and pools[:2] == [None, None]
    lava = lc.run_lava(path, x[:4], progress=False)
    ref = lc.simulate(path, x[:4])
    assert_same_spikes(lava, ref)
    assert all(ref.spike_counts[l.name].sum() > 0 for l in snn.fixed.layers[:-1])
    flt = snn.simulate(x, mode="float")
    assert np.mean(flt.predictions == snn.simulate(x).predictions) > 0.8


def test_layer_by_layer_float_trains_equal_the_whole_network_simulation():
    torch.manual_seed(1)
    model = trained_stats(CNN(lambda: lc.ThresholdReLU(1.0)))
    x = np.random.default_rng(1).random((16, 1, 8, 8))
    snn = lc.convert(model, calibration=x, timesteps=5, shift="v0").snn
    whole = lc.simulate(snn, x, 5, mode="float")
    trains = torch.as_tensor(x).expand(5, *x.shape)
    for layer in snn.layers:
        trains = float_layer_trains(layer, trains)
        np.testing.assert_array_equal(trains.sum(dim=0).reshape(len(x), -1).numpy(),
                                      whole.spike_counts[layer.name])
    assert all(whole.spike_counts[l.name].sum() > 0 for l in snn.layers[:-1])
    # several initial potentials at once give each start's own trains
    layer, inputs = snn.layers[1], float_layer_trains(snn.layers[0], torch.as_tensor(x).expand(
        5, *x.shape))
    starts = [0.0, 0.3 * layer.threshold, layer.threshold]
    together = float_layer_trains(layer, inputs, v0s=starts)
    assert together.shape[:2] == (5, 3)
    for k, v0 in enumerate(starts):
        alone = float_layer_trains(dataclasses.replace(layer, v0=v0), inputs)
        np.testing.assert_array_equal(together[:, k].numpy(), alone.numpy())
    assert not torch.equal(together[:, 0], together[:, 2])


def test_conv_sums_wrap_at_24_bits_unless_proven_small():
    """Lava's Conv wraps its sums to 24 bits (signed_clamp). Worked by hand: a 1x1 kernel
    of 2**22 on a payload of 3 sums to 12582912 > 2**23, which wraps to 12582912 - 2**24 =
    -4194304; the simulator may skip the wrap only where its bound proves it a no-op."""
    from lava_convert.ir import Synapse
    from lava_convert.sim.synapse import lava_input

    synapse = Synapse("conv", np.full((1, 1, 1, 1), 2**22), -1)
    weight = torch.full((1, 1, 1, 1), float(2**22), dtype=torch.float64)
    payload = torch.full((1, 1, 1, 1), 3.0, dtype=torch.float64)
    assert int(lava_input(synapse, payload, weight)) == -4194304
    small = torch.full((1, 1, 1, 1), 1.0, dtype=torch.float64)
    assert int(lava_input(synapse, small, weight, wrap=False)) == 2**22 == \
        int(lava_input(synapse, small, weight))
