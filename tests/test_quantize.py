"""Quantization: every integer inside Loihi's ranges, with state headroom, and faithful."""

from __future__ import annotations

import numpy as np
import pytest

import lava_convert as lc
from lava_convert.neuron import BIAS_MANT_MAX, VTH_MAX


def test_ranges_and_headroom(digits_snn):
    for fixed, snn in zip(digits_snn.fixed.layers, digits_snn.snn.layers):
        assert np.abs(fixed.weight).max() <= 254
        assert np.abs(fixed.bias).max() <= BIAS_MANT_MAX
        assert 1 <= fixed.vth <= VTH_MAX
        if fixed.spiking:
            assert fixed.vth == round(snn.threshold * fixed.scale)
    for fixed in digits_snn.fixed.layers[1:]:  # spike inputs: exact worst case
        worst = np.maximum(fixed.weight, 0).sum(1) + fixed.bias
        assert (worst + fixed.vth).max() < 2**17


def test_fixed_point_tracks_float(digits, digits_snn):
    x = digits.x_test
    fixed = digits_snn.simulate(x, mode="fixed")
    flt = digits_snn.simulate(x, mode="float")
    assert np.mean(fixed.predictions == flt.predictions) > 0.97
    for name in fixed.spike_counts:
        a, b = fixed.spike_counts[name].sum(1), flt.spike_counts[name].sum(1)
        if b.sum() > 0:
            assert np.corrcoef(a, b)[0, 1] > 0.95


def test_snn_rates_follow_ann_activations(digits, digits_snn):
    T = 32
    result = digits_snn.simulate(digits.x_test, T, mode="float")
    acts = digits_snn.ann.forward(digits.x_test)
    for layer, a in zip(digits_snn.snn.layers[:-1], acts[:-1]):
        rate = result.spike_counts[layer.name] * layer.threshold / T
        assert np.corrcoef(rate.ravel(), a.ravel())[0, 1] > 0.98
        assert np.abs(rate - a).mean() < layer.threshold / T  # within a staircase step


def test_all_zero_layer_is_refused():
    import torch
    from torch import nn

    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    with torch.no_grad():
        model[2].weight.zero_()
    with pytest.raises(lc.QuantizationError, match="'2'.*zero weights"):
        lc.convert(model, calibration=np.random.default_rng(0).random((20, 3)))
