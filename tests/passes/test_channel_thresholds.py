"""Per-channel thresholds (``channel_thresholds=True``): one threshold per output channel of a
conv layer (per neuron of a dense layer), folded into the weights so that Lava's one
threshold per layer serves it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import lava_convert as lc
from lava_convert.frontend.torch_fx import trace
from lava_convert.passes.balance import CHANNEL_BINS, channel_statistics
from lava_convert.sim.results import assert_same_spikes


def two_channel_net() -> nn.Sequential:
    """Input 1x2x2 of ones. A 1x1 conv: channel 0 weighs each pixel 0.25 (activation 0.25),
    channel 1 weighs it 1 (activation 1); the readout adds every output."""
    conv = nn.Conv2d(1, 2, 1, bias=False)
    conv.weight.data = torch.tensor([0.25, 1.0]).reshape(2, 1, 1, 1)
    out = nn.Linear(8, 1, bias=False)
    out.weight.data = torch.ones(1, 8)
    return nn.Sequential(conv, nn.ReLU(), nn.Flatten(), out)


def test_thresholds_per_channel_fold_into_the_weights_as_worked_by_hand():
    x = np.ones((4, 1, 2, 2))
    snn = lc.convert(two_channel_net(), calibration=x, timesteps=4, channel_thresholds=True,
                     balancing="max", shift="none").snn
    conv, out = snn.layers
    # thresholds 0.25 (channel 0: activation 0.25 per pixel) and 1.0: the layer keeps 1.0
    assert conv.threshold == 1.0 and np.allclose(conv.channel_scale, [0.25, 1.0])
    assert conv.threshold_source == "max per channel"
    # channel 0's input is scaled by 1 / 0.25 = 4: both channels now reach the threshold
    assert np.allclose(conv.synapse.weight.reshape(-1), [1.0, 1.0])
    # a spike of channel 0 stands for 0.25, of channel 1 for 1.0: the readout's columns
    assert np.allclose(out.synapse.weight.reshape(2, 4), [[0.25] * 4, [1.0] * 4])
    # both channels now get their threshold's worth each step: v = 1, 2 (spike), 2, 2 ...
    # (a spike needs v > threshold): 3 spikes in 4 steps in each channel
    counts = lc.simulate(snn, x[:1], 4, mode="float").spike_counts[conv.name].reshape(2, 4)
    assert np.array_equal(counts, np.full((2, 4), 3))
    # one threshold for the layer: channel 0 (0.25 a step) never passes 1 in 4 steps
    without = lc.convert(two_channel_net(), calibration=x, timesteps=4, shift="none",
                         balancing="max").snn
    counts = lc.simulate(without, x[:1], 4, mode="float").spike_counts[conv.name]
    assert np.array_equal(counts.reshape(2, 4), [[0] * 4, [3] * 4])


def test_dense_layers_get_one_threshold_per_neuron_as_worked_by_hand():
    """Two hidden neurons with activations 0.5 and 2 for an input of ones."""
    hidden = nn.Linear(2, 2, bias=False)
    hidden.weight.data = torch.tensor([[0.25, 0.25], [1.0, 1.0]])
    out = nn.Linear(2, 1, bias=False)
    out.weight.data = torch.ones(1, 2)
    x = np.ones((4, 2))
    for rule in ("max", "percentile"):
        snn = lc.convert(nn.Sequential(hidden, nn.ReLU(), out), calibration=x, timesteps=4,
                         channel_thresholds=True, balancing=rule, shift="none").snn
        layer, readout = snn.layers
        assert layer.threshold == 2.0 and np.allclose(layer.channel_scale, [0.25, 1.0])
        # neuron 0's inputs scaled by 2 / 0.5 = 4; its spikes carry 0.5 into the readout
        assert np.allclose(layer.synapse.weight, [[1.0, 1.0], [1.0, 1.0]])
        assert np.allclose(readout.synapse.weight, [[0.5, 2.0]])


def test_a_silent_channel_keeps_the_largest_threshold_under_every_rule():
    """A channel that never activates on the calibration data has no threshold of its own:
    it must not scale its inputs up (which would cost the layer its weight resolution)."""
    conv = nn.Conv2d(1, 2, 1)
    conv.weight.data = torch.tensor([1.0, -1.0]).reshape(2, 1, 1, 1)
    conv.bias.data = torch.tensor([0.0, -0.5])
    model = nn.Sequential(conv, nn.ReLU(), nn.Flatten(), nn.Linear(8, 2))
    x = np.random.default_rng(0).random((50, 1, 2, 2))
    for rule in ("max", "percentile"):
        snn = lc.convert(model, calibration=x, timesteps=4, channel_thresholds=True,
                         balancing=rule, percentile=99.0).snn
        assert snn.layers[0].channel_scale[1] == 1.0, rule


def test_channel_percentiles_match_numpy():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 36, 2))
    x = np.random.default_rng(0).random((200, 1, 8, 8))
    graph = trace(model.eval(), (1, 8, 8))
    got = channel_statistics(graph, x, [0], percentile=99.0)[0]
    with torch.no_grad():
        a = torch.relu(model[0](torch.as_tensor(x, dtype=torch.float32))).numpy()
    want = np.percentile(a.transpose(1, 0, 2, 3).reshape(3, -1), 99.0, axis=1)
    tops = a.max(axis=(0, 2, 3))
    assert np.all(got >= want - 1e-6) and np.all(got <= want + tops / CHANNEL_BINS + 1e-6)


def test_at_long_time_scales_the_network_is_the_ann(relu_cnn, digits):
    """The folding is exact: at T=256 the float SNN decides as the ANN on every test digit."""
    converted = lc.convert(relu_cnn, calibration=digits.x_train, timesteps=256,
                           channel_thresholds=True, balancing="max")
    run = converted.simulate(digits.x_test, mode="float")
    assert np.mean(run.predictions == converted.ann_logits(digits.x_test).argmax(1)) == 1.0


def test_with_bias_calibration_the_error_per_channel_shrinks(relu_cnn, digits):
    T = 4
    plain = lc.convert(relu_cnn, calibration=digits.x_train, timesteps=T,
                       channel_thresholds=True, balancing="max")
    calibrated = lc.convert(relu_cnn, calibration=digits.x_train, timesteps=T,
                            channel_thresholds=True, bias_calibration=256, balancing="max")
    from lava_convert.sim.ann import forward

    x = digits.x_train[:256]
    target = forward(calibrated.ann, x)[0].reshape(len(x), 8, -1).mean(axis=(0, 2))
    errors = []
    for c in (plain, calibrated):
        counts = c.simulate(x, mode="float").spike_counts[c.snn.layers[0].name]
        rate = counts.reshape(len(x), 8, -1).mean(axis=(0, 2)) / T
        errors.append(np.abs(target - rate * c.snn.layers[0].amplitudes()).mean())
    assert errors[1] < 0.75 * errors[0]


@pytest.mark.lava
def test_per_channel_files_run_on_lava_spike_for_spike(relu_cnn, digits, tmp_path):
    converted = lc.convert(relu_cnn, calibration=digits.x_train, timesteps=8,
                           channel_thresholds=True, balancing="max")
    path = converted.export(tmp_path / "cnn.net")
    x = digits.x_test[:12]
    lava, ref = lc.run_lava(path, x, progress=False), lc.simulate(path, x)
    assert_same_spikes(lava, ref)
