"""Our NetX reader and fixed-point simulator against lava-dl's own fixtures with ground truth."""

from __future__ import annotations

from importlib import metadata

import numpy as np
import pytest

import lava_convert as lc
from lava_convert.sim.reference import simulate_fixed
from lava_convert.sim.results import assert_same_spikes

FIXTURES = "tests/lava/lib/dl/netx"


def fixture(name: str):
    path = metadata.distribution("lava-dl").locate_file(f"{FIXTURES}/{name}")
    if not path.exists():
        pytest.skip(f"lava-dl fixture {name} is not installed")
    return path


def tinynet():
    """tiny.net with the input neurons' bias of the recorded sample (as lava-dl's test sets it)."""
    import dataclasses

    net = lc.read_netx(fixture("tiny.net"))
    bias = np.load(fixture("gts/tinynet/input_bias.npy")).astype(np.int64)  # W, H, C
    first = dataclasses.replace(net.layers[0], bias=bias.transpose(2, 1, 0))
    return dataclasses.replace(net, layers=(first, *net.layers[1:]))


def test_reader_understands_tinynet():
    net = lc.read_netx(fixture("tiny.net"))
    assert [l.kind for l in net.layers] == ["input", "conv", "conv"]
    assert [l.shape for l in net.layers] == [(3, 16, 16), (24, 6, 6), (36, 1, 1)]
    conv = net.layers[1]
    assert conv.geometry.stride == (2, 2) and conv.vth == 25 and conv.du == 4095 and conv.dv == 1024
    assert conv.reset == "hard" and net.timesteps == 64


def test_reference_reproduces_tinynet_ground_truth():
    net = tinynet()
    result = simulate_fixed(net, np.zeros((1, 3, 16, 16)), 16, record_trains=True)
    out = result.spike_trains[net.layers[-1].name][0]  # (T, 36)
    gt = np.load(fixture("gts/tinynet/output.npy"))[0].reshape(36, -1).T  # (16, 36)
    # lava-dl's test compares Lava's output steps 2..16 with gt[1:]; Lava's step 2 is the
    # output layer's first step in our aligned simulation.
    assert gt[1:].sum() > 0
    np.testing.assert_array_equal(out[:15], gt[1:])
    hidden = result.spike_trains[net.layers[1].name][0]
    gt_hidden = np.load(fixture("gts/tinynet/layer1.npy"))[0].reshape(24 * 36, -1).T
    np.testing.assert_array_equal(hidden[:15], gt_hidden[1:16])


@pytest.mark.lava
def test_our_lava_runtime_runs_tinynet_like_the_reference():
    net = tinynet()
    x = np.zeros((2, 3, 16, 16))
    ref = simulate_fixed(net, x, 16)
    lava = lc.run_lava(net, x, timesteps=16, progress=False)
    assert_same_spikes(lava, ref)


def test_the_input_transform_is_read_as_stock_reads_it(tmp_path):
    """lava-dl's own test_input_transform: tiny.net's input layer declares weight 36 and
    bias 34 (mnist.net 76 and 64); a file without them gets stock's 64 and 0; our export
    keeps them."""
    net = lc.read_netx(fixture("tiny.net"))
    assert net.input_transform == (36, 34)
    from lava_convert.netx.writer import write_netx

    again = lc.read_netx(write_netx(net, tmp_path / "tiny_again.net"))
    assert again.input_transform == (36, 34)
    assert lc.read_netx(fixture("mnist.net")).input_transform == (76, 64)
    assert lc.read_netx("netx_exports/digits_mlp.net").input_transform == (64, 0)


@pytest.mark.lava
def test_our_network_has_stocks_input_transform():
    from lava_convert.netx import Network

    net = Network(net_config=str(fixture("tiny.net")), num_layers=1)
    assert net.in_layer.transform["weight"] == 36 and net.in_layer.transform["bias"] == 34
