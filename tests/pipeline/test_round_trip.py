"""Every layer and shortcut kind survives write -> read -> simulate unchanged."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from helpers import fixed_layer

import lava_convert as lc
from lava_convert.ir import ConvGeometry, FixedNetwork, Synapse
from lava_convert.netx import read_netx, write_netx

RNG = np.random.default_rng(7)


def ints(lo, hi, shape):
    return RNG.integers(lo, hi, shape)


def conv(name, c_in, shape, k=3, **geometry):
    return fixed_layer(name, "conv", shape, ints(-40, 60, (shape[0], c_in // geometry.get(
        "groups", 1), k, k)), ints(-5, 20, shape[0]), 60, **geometry)


def dense(name, n_in, n, **neuron):
    return fixed_layer(name, "dense", (n,), ints(-30, 50, (n, n_in)), ints(-5, 20, n),
                       neuron.pop("vth", 60), **neuron)


def readout(name, n_in, n=3):
    return dense(name, n_in, n, vth=2**16, spiking=False)


def with_skip(layer, source, kind, weight, geometry=None):
    synapse = Synapse(kind, weight, source, geometry or ConvGeometry())
    return dataclasses.replace(layer, skips=(synapse,))


NETWORKS = {
    # (input shape, layers)
    "dense": ((6,), [dense("h", 6, 5), readout("o", 5)]),
    "dense, hard reset, leaky": ((6,), [dense("h", 6, 5, reset="hard", du=3000, dv=200),
                                        readout("o", 5)]),
    "dense, v0": ((6,), [dense("h", 6, 5, v0=40 << 6), readout("o", 5)]),
    "input layer": ((6,), [fixed_layer("in", "input", (6,), None, np.zeros(6, int), 30),
                           readout("o", 6)]),
    "conv, flatten, dense": ((2, 6, 5), [conv("c", 2, (3, 3, 3), stride=(2, 2),
                                              padding=(1, 1)), readout("o", 27)]),
    "conv, groups and dilation": ((4, 7, 7), [conv("c", 4, (4, 3, 3), groups=2,
                                                   dilation=(2, 2)), readout("o", 36)]),
    "conv identity shortcut": ((1, 5, 5), [
        conv("a", 1, (2, 5, 5), padding=(1, 1)), conv("b", 2, (2, 5, 5), padding=(1, 1)),
        with_skip(conv("c", 2, (2, 5, 5), padding=(1, 1)), 0, "conv",
                  np.eye(2, dtype=int)[:, :, None, None] * 30),
        readout("o", 50)]),
    "conv projection shortcut": ((1, 6, 6), [
        conv("a", 1, (2, 6, 6), padding=(1, 1)),
        with_skip(conv("b", 2, (3, 3, 3), padding=(1, 1), stride=(2, 2)), 0, "conv",
                  ints(-20, 40, (3, 2, 1, 1)), ConvGeometry(stride=(2, 2))),
        readout("o", 27)]),
    "dense shortcut from a conv layer": ((1, 4, 4), [
        conv("a", 1, (2, 4, 4), padding=(1, 1)), dense("b", 32, 6),
        with_skip(dense("c", 6, 5), 0, "dense", ints(-10, 20, (5, 32))), readout("o", 5)]),
}


@pytest.mark.parametrize("name", NETWORKS)
def test_write_read_simulate(name, tmp_path):
    shape, layers = NETWORKS[name]
    net = FixedNetwork(input_shape=shape, input_scale=20.0, input_bits=6, input_signed=False,
                       layers=tuple(layers), timesteps=12)
    back = read_netx(write_netx(net, tmp_path / "n.net"))
    assert (back.input_shape, back.input_bits, back.timesteps) == (shape, 6, 12)
    for a, b in zip(net.layers, back.layers):
        assert (a.name, a.kind, a.shape, a.vth, a.reset, a.du, a.dv, a.v0, a.spiking) == \
            (b.name, b.kind, b.shape, b.vth, b.reset, b.du, b.dv, b.v0, b.spiking)
        assert (a.synapse is None) == (b.synapse is None)
        if a.synapse is not None:
            assert (a.synapse.kind, a.synapse.geometry) == (b.synapse.kind, b.synapse.geometry)
            np.testing.assert_array_equal(a.synapse.weight, b.synapse.weight)
        np.testing.assert_array_equal(a.full_bias(), b.full_bias())
        assert [(k.source, k.kind, k.geometry) for k in a.skips] == \
            [(k.source, k.kind, k.geometry) for k in b.skips]
        for ka, kb in zip(a.skips, b.skips):
            np.testing.assert_array_equal(ka.weight, kb.weight)
    x = RNG.random((16, *shape))
    want, got = lc.simulate(net, x), lc.simulate(back, x)
    for layer in net.layers:
        np.testing.assert_array_equal(want.spike_counts[layer.name],
                                      got.spike_counts[layer.name])
    np.testing.assert_array_equal(want.output, got.output)
    hidden = [l.name for l in net.layers if l.spiking]
    assert all(want.spike_counts[n].sum() > 0 for n in hidden), "a silent layer tests nothing"
