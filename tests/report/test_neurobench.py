"""NeuroBench's metrics of an ANN and of its converted network, against the ``neurobench``
package's own functions (single_layer_MACs, ConnectionSparsity, Footprint) on the same
layers and the same inputs, step by step."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import lava_convert as lc
from lava_convert.report.neurobench import ann_metrics, snn_metrics
from lava_convert.sim.inputs import quantize_input
from lava_convert.sim.reference import simulate_fixed

layers = pytest.importorskip("neurobench.metrics.utils.layers")
static = pytest.importorskip("neurobench.metrics.static")


class Wrapped:
    """What NeuroBench's static metrics read of a model."""

    def __init__(self, net: nn.Module):
        self.net = net

    def __net__(self) -> nn.Module:
        return self.net


def residual_cnn() -> nn.Module:
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
            self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
            self.conv3 = nn.Conv2d(4, 4, 3, padding=1)
            self.pool = nn.AvgPool2d(2)
            self.fc = nn.Linear(4 * 4 * 4, 5)

        def forward(self, x):
            a = torch.relu(self.conv1(x))
            b = torch.relu(self.conv2(a))
            c = torch.relu(self.conv3(b) + a)  # an identity shortcut
            return self.fc(self.pool(c).flatten(1))

    torch.manual_seed(0)
    net = Net().eval()
    with torch.no_grad():
        net.conv2.weight[:, :, 0, 0] = 0  # some zero weights: sparsity to measure
    return net


def torch_synapse(synapse) -> nn.Module:
    w = torch.as_tensor(np.asarray(synapse.weight), dtype=torch.float32)
    if synapse.kind == "dense":
        module = nn.Linear(w.shape[1], w.shape[0], bias=False)
    else:
        g = synapse.geometry
        module = nn.Conv2d(w.shape[1] * g.groups, w.shape[0], tuple(w.shape[2:]),
                           stride=g.stride, padding=g.padding, dilation=g.dilation,
                           groups=g.groups, bias=False)
    module.weight.data = w
    return module


def test_synaptic_operations_and_sparsity_equal_neurobench_on_a_residual_cnn():
    model = residual_cnn()
    x = np.random.default_rng(0).random((6, 1, 8, 8), dtype=np.float32)
    snn = lc.convert(model, calibration=x, timesteps=4, progress=False)
    net = snn.fixed
    assert any(layer.skips for layer in net.layers)
    T = 4
    run = simulate_fixed(net, x, T, record_trains=True)
    ours = snn_metrics(net, run, x)

    # NeuroBench, step by step: each synapse on the spikes (or graded input) it reads
    shapes = [tuple(net.input_shape)] + [layer.shape for layer in net.layers]
    graded = torch.as_tensor(quantize_input(net, x), dtype=torch.float32).reshape(
        len(x), *net.input_shape)
    trains = [None] + [run.spike_trains[layer.name] for layer in net.layers]
    macs = acs = dense = 0.0
    modules = []
    for i, layer in enumerate(net.layers):
        for synapse, source in [(layer.synapse, i)] + [(s, s.source + 1) for s in layer.skips]:
            module = torch_synapse(synapse)
            modules.append(module)
            for t in range(T):
                if source == 0:
                    inp = graded
                else:
                    inp = torch.as_tensor(trains[source][:, t], dtype=torch.float32)
                    inp = inp.reshape(len(x), *shapes[source])
                if synapse.kind == "dense":
                    inp = inp.reshape(len(x), -1)
                ops, spiking = layers.single_layer_MACs(inp, module)
                total, _ = layers.single_layer_MACs(inp, module, total=True)
                acs, macs = (acs + float(ops), macs) if spiking else (acs, macs + float(ops))
                dense += float(total)
    n = len(x)
    assert ours.effective_macs == pytest.approx(macs / n)
    assert ours.effective_acs == pytest.approx(acs / n)
    assert ours.dense_synops == pytest.approx(dense / n)
    assert ours.effective_acs > 0 and ours.effective_macs > 0
    sparsity = static.ConnectionSparsity()(Wrapped(nn.Sequential(*modules)))
    assert ours.connection_sparsity == pytest.approx(float(sparsity), abs=5e-4)  # 3 decimals


def test_the_ann_row_equals_neurobench():
    model = residual_cnn()
    x = np.random.default_rng(1).random((5, 1, 8, 8), dtype=np.float32)
    ours = ann_metrics(model, x)
    macs = dense = 0.0
    inputs = []
    hooks = [m.register_forward_hook(lambda m, a, o: inputs.append((m, a[0])))
             for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(torch.as_tensor(x))
    for h in hooks:
        h.remove()
    for module, inp in inputs:
        ops, spiking = layers.single_layer_MACs(inp, module)
        total, _ = layers.single_layer_MACs(inp, module, total=True)
        assert not spiking
        macs += float(ops)
        dense += float(total)
    assert ours.effective_macs == pytest.approx(macs / len(x))
    assert ours.dense_synops == pytest.approx(dense / len(x))
    assert ours.effective_acs == 0
    assert ours.footprint_bytes == static.Footprint()(Wrapped(model))
    assert ours.connection_sparsity == pytest.approx(
        float(static.ConnectionSparsity()(Wrapped(model))), abs=5e-4)
