"""``target="sdnn"``: an ANN converted to sigma-delta neurons that unmodified stock NetX
runs; the reference equals Lava on it, and it computes the ANN (with plain ReLUs) after
one step per layer."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from helpers import lava_messages
from torch import nn

import lava_convert as lc
from lava_convert.config import ConversionConfig
from lava_convert.errors import ConfigError, UnsupportedModuleError
from lava_convert.sim.reference import simulate_fixed
from lava_convert.zoo.train import train_classifier

SDNN = ConversionConfig.for_target("sdnn", timesteps=8)


@pytest.fixture(scope="module")
def digits_cnn(digits):
    """A small trained CNN on the 8x8 digits: conv, average pooling (folded into the next
    conv), BatchNorm (folded), a dense readout; plain ReLUs."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
                          nn.Conv2d(6, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.Flatten(), nn.Linear(8 * 4 * 4, 10))
    return train_classifier(model, digits.x_train, digits.y_train, epochs=15, progress=False)


def ann_predictions(model: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.as_tensor(x, dtype=torch.float32)).argmax(1).numpy()


def test_sdnn_computes_the_ann_after_one_step_per_layer(digits, digits_cnn):
    """The converted CNN agrees with PyTorch's predictions on (nearly) every test digit
    from step depth + 1 on (input, two convs and the readout: 4 layers), and has nothing
    to say before its readout has heard from the input."""
    snn = lc.convert(digits_cnn, calibration=digits.x_train, config=SDNN, progress=False)
    assert [layer.neuron for layer in snn.fixed.layers] == ["sdnn"] * 4
    assert "sigma_delta" in snn.passes and "balance" not in snn.passes
    run = simulate_fixed(snn.fixed, digits.x_test, 8)
    ann = ann_predictions(digits_cnn, digits.x_test)
    per_step = np.mean(run.predictions_per_step == ann[None, :], axis=1)
    assert np.all(per_step[3:] >= 0.98), per_step  # step 4 on: every layer has heard
    assert per_step[2] < 0.5  # step 3: the readout has not (its argmax is class 0)
    assert np.all(np.diff(run.predictions_per_step[3:], axis=0) == 0)  # then it is silent


@pytest.mark.lava
def test_an_sdnn_export_runs_in_stock_netx_equal_to_the_reference(digits, digits_cnn,
                                                                  tmp_path):
    """The exported file, built by unmodified ``netx.hdf5.Network`` with Lava's own
    models, sends every message the reference sends; ``run_lava`` (our Network, sample
    by sample) gives the same counts and readout."""
    snn = lc.convert(digits_cnn, calibration=digits.x_train, config=SDNN, progress=False)
    path = snn.export(tmp_path / "cnn_sdnn.net")
    x = digits.x_test[:3]
    ref = simulate_fixed(lc.read_netx(path), x, 6, record_trains=True)
    payload = lc.quantize_input(snn.fixed, x).reshape(len(x), *snn.fixed.input_shape)
    for k in range(2):
        for layer, messages in zip(snn.fixed.layers, lava_messages(path, payload[k], 6,
                                                                   "stock")):
            np.testing.assert_array_equal(messages, ref.spike_trains[layer.name][k],
                                          err_msg=f"layer {layer.name}, sample {k}")
    lc.assert_same_spikes(lc.run_lava(path, x, 6, progress=False), ref)


def test_sdnn_refuses_what_it_cannot_express(digits, digits_cnn, caplog):
    """Settings its neurons have no use for, residual shortcuts, a Lava run on several
    workers and a NIR export are refused naming what to do; a QCFS layer keeps its clip
    (two ReLU populations) but not its staircase, with a warning naming the layers."""
    with pytest.raises(ConfigError, match="for_target"):
        ConversionConfig(target="sdnn")
    for bad in ({"bias_calibration": 64}, {"shift": "v0"}, {"channel_thresholds": True},
                {"balancing": "auto"}):
        with pytest.raises(ConfigError, match="target='sdnn'"):
            ConversionConfig.for_target("sdnn", **bad)
    from lava_convert.zoo.models import resnet

    with pytest.raises(UnsupportedModuleError, match="residual shortcuts"):
        lc.convert(resnet((1, 8, 8), widths=(4, 8), act="relu"), digits.x_train[:32],
                   config=SDNN, progress=False)
    from lava_convert.zoo.models import mlp
    from lava_convert.zoo.train import digits_mlp

    with caplog.at_level(logging.WARNING):
        qcfs = lc.convert(mlp((1, 8, 8), (32,), 10, act="qcfs", levels=4), digits.x_train[:64],
                          config=SDNN, progress=False)
    assert "QCFS staircases of" in caplog.text
    assert qcfs.fixed.layers[1].shape == (64,)  # its clip: two populations of 32
    clipped = lc.convert(digits_mlp(), digits.x_train[:64], config=SDNN, progress=False)
    with pytest.raises(ConfigError, match="sample by sample"):
        lc.run_lava(clipped.fixed, digits.x_test[:2], 4, workers=2)
    with pytest.raises(ConfigError, match="no NIR form"):
        clipped.export_nir("never.nir")


def test_a_clip_becomes_two_relu_populations_exactly(digits):
    """``split_clips``: the clipped digits MLP (ThresholdReLU) as ReLUs only, its clipped
    layers doubled (``relu(z) - relu(z - t)``) and read through ``[W, -W]``: the same
    logits as the clipped graph; converted for sigma-delta neurons, it agrees with
    PyTorch's predictions on (nearly) every test digit once every layer has heard."""
    from lava_convert.frontend.torch_fx import trace
    from lava_convert.quantize.sigma_delta import split_clips
    from lava_convert.sim.ann import forward
    from lava_convert.zoo.train import digits_mlp

    model = train_classifier(digits_mlp(), digits.x_train, digits.y_train, epochs=15,
                             progress=False)
    graph = trace(model, (1, 8, 8))
    split = split_clips(graph)
    assert [layer.activation for layer in split.layers] == ["relu", "relu", None]
    assert split.layers[0].out_shape == (256,) and split.layers[1].out_shape == (128,)
    np.testing.assert_allclose(forward(split, digits.x_test)[-1],
                               forward(graph, digits.x_test)[-1], rtol=1e-9, atol=1e-9)
    snn = lc.convert(model, calibration=digits.x_train, config=SDNN, progress=False)
    run = simulate_fixed(snn.fixed, digits.x_test, 4)
    assert np.mean(run.predictions == ann_predictions(model, digits.x_test)) >= 0.98
