"""The Loihi 2 fit check: exact limits worked by hand, custom parts, the core estimate."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from helpers import ROOT, fixed_layer

import lava_convert as lc
from lava_convert.ir import FixedNetwork
from lava_convert.report.loihi2 import NEURONS_PER_CORE, loihi2_fit


def network(*layers, bits=8):
    return FixedNetwork(input_shape=(4,), input_scale=1.0, input_bits=bits,
                        input_signed=False, layers=tuple(layers), timesteps=8)


def dense(n_in, n, weight=1, **neuron):
    neuron = {"reset": "hard", **neuron}
    return fixed_layer(f"d{n}", "dense", (n,), np.full((n, n_in), weight), np.zeros(n, int),
                       100, **neuron)


def failing(fit):
    return [(layer.name, limit.name) for layer in fit.layers for limit in layer.limits
            if limit.exact and not limit.ok]


def test_a_stock_network_within_every_limit():
    fit = loihi2_fit(network(dense(4, 3), dense(3, 2)))
    assert fit.ok and failing(fit) == [] and fit.custom == ()
    assert (fit.cores, fit.chips) == (2, 1)


@pytest.mark.parametrize("change, limit", [
    (dict(weight=255), "weights (dense"),
    (dict(vth=2**17), "threshold mantissa"),
    (dict(bias=np.full(3, 4096)), "bias mantissa"),
])
def test_each_exact_limit_is_checked(change, limit):
    layer = dense(4, 3, weight=change.pop("weight", 1))
    layer = dataclasses.replace(layer, **change)
    assert [name for _, name in failing(loihi2_fit(network(layer)))] == [
        next(l.name for l in loihi2_fit(network(layer)).layers[0].limits
             if l.name.startswith(limit))]


def test_conv_weights_are_8_bit_and_payloads_24():
    conv = fixed_layer("c", "conv", (1, 2, 2), np.full((1, 1, 3, 3), 128), np.zeros(1, int), 9,
                       reset="hard")
    net = dataclasses.replace(network(conv), input_shape=(1, 4, 4))
    assert [name for _, name in failing(loihi2_fit(net))] == ["weights (conv: 8-bit signed)"]
    assert not loihi2_fit(network(dense(4, 3), bits=25)).ok


def test_a_wide_layer_needs_more_cores():
    fit = loihi2_fit(network(dense(4, NEURONS_PER_CORE + 1)))
    assert fit.layers[0].cores == 2  # 8193 neurons, 8192 per core


def test_soft_reset_v0_and_potential_readout_need_custom_parts():
    fit = loihi2_fit(network(dense(4, 3, reset="soft", v0=64), dense(3, 2, spiking=False)))
    text = " ".join(fit.custom)
    assert "soft reset" in text and "v0" in text and "integrating readout" in text
    assert "per neuron" not in text
    starts = dense(4, 3, reset="soft", v0=np.array([0, 64, 128]))
    text = " ".join(loihi2_fit(network(starts, dense(3, 2, spiking=False))).custom)
    assert "one value per neuron in layers ['d3']" in text, text


@pytest.mark.parametrize("path", sorted(ROOT.glob("netx_exports/*.net")), ids=lambda p: p.name)
def test_every_shipped_export_fits_its_exact_limits(path):
    fit = loihi2_fit(path)
    assert fit.ok, failing(fit)
    assert fit.chips == 1 and fit.cores >= len(lc.read_netx(path).layers)
