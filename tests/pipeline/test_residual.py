"""Residual networks: tracing adds, the multi-input NetX extension, delays on Lava."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import lava_convert as lc
from lava_convert.frontend.torch_fx import trace
from lava_convert.ir import skip_delays
from lava_convert.report.cost import macs
from lava_convert.report.inspect import describe
from lava_convert.sim.ann import forward
from lava_convert.sim.reference import float_layer_trains, simulate_float
from lava_convert.sim.results import assert_same_spikes
from lava_convert.zoo.models import resnet

RNG = np.random.default_rng(0)
X_IMG = RNG.random((48, 1, 8, 8))


def _randomize_batchnorm(model: nn.Module) -> nn.Module:
    """Non-trivial running statistics, so folding errors show."""
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=gen) * 0.4 - 0.2)
            m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=gen) * 0.4 - 0.2)
    return model.eval()


def small_resnet() -> nn.Module:
    """Stem, an identity block, a strided block with a 1x1 conv + BN shortcut, Linear."""
    return _randomize_batchnorm(resnet((1, 8, 8), widths=(4, 8), act="relu"))


class ShortcutFirst(nn.Module):
    """A block whose forward() computes the shortcut before the main path."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.short = nn.Conv2d(4, 6, 1, stride=2)
        self.c1, self.c2 = nn.Conv2d(4, 6, 3, 2, 1), nn.Conv2d(6, 6, 3, 1, 1)
        self.fc = nn.Linear(6 * 4 * 4, 3)

    def forward(self, x):
        h = F.relu(self.stem(x))
        s = self.short(h)
        out = F.relu(torch.add(s, self.c2(F.relu(self.c1(h)))))
        return self.fc(out.flatten(1))


class LongDenseSkip(nn.Module):
    """Dense shortcuts: one from a conv layer (flattened), one across three synapses."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, stride=2, padding=1)
        self.a, self.b, self.c = nn.Linear(32, 12), nn.Linear(12, 12), nn.Linear(12, 12)
        self.proj = nn.Linear(32, 12)
        self.d, self.out = nn.Linear(12, 12), nn.Linear(12, 3)

    def forward(self, x):
        h = F.relu(self.conv(x)).flatten(1)
        a = F.relu(self.a(h))
        b = F.relu(self.b(a) + self.proj(h))  # dense shortcut from the conv layer
        c = F.relu(self.c(b))
        d = F.relu(self.d(c) + a)  # identity across b, c, d: delay 2
        return self.out(d)


def _manual_seed(model_fn, seed=0):
    torch.manual_seed(seed)
    return model_fn().eval()


@pytest.mark.parametrize("make", [small_resnet, lambda: _manual_seed(ShortcutFirst),
                                  lambda: _manual_seed(LongDenseSkip)])
def test_residual_models_trace_to_the_same_function(make):
    model = make()
    graph = trace(model, (1, 8, 8))
    assert sum(len(l.skips) for l in graph.layers) >= 1
    x = torch.as_tensor(X_IMG[:7], dtype=torch.float32)
    with torch.no_grad():
        want = model(x).numpy()
    np.testing.assert_allclose(forward(graph, X_IMG[:7])[-1], want, rtol=1e-4, atol=1e-5)


def test_shortcuts_become_synapses_into_the_block_output():
    graph = trace(small_resnet(), (1, 8, 8))
    names = [l.name for l in graph.layers]
    by_name = {l.name: l for l in graph.layers}
    identity = by_name["3.conv2"].skips[0]
    assert names[identity.source] == "0" and identity.kind == "conv"
    np.testing.assert_array_equal(identity.weight[:, :, 0, 0], np.eye(4))  # unit 1x1 conv
    projection = by_name["4.conv2"].skips[0]
    assert names[projection.source] == "3.conv2" and projection.geometry.stride == (2, 2)
    assert any("folded batch norm 4.shortcut.1 into 4.shortcut.0" in n for n in graph.notes)


def test_delays_pad_the_shorter_path():
    graph = trace(_manual_seed(LongDenseSkip), (1, 8, 8))
    delays = {l.name: d for l, d in zip(graph.layers, skip_delays(graph.layers)) if d}
    assert delays == {"b": [1], "d": [2]}  # depth(t) - depth(s) - 1: 3 - 1 - 1, 5 - 2 - 1


class _TwoActivations(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.c, self.b = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x):
        h = F.relu(self.a(x))
        return self.b(F.relu(self.c(h)) + h)


class _FromInput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x):
        return self.b(F.relu(self.a(x) + x))


class _ShortcutWithNeurons(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem, self.a, self.s = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 4)
        self.b, self.out = nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x):
        h = F.relu(self.stem(x))
        s = F.relu(self.s(h))  # an activation on the shortcut: its own neurons
        return self.out(F.relu(self.b(F.relu(self.a(h))) + s))


class _PooledIdentity(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem, self.c = nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(2, 2, 3, 2, 1)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        h = F.relu(self.stem(x))
        return self.fc(F.relu(self.c(h) + F.avg_pool2d(h, 2)).flatten(1))


@pytest.mark.parametrize("model, shape, fragment", [
    (_TwoActivations(), (4,), "an add of two activations at 'add'.*before its activation"),
    (_FromInput(), (4,), "a shortcut from the network input.*stem"),
    (_ShortcutWithNeurons(), (4,), "two synapses from|no input from"),
    (_PooledIdentity(), (1, 4, 4), "pooled identity shortcut.*strided 1x1 Conv2d"),
])
def test_unsupported_residual_graphs_are_named_not_dropped(model, shape, fragment):
    with pytest.raises(lc.UnsupportedModuleError, match=fragment):
        trace(model, shape)


@pytest.fixture(scope="module")
def converted():
    return lc.convert(small_resnet(), X_IMG, timesteps=64, bias_calibration=16)


def test_spiking_resnet_tracks_its_ann(converted):
    """The residual neurons' rates reproduce the ANN's block outputs (shortcut included)."""
    result = simulate_float(converted.snn, X_IMG, 64)
    acts = forward(converted.ann, X_IMG)
    for i, layer in enumerate(converted.snn.layers[:-1]):
        if not layer.skips:
            continue
        rate = result.spike_counts[layer.name] / 64 * layer.threshold
        ann = np.minimum(acts[i].reshape(len(X_IMG), -1), layer.threshold)
        assert np.corrcoef(rate.ravel(), ann.ravel())[0, 1] > 0.95, layer.name


def test_per_layer_trains_with_shortcuts_equal_the_whole_network(converted):
    snn = converted.snn
    x = torch.as_tensor(X_IMG[:5]).reshape(5, 1, 8, 8)
    trains, counts = {-1: x.expand(16, *x.shape)}, simulate_float(snn, X_IMG[:5], 16)
    for i, layer in enumerate(snn.layers[:-1]):
        trains[i] = float_layer_trains(layer, trains[i - 1],
                                       [trains[k.source] for k in layer.skips])
        np.testing.assert_array_equal(trains[i].sum(dim=0).reshape(5, -1).numpy(),
                                      counts.spike_counts[layer.name])


def test_quantized_shortcuts_share_the_layer_scale(converted):
    fixed = {l.name: l for l in converted.fixed.layers}
    snn = {l.name: l for l in converted.snn.layers}
    for name, layer in fixed.items():
        for k, sk in zip(layer.skips, snn[name].skips):
            # in real units the integer shortcut is the float one up to rounding at the
            # layer's own scale
            assert np.abs(k.weight / layer.scale - sk.weight).max() <= 0.5 / layer.scale
            assert np.abs(k.weight).max() <= 127
    assert macs(fixed["3.conv2"]) == (np.count_nonzero(fixed["3.conv2"].weight)
                                      + np.count_nonzero(fixed["3.conv2"].skips[0].weight)) * 64


def test_netx_round_trip_keeps_the_graph(converted, tmp_path):
    path = converted.export(tmp_path / "res.net")
    back = lc.read_netx(path)
    for a, b in zip(converted.fixed.layers, back.layers):
        assert (a.name, a.kind, len(a.skips)) == (b.name, b.kind, len(b.skips))
        for ka, kb in zip(a.skips, b.skips):
            assert (ka.source, ka.kind, ka.geometry) == (kb.source, kb.kind, kb.geometry)
            np.testing.assert_array_equal(ka.weight, kb.weight)
    ref, again = lc.simulate(converted, X_IMG, 16), lc.simulate(back, X_IMG, 16)
    np.testing.assert_array_equal(ref.output, again.output)
    with h5py.File(path) as f:
        assert f["lava_convert"].attrs["format_version"] == 2
        types = [f[f"layer/{i}/type"][0].decode() for i in range(len(f["layer"]))]
        inputs = [len(f[f"layer/{i}/inputs"]) for i, t in enumerate(types) if t == "concat"]
        assert inputs == [1, 2, 2]  # the stock-NetX guard on the first layer, two residual adds
        g = f[f"layer/{types.index('concat', types.index('concat') + 1)}/inputs"]
        assert g["0/delay"][()] == 0 and g["1/delay"][()] == 1


def test_plain_networks_stay_plain_netx(digits, digits_model, digits_snn, tmp_path):
    stock = lc.convert(digits_model, calibration=digits.x_train,
                       config=lc.ConversionConfig.stock_netx(timesteps=8))
    path = stock.export(tmp_path / "plain.net")
    with h5py.File(path) as f:
        assert f["lava_convert"].attrs["format_version"] == 1
        assert all(f[f"layer/{i}/type"][0].decode() != "concat" for i in range(len(f["layer"])))
    # a soft-reset network is guarded: one single-input multi-input layer, version 2
    path = digits_snn.export(tmp_path / "soft.net")
    with h5py.File(path) as f:
        assert f["lava_convert"].attrs["format_version"] == 2
        types = [f[f"layer/{i}/type"][0].decode() for i in range(len(f["layer"]))]
        assert types == ["input", "concat", "dense", "dense"]
        assert list(f["layer/1/inputs"]) == ["0"] and f["layer/1/inputs/0/source"][()] == 0


@pytest.mark.parametrize("key, value, fragment", [
    ("inputs/1/delay", 3, r"inputs/1/delay: 3 steps, but the paths into this layer need 1"),
    ("inputs/1/source", 99, r"inputs/1/source: 99 is not an earlier layer with neurons"),
    ("inputs/0/source", 1, r"no input reads the layer just before it"),
])
def test_reader_names_a_broken_multi_input_layer(converted, tmp_path, key, value, fragment):
    path = converted.export(tmp_path / "res.net")
    with h5py.File(path, "r+") as f:
        i = next(i for i in range(len(f["layer"])) if f[f"layer/{i}/type"][0] == b"concat"
                 and len(f[f"layer/{i}/inputs"]) == 2)  # a residual add, not the guard
        del f[f"layer/{i}/{key}"]
        f[f"layer/{i}/{key}"] = np.int64(value)
    with pytest.raises(lc.NetXFormatError, match=fragment):
        lc.read_netx(path)


@pytest.mark.lava
def test_stock_netx_refuses_a_residual_file(converted, tmp_path):
    from lava_convert.lava.compat import ensure_lava

    ensure_lava()
    from lava.lib.dl.netx import hdf5

    path = converted.export(tmp_path / "res.net")
    with pytest.raises(NotImplementedError, match="concat is not implemented"):
        hdf5.Network(net_config=str(path))
    info = describe(path)
    assert not info["stock_netx_loads"]
    assert "concat is not implemented" in info["stock_netx"][0]
    assert "residual shortcuts" in " ".join(info["stock_netx"])


@pytest.mark.lava
@pytest.mark.parametrize("make", [small_resnet, lambda: _manual_seed(LongDenseSkip)])
def test_residual_networks_run_spike_exact_on_lava(make):
    net = lc.convert(make(), X_IMG, timesteps=8).fixed
    x = X_IMG[:5]
    ref = lc.simulate(net, x, 8)
    lava = lc.run_lava(net, x, 8, chunk=2, progress=False)
    assert_same_spikes(lava, ref)
    assert sum(c.sum() for c in ref.spike_counts.values()) > 0


def test_on_grid_network_predicts_the_fixed_point_spikes():
    """Float simulation with the quantized weights and thresholds tracks the fixed-point
    network more closely than the unquantized network does (what the second bias
    calibration pass relies on)."""
    from lava_convert.quantize.scale import on_grid

    c = lc.convert(small_resnet(), X_IMG, timesteps=32)
    fixed = lc.simulate(c, X_IMG, 32)
    grid = simulate_float(on_grid(c.snn, c.fixed), X_IMG, 32)
    plain = simulate_float(c.snn, X_IMG, 32)
    for layer in c.snn.layers[:-1]:
        err_grid = np.abs(grid.spike_counts[layer.name] - fixed.spike_counts[layer.name]).mean()
        err_plain = np.abs(plain.spike_counts[layer.name] - fixed.spike_counts[layer.name]).mean()
        assert err_grid <= err_plain, layer.name
    assert np.mean(grid.predictions == fixed.predictions) >= np.mean(
        plain.predictions == fixed.predictions)
