"""Quantization: every integer inside Loihi's ranges, with state headroom, and faithful."""

from __future__ import annotations

import json

import numpy as np
import pytest

import lava_convert as lc
from lava_convert.hw.loihi import BIAS_MANT_MAX, VTH_MAX
from lava_convert.ir import SnnNetwork, SpikingLayer, Synapse
from lava_convert.quantize.scale import (
    AUTO_INPUT_BITS,
    choose_input_bits,
    on_grid,
    quantize,
    weight_bits,
)
from lava_convert.sim.ann import forward


def test_ranges_and_headroom(digits_snn):
    for fixed in digits_snn.fixed.layers:
        assert np.abs(fixed.weight).max() <= 254
        assert np.abs(fixed.bias).max() <= BIAS_MANT_MAX
        assert 1 <= fixed.vth <= VTH_MAX


def hand_network(threshold: float = 1.0, bias: float = 0.0) -> SnnNetwork:
    """Input (2 features in [0, 1]) -> identity layer of IF neurons -> readout [1, -0.5]."""
    hidden = SpikingLayer("h", Synapse("dense", np.eye(2)), np.zeros(2), threshold, True,
                          out_shape=(2,))
    out = SpikingLayer("o", Synapse("dense", np.array([[1.0, -0.5]]), 0), np.array([bias]),
                       0.0, False, out_shape=(1,))
    return SnnNetwork(input_shape=(2,), layers=(hidden, out), timesteps=8,
                      input_range=(0.0, 1.0))


CALIBRATION = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]])


def test_scales_worked_by_hand():
    """The shared-scale rule on a network small enough to work out on paper (8-bit input,
    set explicitly: input_scale 255; weight limit 254, bias mantissa 4095, state 2**17 - 1
    units)."""
    net = quantize(hand_network(), CALIBRATION, lc.ConversionConfig(input_bits=8))
    h, o = net.layers
    assert net.input_scale == 255
    # hidden: weights 1/255 per payload unit -> 254 / (1/255) = 64770 beats the state
    # bound (2**17 - 1) / (1 + 1) = 65535.5 (largest current 1: min(bound 1, 2 x observed 1))
    assert (h.scale, net.quantization[0].scale_limited_by) == (64770, "weights")
    np.testing.assert_array_equal(h.weight, [[254, 0], [0, 254]])
    assert h.vth == 64770
    # readout: weights [1, -0.5] -> 254 (the state bound ((2**17 - 1) // 2) / 1 is larger)
    assert (o.scale, net.quantization[1].scale_limited_by) == (254, "weights")
    np.testing.assert_array_equal(o.weight, [[254, -127]])
    assert o.vth == 2**17 - 1 - 254  # the largest threshold one step of current cannot reach


def test_bias_and_state_limits_worked_by_hand():
    # for stock NetX the bias exponent is fixed at 6: 4095 / 20 = 204.75 < 254 sets the
    # scale; current up to 1 + 20 = 21 -> vth = 2**17 - 1 - ceil(21 * 204.75)
    stock = quantize(hand_network(bias=20.0), CALIBRATION,
                     lc.ConversionConfig.stock_netx())
    o = stock.layers[1]
    assert (o.scale, stock.quantization[1].scale_limited_by) == (204.75, "bias")
    np.testing.assert_array_equal(o.weight, [[205, -102]])
    np.testing.assert_array_equal(o.bias, [4095])
    assert (o.bias_exp, o.vth) == (6, 2**17 - 1 - 4300)
    # lava-convert's own target frees the bias: the weights set the scale (254) and the bias,
    # 20 * 254 = 5080 current units, takes exponent 7 (mantissa 2540, two units each)
    free = quantize(hand_network(bias=20.0), CALIBRATION, lc.ConversionConfig(input_bits=8))
    o = free.layers[1]
    assert (o.scale, free.quantization[1].scale_limited_by) == (254, "weights")
    np.testing.assert_array_equal(o.weight, [[254, -127]])
    np.testing.assert_array_equal(o.bias, [2540])
    assert (o.bias_exp, o.vth) == (7, 2**17 - 1 - 21 * 254)
    high = quantize(hand_network(threshold=1000.0), CALIBRATION, lc.ConversionConfig(input_bits=8))
    h = high.layers[0]
    # threshold 1000 and current 1 must fit 2**17 - 1 units: scale 131071 / 1001
    assert high.quantization[0].scale_limited_by == "state headroom"
    assert h.scale == pytest.approx(131071 / 1001)
    assert h.vth == round(1000 * 131071 / 1001) == 130940


@pytest.mark.parametrize("weights, bits", [([[1]], 2), ([[-1, 1]], 2), ([[3, -4]], 4),
                                           ([[127]], 8), ([[128]], 9), ([[-254, 3]], 9)])
def test_weight_bits_worked_by_hand(weights, bits):
    assert weight_bits(np.array(weights)) == bits  # sign bit plus the largest magnitude's bits


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
    acts = forward(digits_snn.ann, digits.x_test)
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


def checked(snn, x, layer: int, timesteps: int, bias: int, neuron: int = 0):
    """``check_fixed_point`` of ``snn`` on ``x`` with the bias of one neuron set to ``bias``
    (fixed point; the same current in float) and T = ``timesteps``; returns its result."""
    import dataclasses

    from lava_convert.quantize.check import check_fixed_point

    fixed_layers, float_layers = list(snn.fixed.layers), list(snn.snn.layers)
    f = fixed_layers[layer]
    b, real = np.array(f.bias), np.array(float_layers[layer].bias, dtype=np.float64)
    b[neuron], real[neuron] = bias, bias / f.scale
    fixed_layers[layer] = dataclasses.replace(f, bias=b)
    float_layers[layer] = dataclasses.replace(float_layers[layer], bias=real)
    net = dataclasses.replace(snn.fixed, layers=fixed_layers, timesteps=timesteps, check=None)
    return check_fixed_point(net, dataclasses.replace(snn.snn, layers=float_layers),
                             x, tolerance=0.1)


def test_the_24_bit_floor_alone_is_no_warning(digits, digits_snn, caplog):
    from lava_convert.hw.loihi import BIAS_MANT_MAX, V_MAX

    # one neuron held far below threshold (silent in fixed and float point alike) for
    # 64 steps: its v reaches -(2**23 - 1) and stays there
    with caplog.at_level("INFO", logger="lava_convert.quantize"):
        check = checked(digits_snn, digits.x_train, 1, timesteps=64, bias=-BIAS_MANT_MAX)
    name = digits_snn.fixed.layers[1].name
    assert check.layers[1].min_v == -V_MAX
    assert not any(w.startswith(f"layer {name}:") for w in check.warnings), check.warnings
    assert any(r.getMessage().startswith(f"layer {name}: v reaches the 24-bit floor")
               and r.levelname == "INFO" for r in caplog.records)


def test_rate_warning_names_the_floor():
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3), nn.ReLU(), nn.Linear(3, 2))
    with torch.no_grad():
        model[2].bias[0] = -500.0  # a large negative current; it also coarsens the scale
    x = np.random.default_rng(0).random((64, 4))
    snn = lc.convert(model, calibration=x, timesteps=128)
    entry = snn.fixed.check.layer("2")
    assert entry.min_v == -(2**23 - 1) and entry.max_abs_v == 2**23 - 1
    assert any(w.startswith("layer 2: quantization changes spike rates") and "24-bit floor" in w
               for w in snn.warnings), snn.warnings


def test_quantization_report_is_consistent(digits, digits_snn):
    rows = lc.quantization_report(digits_snn, digits.x_test[:100])
    assert [r.name for r in rows] == digits_snn.fixed.layer_names
    for row in rows:
        assert row.weights_clipped == 0.0 and 0.0 <= row.weights_underflow < 0.5
        assert 2 <= row.weight_bits <= 9  # 9 bits hold the dense range +-254
        assert row.u_headroom_bits > 0  # u never wraps
        assert 0 <= row.rate_error < 0.05
    assert "limited by" in lc.format_quantization(rows)


def test_quantization_loss_beyond_tolerance_is_warned_and_recorded(digits, digits_model, caplog,
                                                                   tmp_path):
    with caplog.at_level("WARNING", logger="lava_convert.quantize"):
        coarse = lc.convert(digits_model, calibration=digits.x_train, timesteps=32, input_bits=2)
    warnings = list(coarse.warnings)
    assert any("layer 1: quantization changes spike rates" in w and "tolerance 0.02" in w
               and "input_bits" in w for w in warnings)
    assert [r.getMessage() for r in caplog.records if "spike rates" in r.getMessage()] == \
        [w for w in warnings if "spike rates" in w]
    first = coarse.fixed.check.layers[0]
    assert first.rate_error > 0.02
    sidecar = json.loads(coarse.export(tmp_path / "coarse.net").with_suffix(".json").read_text())
    assert sidecar["warnings"] == warnings
    assert sidecar["layers"][0]["rate_error"] == first.rate_error
    assert lc.read_netx(tmp_path / "coarse.net").check == coarse.fixed.check
    assert 0 <= sidecar["prediction_mismatch"] <= 1
    assert sidecar["check_samples"] == coarse.fixed.check.samples == 256  # a small network
    # the same network passes with a looser tolerance
    loose = lc.convert(digits_model, calibration=digits.x_train, timesteps=32, input_bits=2,
                       rate_tolerance=0.5)
    assert not any("spike rates" in w for w in loose.warnings)


def test_an_underflow_warning_names_the_real_limiter_and_reaches_the_sidecar(tmp_path):
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(),
                          nn.Linear(8, 2))
    with torch.no_grad():
        model[2].weight[:, :4].mul_(0.001)  # half the weights small next to ...
        model[2].bias[0] = 40.0  # ... a large (say folded) bias, which limits the scale
    x = np.random.default_rng(0).random((64, 6))
    converted = lc.convert(model, calibration=x, config=lc.ConversionConfig.stock_netx(
        timesteps=16))  # stock NetX: the bias exponent is fixed at 6
    assert converted.fixed.quantization[1].scale_limited_by == "bias"
    warning = next(w for w in converted.warnings if w.startswith("layer 2:"))
    assert "limited by bias" in warning and "fixed bias exponent" in warning
    side = json.loads(converted.export(tmp_path / "n.net").with_suffix(".json").read_text())
    assert warning in side["warnings"]
    assert lc.read_netx(tmp_path / "n.net").quantization == converted.fixed.quantization
    # lava-convert's own target gives the bias its own exponent; the weights, not the bias,
    # set the scale, which grows (8.4 times here)
    free = lc.convert(model, calibration=x, timesteps=16)
    record = free.fixed.quantization[1]
    assert record.scale_limited_by == "weights" and record.bias_exp > 6
    assert record.scale > 4 * converted.fixed.quantization[1].scale


def one_layer(weight: np.ndarray, threshold: float = 1.0) -> SnnNetwork:
    """Input in [0, 1] -> one dense layer of IF neurons -> a readout summing them."""
    hidden = SpikingLayer("h", Synapse("dense", weight), np.zeros(len(weight)), threshold, True,
                          out_shape=(len(weight),))
    out = SpikingLayer("o", Synapse("dense", np.ones((1, len(weight))), 0), np.zeros(1), 0.0,
                       False, out_shape=(1,))
    return SnnNetwork(input_shape=(weight.shape[1],), layers=(hidden, out), timesteps=8,
                      input_range=(0.0, 1.0))


def test_auto_input_bits_worked_by_hand():
    """Input and first-layer weights share the 24-bit state. Fine grey levels into one
    identity weight: only the input's rounding matters (at 12 bits the weight 65535.5/4095
    rounds to 16, 0.02 % off; at 8 bits it is exact but the input steps are 1/255), so
    the widest payload wins. Binary inputs into many weights of similar size: the input
    is exact at any width and the state bound sets the scale at every width, so each
    input bit costs the weights one and the narrowest wins."""
    grey = np.linspace(0.0, 1.0, 1001)[:, None] * [1.0, 1.0]
    bits, errors = choose_input_bits(hand_network(), grey, lc.ConversionConfig())
    assert bits == max(AUTO_INPUT_BITS) and errors[bits] < errors[8] / 10
    net = quantize(hand_network(), grey, lc.ConversionConfig())
    assert net.input_bits == bits and net.input_scale == 2**bits - 1
    # requantized on an 8-bit grid (the second bias pass), auto keeps the grid's width
    eight = quantize(hand_network(), grey, lc.ConversionConfig(input_bits=8))
    again = quantize(on_grid(hand_network(), eight), grey, lc.ConversionConfig(), eight)
    assert (again.input_bits, again.input_scale) == (8, 255)
    np.testing.assert_array_equal(again.layers[0].weight, eight.layers[0].weight)

    rng = np.random.default_rng(0)
    binary = (rng.random((500, 64)) < 0.75).astype(float)
    # currents up to ~48: scale (2**17 - 1) / (1 + 2 x 48) ~ 1350, weights <= 90 at 4 bits
    similar = one_layer(rng.uniform(0.5, 1.0, size=(16, 64)))
    bits, errors = choose_input_bits(similar, binary, lc.ConversionConfig())
    assert bits == min(AUTO_INPUT_BITS)
    assert all(errors[b] < errors[b + 1] for b in AUTO_INPUT_BITS[:-1])


def test_the_chosen_input_width_is_kept_by_the_second_bias_pass_and_written(
        tmp_path, digits, digits_model):
    converted = lc.convert(digits_model, calibration=digits.x_train[:300], timesteps=8,
                           bias_calibration=100)
    assert converted.config.input_bits == "auto"
    chosen, _ = choose_input_bits(converted.snn, digits.x_train[:300], converted.config)
    assert converted.fixed.input_bits == chosen
    back = lc.read_netx(converted.export(tmp_path / "auto.net"))
    assert (back.input_bits, back.input_scale) == (chosen, converted.fixed.input_scale)
    x = digits.x_test[:50]
    np.testing.assert_array_equal(lc.simulate(back, x, 8).predictions,
                                  converted.simulate(x, 8).predictions)


@pytest.mark.parametrize("bits", ["8", 1, 25, 8.0])
def test_input_bits_must_be_auto_or_a_width(bits):
    with pytest.raises(lc.ConfigError, match="input_bits.*'auto' or 2..24"):
        lc.ConversionConfig(input_bits=bits)


def test_check_sample_count_follows_the_network_size():
    """The fixed-point check simulates 256 calibration samples of an MNIST-sized network
    and fewer (at least 32) of one whose simulation costs more than its budget; the count
    is recorded with the check and survives the file."""
    from helpers import fixed_layer

    from lava_convert.ir import FixedNetwork
    from lava_convert.quantize.check import CHECK_BUDGET, check_samples
    from lava_convert.sim.kernels import products_per_step

    def net(width, T):
        layers = (fixed_layer("in", "input", (width,), None, np.zeros(width, np.int64), vth=1),
                  fixed_layer("out", "dense", (width,), np.ones((width, width), np.int64),
                              np.zeros(width, np.int64), vth=2**16))
        return FixedNetwork(input_shape=(width,), input_scale=1.0, input_bits=6,
                            input_signed=False, layers=layers, timesteps=T)

    small, large = net(100, 32), net(8192, 64)
    assert products_per_step(small) == 100 * 100
    assert check_samples(small, 1000) == 256 and check_samples(small, 40) == 40
    # 8192**2 * 64 multiplications per sample: the budget fits 8 samples, the floor is 32
    assert CHECK_BUDGET // (8192**2 * 64) < 32 == check_samples(large, 1000)
    assert check_samples(net(2048, 64), 1000) == CHECK_BUDGET // (2048**2 * 64) == 128
