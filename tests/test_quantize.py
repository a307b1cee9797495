"""Quantization: every integer inside Loihi's ranges, with state headroom, and faithful."""

from __future__ import annotations

import json

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


def test_warns_when_a_hidden_layer_saturates(caplog):
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3), nn.ReLU(), nn.Linear(3, 2))
    with torch.no_grad():
        model[2].bias[0] = -500.0  # a persistent, large negative current in layer '2'
    x = np.random.default_rng(0).random((64, 4))
    with caplog.at_level("WARNING", logger="lava_convert.quantize"):
        snn = lc.convert(model, calibration=x, timesteps=128)
    assert any("layer 2: v saturates" in r.getMessage() for r in caplog.records)
    entry = next(e for e in snn.fixed.meta["layers"] if e["name"] == "2")
    assert entry["max_abs_v"] == 2**23 - 1


def test_quantization_report_is_consistent(digits, digits_snn):
    rows = lc.quantization_report(digits_snn, digits.x_test[:100])
    assert [r.name for r in rows] == digits_snn.fixed.layer_names
    for row, layer in zip(rows, digits_snn.fixed.layers):
        assert row.weights_clipped == 0.0 and 0.0 <= row.weights_underflow < 0.5
        assert row.weight_bits == int(np.ceil(np.log2(np.abs(layer.weight).max() + 1))) + 1
        assert row.u_headroom_bits > 0  # u never wraps
        assert 0 <= row.rate_error < 0.05
    assert "limited by" in lc.format_quantization(rows)


def test_quantization_loss_beyond_tolerance_is_warned_and_recorded(digits, digits_model, caplog,
                                                                   tmp_path):
    with caplog.at_level("WARNING", logger="lava_convert.quantize"):
        coarse = lc.convert(digits_model, calibration=digits.x_train, timesteps=32, input_bits=2)
    warnings = coarse.fixed.meta["warnings"]
    assert any("layer 1: quantization changes spike rates" in w and "tolerance 0.02" in w
               and "input_bits" in w for w in warnings)
    assert [r.getMessage() for r in caplog.records if "spike rates" in r.getMessage()] == \
        [w for w in warnings if "spike rates" in w]
    first = coarse.fixed.meta["layers"][0]
    assert first["rate_error"] > 0.02
    sidecar = json.loads(coarse.export(tmp_path / "coarse.net").with_suffix(".json").read_text())
    assert sidecar["warnings"] == warnings
    assert sidecar["layers"][0]["rate_error"] == first["rate_error"]
    assert 0 <= sidecar["prediction_mismatch"] <= 1
    # the same network passes with a looser tolerance
    loose = lc.convert(digits_model, calibration=digits.x_train, timesteps=32, input_bits=2,
                       rate_tolerance=0.5)
    assert not any("spike rates" in w for w in loose.fixed.meta["warnings"])
