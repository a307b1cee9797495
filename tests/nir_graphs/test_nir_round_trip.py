"""Our networks out to NIR and back: identical spike trains, in both encodings, for every
layer and shortcut kind; converted networks give the same Lava-exact network again."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

import lava_convert as lc
from lava_convert.ir import ConvGeometry, SnnNetwork, SpikingLayer, Synapse
from lava_convert.nir.reader import graph_to_snn, load_graph
from lava_convert.nir.writer import to_nir, write_nir
from lava_convert.sim.reference import simulate_float

nir = pytest.importorskip("nir")
RNG = np.random.default_rng(3)


def conv(name, c_in, shape, source=-1, k=3, threshold=1.0, v0=0.0, **geometry):
    groups = geometry.get("groups", 1)
    weight = RNG.normal(0.1, 0.5, (shape[0], c_in // groups, k, k))
    return SpikingLayer(name, Synapse("conv", weight, source, ConvGeometry(**geometry)),
                        RNG.normal(0.05, 0.05, shape[0]), threshold, True, out_shape=shape,
                        v0=v0)


def dense(name, n_in, n, source=-1, spiking=True, **neuron):
    return SpikingLayer(name, Synapse("dense", RNG.normal(0.1, 0.6, (n, n_in)), source),
                        RNG.normal(0.05, 0.05, n), 0.0 if not spiking else
                        neuron.pop("threshold", 1.0), spiking, out_shape=(n,), **neuron)


def skip(layer, synapse):
    import dataclasses
    return dataclasses.replace(layer, skips=(synapse,))


NETWORKS = {
    "dense": ((6,), [dense("h", 6, 5), dense("o", 5, 3, 0, spiking=False)]),
    "dense, hard reset, v0": ((6,), [dense("h", 6, 5, reset="hard", v0=0.4),
                                     dense("o", 5, 3, 0, spiking=False)]),
    "a start per channel (conv) and per neuron (dense)": ((2, 6, 5), [
        conv("c", 2, (3, 3, 3), stride=(2, 2), padding=(1, 1), v0=np.array([0.0, 0.5, 0.9])),
        dense("h", 27, 4, 0, v0=np.array([0.0, 0.3, 0.6, 0.95])),
        dense("o", 4, 3, 1, spiking=False)]),
    "leaky (LIF) and current-based (CubaLIF)": ((6,), [
        dense("h", 6, 5, dv=0.1), dense("g", 5, 4, 0, du=0.25, dv=0.2),
        dense("o", 4, 3, 1, spiking=False, dv=0.05)]),
    "conv, flatten, dense": ((2, 6, 5), [conv("c", 2, (3, 3, 3), stride=(2, 2),
                                              padding=(1, 1)),
                                         dense("o", 27, 3, 0, spiking=False)]),
    "conv, groups and dilation": ((4, 7, 7), [conv("c", 4, (4, 3, 3), groups=2,
                                                   dilation=(2, 2)),
                                              dense("o", 36, 3, 0, spiking=False)]),
    "conv identity shortcut": ((1, 5, 5), [
        conv("a", 1, (2, 5, 5), padding=(1, 1)), conv("b", 2, (2, 5, 5), 0, padding=(1, 1)),
        skip(conv("c", 2, (2, 5, 5), 1, padding=(1, 1)),
             Synapse("conv", np.eye(2)[:, :, None, None], 0)),
        dense("o", 50, 3, 2, spiking=False)]),
    "conv projection shortcut": ((1, 6, 6), [
        conv("a", 1, (2, 6, 6), padding=(1, 1)),
        skip(conv("b", 2, (3, 3, 3), 0, padding=(1, 1), stride=(2, 2)),
             Synapse("conv", RNG.normal(0, 0.5, (3, 2, 1, 1)), 0, ConvGeometry(stride=(2, 2)))),
        dense("o", 27, 3, 1, spiking=False)]),
    "dense shortcut from a conv layer": ((1, 4, 4), [
        conv("a", 1, (2, 4, 4), padding=(1, 1)), dense("b", 32, 6, 0),
        skip(dense("c", 6, 5, 1), Synapse("dense", RNG.normal(0, 0.3, (5, 32)), 0)),
        dense("o", 5, 3, 2, spiking=False)]),
}


def network(name: str) -> SnnNetwork:
    shape, layers = NETWORKS[name]
    return SnnNetwork(input_shape=shape, layers=tuple(layers), timesteps=10,
                      input_range=(0.0, 1.0))


@pytest.mark.parametrize("encoding", ["if", "exact"])
@pytest.mark.parametrize("name", NETWORKS)
def test_out_and_back_gives_identical_spike_trains(name, encoding, tmp_path):
    snn = network(name)
    path = write_nir(snn, tmp_path / "net.nir", encoding)
    back = graph_to_snn(load_graph(path))
    x = RNG.random((12, *snn.input_shape))
    a = simulate_float(snn, x, 10, record_trains=True)
    b = simulate_float(back, x, 10, record_trains=True)
    assert [l.name for l in back.layers] == [l.name for l in snn.layers]
    assert back.timesteps == 10 and back.input_range == (0.0, 1.0)
    for layer in snn.layers:
        assert np.array_equal(a.spike_trains[layer.name], b.spike_trains[layer.name]), layer.name
        assert a.spike_trains[layer.name].any() or not layer.spiking, "a silent layer tests nothing"
    assert np.allclose(a.output, b.output, rtol=1e-12, atol=1e-12)


def test_a_start_per_channel_must_fit_its_layer(tmp_path):
    graph = to_nir(network("a start per channel (conv) and per neuron (dense)"), "if")
    graph.nodes["c.neuron"].metadata["lava_convert.v0"] = np.array([0.1, 0.2])
    with pytest.raises(lc.NirGraphError, match=r"layer 'c.*v0 has 2 values.*takes one or 3"):
        graph_to_snn(graph)
    graph.nodes["c.neuron"].metadata["lava_convert.v0"] = np.array([0.1, np.nan, 0.2])
    with pytest.raises(lc.NirGraphError, match=r"node 'c.neuron'.*v0 must be finite"):
        graph_to_snn(graph)


def test_the_exact_encoding_is_plain_nir(tmp_path):
    """A soft-reset layer becomes integrator, threshold and a fed-back Scale(-threshold);
    no IF node, nothing that needs our metadata for the reset."""
    graph = to_nir(network("dense"), "exact")
    kinds = {name: type(node).__name__ for name, node in graph.nodes.items()}
    assert kinds["h.integrator"] == "I" and kinds["h.threshold"] == "Threshold"
    assert kinds["h.reset"] == "Scale" and "IF" not in kinds.values()
    assert ("h.reset", "h.integrator") in graph.edges
    assert np.all(graph.nodes["h.reset"].scale == -graph.nodes["h.threshold"].threshold)
    # read back by NIR itself, with type checking
    back = nir.read(write_nir(network("dense"), tmp_path / "n.nir", "exact"))
    assert set(back.nodes) == set(graph.nodes)


def test_the_default_encoding_says_soft_reset_in_metadata_only():
    graph = to_nir(network("dense"), "if")
    node = graph.nodes["h.neuron"]
    assert type(node).__name__ == "IF" and np.all(node.v_reset == 0)  # what NIR readers see
    assert node.metadata["lava_convert.reset"] == "soft"
    stripped = nir.NIRGraph(nodes={k: v for k, v in graph.nodes.items()}, edges=graph.edges,
                            metadata={"lava_convert.dt": 1.0, "lava_convert.timesteps": 10,
                                      "lava_convert.input_range": np.array([0.0, 1.0])})
    node.metadata = {}  # a reader without our metadata must be told the reset
    with pytest.raises(lc.NirGraphError, match=r"node 'h.neuron' \(IF\).*reset='soft'"):
        graph_to_snn(stripped)
    assert graph_to_snn(stripped, reset="hard").layers[0].reset == "hard"


@pytest.mark.parametrize("encoding", ["if", "exact"])
def test_a_converted_network_comes_back_as_the_same_lava_network(encoding, digits_snn,
                                                                 digits, tmp_path):
    path = digits_snn.export_nir(tmp_path / "digits.nir", encoding)
    back = lc.from_nir(path, digits.x_train)
    for a, b in zip(digits_snn.fixed.layers, back.fixed.layers):
        assert a.name == b.name and a.vth == b.vth and a.v0 == b.v0 and a.reset == b.reset
        assert np.array_equal(a.synapse.weight, b.synapse.weight)
        assert np.array_equal(a.full_bias(), b.full_bias())
    x = digits.x_test[:100]
    ours, theirs = digits_snn.simulate(x), back.simulate(x)
    assert np.array_equal(ours.output, theirs.output)
    assert back.passes == ("nir_import", "quantize", "check") and back.ann is None
    with pytest.raises(lc.ConfigError, match="read from NIR"):
        back.ann_logits(x)
    calibrating = lc.ConversionConfig(bias_calibration=64, readout_calibration=64)
    with pytest.raises(lc.ConfigError, match=r"bias_calibration=64, readout_calibration=64 "
                                             r"calibrates against the ANN"):
        lc.from_nir(path, digits.x_train, config=calibrating)


@st.composite
def sequentials(draw):
    """An ``nn.Sequential`` of 1 to 30 modules: dense layers with ReLUs, and modules that
    compute nothing (``Identity``, ``Dropout``) anywhere, so that layer names (module
    indices) mix one- and two-digit numbers."""
    hidden = draw(st.integers(0, 4))
    kinds = [k for _ in range(hidden) for k in ("linear", "relu")] + ["linear"]
    for _ in range(draw(st.integers(0, 30 - len(kinds)))):
        kinds.insert(draw(st.integers(0, len(kinds) - 1)), draw(st.sampled_from(
            ["identity", "dropout"])))
    torch.manual_seed(draw(st.integers(0, 2**16)))
    width, modules = 6, []
    for k in kinds:
        if k == "linear":
            out = draw(st.integers(3, 7))
            modules.append(torch.nn.Linear(width, out))
            with torch.no_grad():  # mostly positive: every layer activates
                modules[-1].weight.uniform_(-0.2, 0.6)
                modules[-1].bias.fill_(0.1)
            width = out
        else:
            modules.append({"relu": torch.nn.ReLU(), "identity": torch.nn.Identity(),
                            "dropout": torch.nn.Dropout(0.0)}[k])
    return torch.nn.Sequential(*modules)


def _layers_at_8_11_13() -> torch.nn.Sequential:
    """Dense layers at module indices 8, 11 and 13 ('11' sorts before '8' as text)."""
    torch.manual_seed(0)
    fill = [torch.nn.Identity() for _ in range(8)]
    hidden = [torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Identity(),
              torch.nn.Linear(5, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3)]
    for m in hidden[::3]:
        with torch.no_grad():
            m.weight.uniform_(-0.2, 0.6)
            m.bias.fill_(0.1)
    return torch.nn.Sequential(*fill, *hidden)


@settings(max_examples=12, deadline=None)
@given(model=sequentials(), encoding=st.sampled_from(["if", "exact"]))
@example(model=_layers_at_8_11_13(), encoding="exact")
def test_converted_sequentials_of_any_length_read_back(model, encoding, tmp_path_factory):
    """Layers are read in graph order, whatever their names sort as text."""
    x = RNG.random((64, 6))
    converted = lc.convert(model, calibration=x, timesteps=6, balancing="max",
                           progress=False)
    path = write_nir(converted.snn, tmp_path_factory.mktemp("nir") / "net.nir", encoding)
    back = graph_to_snn(load_graph(path))
    assert [l.name for l in back.layers] == [l.name for l in converted.snn.layers]
    a = simulate_float(converted.snn, x[:16], 6, record_trains=True)
    b = simulate_float(back, x[:16], 6, record_trains=True)
    for layer in converted.snn.layers:
        assert np.array_equal(a.spike_trains[layer.name], b.spike_trains[layer.name])
    assert np.allclose(a.output, b.output, rtol=1e-12, atol=1e-12)
