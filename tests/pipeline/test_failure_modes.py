"""One test per failure class: the error's type, and a message naming problem, place and fix.

Failure classes covered elsewhere: unsupported modules, MaxPool and conv
options (frontend/test_torch_fx, sim/test_conv), HDF5 files (netx/test_netx_io,
netx/test_hostile_files, fuzzed in netx/test_fuzz), dataset files (zoo/test_data), Lava
runs (lava_runtime/test_guard).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import lava_convert as lc

X = np.random.default_rng(0).random((32, 4))


def mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))


class Functional(nn.Module):
    """``forward`` with a functional call between two layers."""

    def __init__(self, fn) -> None:
        super().__init__()
        self.fn, self.a, self.b = fn, nn.Linear(4, 6), nn.Linear(6, 3)

    def forward(self, x):
        return self.b(self.fn(self.a(x)))


@pytest.mark.parametrize("fn, name", [(torch.sigmoid, "sigmoid"), (F.leaky_relu, "leaky_relu"),
                                      (lambda t: t * 2, "mul"), (F.gelu, "gelu")])
def test_unsupported_functional_calls_are_named(fn, name):
    with pytest.raises(lc.UnsupportedModuleError, match=rf"function {name} at '{name}'.*"
                                                        r"supported: nn\.Linear"):
        lc.convert(Functional(fn), X)


def test_functional_relu_becomes_spiking_neurons_not_a_relu():
    torch.manual_seed(0)
    ann = Functional(F.relu)
    converted = lc.convert(ann, X)
    hidden = converted.snn.layers[0]
    assert hidden.spiking and hidden.threshold > 0  # an integrate-and-fire layer
    # and it computes what the ReLU network computes
    with torch.no_grad():
        expected = ann(torch.as_tensor(X, dtype=torch.float32)).argmax(1).numpy()
    assert np.mean(converted.simulate(X, 256, mode="float").predictions == expected) > 0.9


def test_maxpool_functional_suggests_average_pooling():
    class Pool(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c, self.fc = nn.Conv2d(1, 2, 3), nn.Linear(18, 2)

        def forward(self, x):
            return self.fc(F.max_pool2d(F.relu(self.c(x)), 2).flatten(1))

    with pytest.raises(lc.UnsupportedModuleError, match="max_pool2d.*nn.AvgPool2d"):
        lc.convert(Pool(), np.random.default_rng(0).random((8, 1, 8, 8)))


@pytest.mark.parametrize("calibration, fragment", [
    (np.full((4, 4), np.nan), "16 NaN/inf values"),
    (np.full((4, 4), np.inf), "NaN/inf"),
    (np.zeros((0, 4)), r"non-empty batch .* shape \(0, 4\)"),
    (np.zeros(4), r"got shape \(4,\).*a few hundred"),
    ([["a"] * 4], "not numeric"),
    (np.zeros((8, 5)), r"shape \(5,\) do not fit layer '0' \(Linear\(in_features=4"),
    (np.zeros((8, 2, 2)), r"shape \(2, 2\) do not fit layer '0'"),
])
def test_bad_calibration_data(calibration, fragment):
    with pytest.raises(lc.CalibrationError, match=fragment):
        lc.convert(mlp(), calibration)


def test_layer_silent_on_calibration_data():
    model = mlp()
    with torch.no_grad():
        model[0].bias.fill_(-100.0)
    with pytest.raises(lc.CalibrationError, match="layer '0' never activates.*calibration"):
        lc.convert(model, X)


def test_non_finite_weights():
    model = mlp()
    with torch.no_grad():
        model[2].weight[1, 2] = float("inf")
    with pytest.raises(lc.UnsupportedModuleError, match="'2' contain NaN or inf.*repair"):
        lc.convert(model, X)


def test_weights_that_vanish_in_fixed_point():
    model = mlp()
    with torch.no_grad():
        model[0].weight.mul_(1e-7)  # dwarfed by the bias: every integer weight would be 0
    with pytest.raises(lc.QuantizationError, match="layer '0': every weight rounds to 0.*bias"):
        lc.convert(model, X)


def test_threshold_out_of_proportion_to_weights():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), lc.ThresholdReLU(1e-7), nn.Linear(6, 3))
    with pytest.raises(lc.QuantizationError,
                       match=r"layer '0': threshold 1e-07 becomes 0 .* 1\.\.131071.*Raise"):
        lc.convert(model, X)


def test_weight_underflow_is_warned(caplog):
    model = mlp()
    with torch.no_grad():
        model[0].weight[0, 0] = 1e4  # one huge weight sets the scale; the rest round to 0
    with caplog.at_level("WARNING", logger="lava_convert.quantize"):
        converted = lc.convert(model, X, balancing="max")  # one threshold for the layer
    assert any("layer 0: " in r.getMessage() and "round to 0" in r.getMessage()
               for r in caplog.records)
    assert converted.fixed.quantization[0].weights_underflow > 0.25


@pytest.mark.parametrize("call", [
    lambda net: lc.convert(mlp(), X, timesteps=0),
    lambda net: lc.convert(mlp(), X, timesteps=-3),
    lambda net: net.simulate(X, 0),
    lambda net: net.simulate(X, 2.5),
    lambda net: lc.simulate(net.fixed, X, True),
])
def test_non_positive_or_fractional_timesteps(call):
    net = lc.convert(mlp(), X, timesteps=8)
    with pytest.raises(lc.ConfigError, match="timesteps=.* is invalid: .*positive whole number"):
        call(net)


@pytest.mark.parametrize("x, fragment", [
    (np.ones((2, 5)), r"input shape \(2, 5\) does not match the network's \(samples, 4\)"),
    (np.ones(4), r"one sample of shape \(4,\); pass a batch"),
    (np.ones((2, 4), dtype=bool), "dtype bool is not numeric"),
    (np.ones((2, 4), dtype=complex), "dtype complex128 is not numeric"),
    (np.array([["a"] * 4]), "is not numeric"),
    (np.full((2, 4), np.nan), "NaN or inf"),
    (np.zeros((0, 4)), "no samples"),
])
def test_wrong_inputs_for_a_network(x, fragment):
    net = lc.convert(mlp(), X, timesteps=8)
    with pytest.raises(lc.InputError, match=fragment):
        net.simulate(x)


def test_bad_settings_name_the_field_and_the_choices():
    with pytest.raises(lc.ConfigError, match=r"unknown ConversionConfig keys \['foo'\]"):
        lc.convert(mlp(), X, foo=3)
    with pytest.raises(lc.ConfigError, match=r"reset='zero' is invalid: use one of"):
        lc.ConversionConfig(reset="zero")
    with pytest.raises(lc.ConfigError, match="needs a torch.nn.Module, got str"):
        lc.convert("model.pt", X)
    with pytest.raises(lc.ConfigError, match="mode='exact' is invalid"):
        lc.simulate(lc.convert(mlp(), X).fixed, X, mode="exact")


def test_every_error_is_one_of_ours_and_a_builtin():
    for cls in (lc.ConfigError, lc.CalibrationError, lc.QuantizationError, lc.InputError,
                lc.NetXFormatError, lc.UnsupportedModuleError, lc.DatasetError,
                lc.LavaRunError, lc.LavaTimeoutError, lc.LavaUnavailableError):
        assert issubclass(cls, lc.LavaConvertError)
        assert issubclass(cls, (ValueError, TypeError, OSError, ImportError, RuntimeError))
