"""The helpers around a NetX network in a user's Lava graph: the layout they build and the
cut back into per-sample counts, worked by hand; their refusals. (The whole round trip
against the reference runs in test_network.py, on the docs' own script.)"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import fixed_layer

import lava_convert as lc
from lava_convert.errors import ConfigError, InputError
from lava_convert.ir import FixedNetwork
from lava_convert.lava.compat import ensure_lava


def conv_net(T: int = 2) -> FixedNetwork:
    """input (2, 3, 4) -> 1x1 conv (1 channel) -> dense 3: depths 1 and 2."""
    conv = fixed_layer("conv", "conv", (1, 3, 4), np.ones((1, 2, 1, 1), dtype=np.int64),
                       np.zeros(1, dtype=np.int64), 1)
    dense = fixed_layer("dense", "dense", (3,), np.ones((3, 12), dtype=np.int64),
                        np.zeros(3, dtype=np.int64), 1, spiking=False)
    return FixedNetwork(input_shape=(2, 3, 4), input_scale=7.0, input_bits=4,
                        input_signed=False, layers=(conv, dense), timesteps=T)


class Sink:
    """What lava_counts reads of a ring-buffer sink: ``data.get()``."""

    def __init__(self, train):
        self.data = type("Var", (), {"get": staticmethod(lambda: train)})


def test_the_source_holds_each_quantized_sample_for_T_steps_in_xyf_order():
    ensure_lava()
    from lava_convert.netx import Network

    net = conv_net(T=2)
    process = Network(net, reset_interval=2, reset_offset=1)
    x = np.random.default_rng(0).random((2, 2, 3, 4))
    source, steps = lc.lava_source(process, x)
    assert steps == 2 * 2 + 2  # one extra step per synapse
    data = source.data.init
    assert data.shape == (4, 3, 2, steps)  # x, y, f, steps
    for k in range(2):
        want = np.rint(x[k] * 7.0).transpose(2, 1, 0)  # C,H,W -> x,y,f
        for t in range(2):
            np.testing.assert_array_equal(data[..., 2 * k + t], want)
    assert not data[..., 4:].any()


def test_counts_are_cut_at_kT_plus_depth_and_put_back_in_chw_order():
    ensure_lava()
    from lava_convert.netx import Network

    net = conv_net(T=2)
    process = Network(net, reset_interval=2, reset_offset=1)
    steps = 2 * 2 + 2
    conv = np.zeros((4, 3, 1, steps))  # x, y, f, steps
    conv[3, 0, 0, [1, 2]] = 1   # x=3, y=0: steps 2 and 3 (indices 1, 2): sample 0
    conv[0, 2, 0, [3, 4]] = 1   # x=0, y=2: indices 3, 4: sample 1
    conv[1, 1, 0, 0] = 1        # index 0: before any sample reached the layer
    dense = np.zeros((3, steps))
    dense[2, [2, 3]] = 1        # depth 2: indices 2, 3 are sample 0
    dense[0, 5] = 1             # index 5: sample 1
    counts = lc.lava_counts(process, [Sink(conv), Sink(dense)], 2)
    want_conv = np.zeros((2, 1, 3, 4))  # C, H, W
    want_conv[0, 0, 0, 3] = 2
    want_conv[1, 0, 2, 0] = 2
    np.testing.assert_array_equal(counts["conv"], want_conv.reshape(2, -1))
    np.testing.assert_array_equal(counts["dense"], [[0, 0, 2], [1, 0, 0]])


def test_refusals_name_the_problem():
    ensure_lava()
    from lava_convert.netx import Network

    process = Network(conv_net(), reset_interval=2, reset_offset=1)
    with pytest.raises(InputError, match=r"channels are last.*x.transpose\(0, 3, 1, 2\)"):
        lc.lava_source(process, np.zeros((1, 3, 4, 2)))
    with pytest.raises(InputError, match="axis 3 has 5 entries, the network's has 4"):
        lc.lava_source(process, np.zeros((1, 2, 3, 5)))
    with pytest.raises(ConfigError, match="1 sinks for a network of 2 layers"):
        lc.lava_counts(process, [Sink(np.zeros((4, 3, 1, 6)))], 2)
    with pytest.raises(InputError, match="'dense'.*holds 3 steps, 2 samples need 6"):
        lc.lava_counts(process, [Sink(np.zeros((4, 3, 1, 6))), Sink(np.zeros((3, 3)))], 2)
    with pytest.raises(ConfigError, match="not a NetX network process"):
        lc.lava_source(object(), np.zeros((1, 2, 3, 4)))
