"""lava_convert.netx.Network in a user's own Lava graph, stock NetX next to it, and the
stock-netx target run by unmodified NetX."""

from __future__ import annotations

import importlib.util

import h5py
import numpy as np
import pytest
from helpers import ROOT

import lava_convert as lc
from lava_convert.lava.compat import ensure_lava
from lava_convert.sim.results import assert_same_spikes

pytestmark = pytest.mark.lava


def example():
    """examples/netx_network_in_your_graph.py, the script docs/netx.md shows."""
    spec = importlib.util.spec_from_file_location(
        "netx_example", ROOT / "examples" / "netx_network_in_your_graph.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def docs_script() -> str:
    """The user script of docs/netx.md's section "NetX files in your own Lava graph"."""
    text = (ROOT / "docs" / "netx.md").read_text()
    section = text[text.index("## NetX files in your own Lava graph"):]
    return section[section.index("```python\n") + 10:section.index("\n```\n")]


@pytest.mark.parametrize("name", [
    "digits_mlp", "mnist_cnn_qcfs",
    # 28 s; residual networks on Lava are also checked by pipeline/test_residual.py
    pytest.param("fashion_mnist_resnet_qcfs", marks=pytest.mark.slow)])
def test_the_docs_script_equals_the_reference_on_shipped_exports(name):
    path = ROOT / "netx_exports" / f"{name}.net"
    script = docs_script()
    assert '"netx_exports/mnist_cnn_qcfs.net"' in script
    assert len(script.splitlines()) <= 17  # imports, then what a user really writes
    scope: dict = {}
    exec(script.replace('"netx_exports/mnist_cnn_qcfs.net"', repr(str(path))), scope)
    reference = lc.simulate(path, scope["x"])
    assert scope["counts"].keys() == reference.spike_counts.keys()
    for layer, counts in reference.spike_counts.items():
        np.testing.assert_array_equal(scope["counts"][layer], counts, err_msg=layer)
    assert sum(c.sum() for c in reference.spike_counts.values()) > 0


@pytest.fixture(scope="module")
def stock_file(digits, digits_model, tmp_path_factory):
    config = lc.ConversionConfig.stock_netx(timesteps=8)
    converted = lc.convert(digits_model, calibration=digits.x_train, config=config)
    return converted.export(tmp_path_factory.mktemp("stock") / "digits_stock.net")


def test_stock_target_runs_in_unmodified_netx_spike_for_spike(stock_file, digits):
    ensure_lava()
    from lava.lib.dl.netx import hdf5

    file = lc.read_netx(stock_file)
    x = digits.x_test[:4]
    stock = example().run_in_lava_graph(str(stock_file), x, hdf5.Network,
                                        input_message_bits=file.input_bits)
    reference = lc.simulate(stock_file, x)
    for layer, counts in reference.spike_counts.items():
        np.testing.assert_array_equal(stock[layer], counts)
    assert reference.spike_counts[file.layers[-1].name].sum() > 0  # read out by spikes
    # ours is a drop-in: the same arguments (reset_offset included) give the same spikes
    from lava_convert.netx import Network

    ours = example().run_in_lava_graph(str(stock_file), x, Network,
                                       input_message_bits=file.input_bits)
    assert ours.keys() == stock.keys()
    for layer in stock:
        np.testing.assert_array_equal(ours[layer], stock[layer])


def test_a_stock_network_built_after_ours_is_still_stock(stock_file, digits_net):
    ensure_lava()
    from lava.lib.dl.netx import hdf5
    from lava.proc.lif.process import LIF

    from lava_convert.lava.procs.process import SoftResetLIF
    from lava_convert.netx import Network

    lookup = hdf5.Network.get_neuron_params
    ours = Network(net_config=str(digits_net), reset_interval=32)
    assert all(type(block.neuron) is SoftResetLIF for block in ours.layers)
    stock = hdf5.Network(net_config=str(stock_file), input_message_bits=8)
    assert all(type(block.neuron) is LIF for block in stock.layers)
    assert hdf5.Network.get_neuron_params is lookup
    assert (len(ours), len(stock)) == (3, 3)
    assert ours.inp.shape == stock.inp.shape == (64,) and ours.out.shape == (10,)


def test_stock_netx_refuses_a_default_export_and_says_why(digits_net):
    ensure_lava()
    from lava.lib.dl.netx import hdf5

    with pytest.raises(NotImplementedError, match="concat is not implemented"):
        hdf5.Network(net_config=str(digits_net), input_message_bits=8)
    with h5py.File(digits_net) as f:
        note = f["lava_convert"].attrs["stock_netx"]
    assert "reset by subtraction" in note and "lava_convert.netx.Network" in note


@pytest.mark.parametrize("path", sorted(ROOT.glob("netx_exports/*.net")), ids=lambda p: p.name)
def test_stock_netx_never_misreads_a_shipped_export(path):
    """Every shipped file either runs in stock NetX exactly as the reference computes, or
    stock NetX refuses it."""
    ensure_lava()
    from lava.lib.dl.netx import hdf5

    from lava_convert.netx.format import stock_differences

    file = lc.read_netx(path)
    if stock_differences(file):
        with pytest.raises(NotImplementedError, match="concat is not implemented"):
            hdf5.Network(net_config=str(path), input_message_bits=file.input_bits)
        return
    x = np.random.default_rng(2).random((2, *file.input_shape))
    stock = example().run_in_lava_graph(str(path), x, hdf5.Network,
                                        input_message_bits=file.input_bits)
    for layer, counts in lc.simulate(path, x).spike_counts.items():
        np.testing.assert_array_equal(stock[layer], counts)


def test_network_arguments_are_checked(digits_net):
    ensure_lava()
    from lava_convert.netx import Network

    with pytest.raises(lc.ConfigError, match="reset_interval"):
        Network(net_config=str(digits_net), reset_interval=0)
    with pytest.raises(lc.ConfigError, match="leave no layer"):
        Network(net_config=str(digits_net), skip_layers=3)
    with pytest.raises(lc.ConfigError, match="input_shape"):
        Network(net_config=str(digits_net), input_shape=(4, 4, 1))
    with pytest.raises(lc.NetXFormatError, match="no such file"):
        Network(net_config="nowhere.net")
    assert len(Network(net_config=str(digits_net), input_shape=(8, 8, 1))) == 3
    part = Network(net_config=str(digits_net), num_layers=2)
    assert len(part) == 2 and part.out.shape == (64,)


def test_with_lavas_spike_dataloader(digits_net, digits):
    """Lava's own io.dataloader feeds the network sample by sample, as in lava-dl's NetX
    tutorials; the hidden layer's spike counts equal the reference's."""
    ensure_lava()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc import io

    from lava_convert.netx import Network

    file = lc.read_netx(digits_net)
    T, n = file.timesteps, 3
    x = digits.x_test[:n]
    payload = lc.quantize_input(file, x)
    dataset = [(np.repeat(p[:, None], T, axis=1), int(y)) for p, y in zip(payload,
                                                                            digits.y_test[:n])]
    # the data loader sends sample k from step kT + 2 on (one step after the ring buffer)
    net = Network(net_config=str(digits_net), reset_interval=T, reset_offset=2)
    loader = io.dataloader.SpikeDataloader(dataset=dataset, interval=T)
    steps = n * T + len(net.layers) + 1
    sink = io.sink.RingBuffer(shape=net.layers[0].out.shape, buffer=steps)
    loader.s_out.connect(net.inp)
    net.layers[0].out.connect(sink.a_in)
    try:
        net.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        train = sink.data.get()
    finally:
        net.stop()
    counts = np.stack([train[:, k * T + 2:(k + 1) * T + 2].sum(axis=1) for k in range(n)])
    np.testing.assert_array_equal(counts, lc.simulate(digits_net, x).spike_counts[
        file.layers[0].name])


def test_a_bias_exponent_runs_spike_exact_on_lava_and_stock_netx_refuses_it(tmp_path):
    """A layer whose large bias takes its own exponent (above NetX's 6): Lava (through
    lava_convert.netx.Network) equals the reference, and stock NetX refuses the file."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(),
                          nn.Linear(8, 2))
    with torch.no_grad():
        model[2].bias[0] = 40.0
    x = np.random.default_rng(0).random((64, 6))
    converted = lc.convert(model, calibration=x, timesteps=16)
    assert converted.fixed.layers[1].bias_exp > 6
    path = converted.export(tmp_path / "b.net")
    assert lc.read_netx(path).layers[1].bias_exp == converted.fixed.layers[1].bias_exp
    lava, ref = lc.run_lava(path, x[:8], progress=False), lc.simulate(path, x[:8])
    assert_same_spikes(lava, ref)
    ensure_lava()
    from lava.lib.dl.netx import hdf5

    with pytest.raises(NotImplementedError, match="concat"):
        hdf5.Network(net_config=str(path), input_message_bits=8)


@pytest.mark.parametrize("T,chunk", [(2, 1), pytest.param(3, 2, marks=pytest.mark.slow)])
def test_a_network_deeper_than_its_window_records_every_sample(T, chunk):
    """Depth 8 > T: the first layer runs several windows ahead of the readout. Its
    per-sample recordings must not be reset before they are read (the first sample's
    first-layer counts were once lost at T=6)."""
    path = ROOT / "netx_exports" / "fashion_mnist_resnet_qcfs.net"
    x = np.random.default_rng(1).random((3, 1, 28, 28))
    lava, ref = lc.run_lava(path, x, T, chunk=chunk, progress=False), lc.simulate(path, x, T)
    assert_same_spikes(lava, ref)
