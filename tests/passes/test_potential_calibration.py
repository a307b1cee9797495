"""Potential calibration (``potential_calibration``): each spiking layer's initial potential
chosen against the ANN, checked against theory, a brute-force oracle and Lava."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import lava_convert as lc
from lava_convert import pipeline
from lava_convert.frontend.torch_fx import trace
from lava_convert.ir import SpikingLayer, Synapse
from lava_convert.passes.potential_calibration import V0_FRACTIONS, calibrate_potentials
from lava_convert.sim.reference import float_layer_trains, simulate_float
from lava_convert.sim.results import assert_same_spikes


def _hidden_activations(model, x):
    """The torch model's own activations after each ReLU (forward hooks)."""
    acts = []
    hooks = [m.register_forward_hook(lambda m, i, o: acts.append(o.detach().numpy()))
             for m in model.modules() if isinstance(m, (lc.ThresholdReLU, torch.nn.ReLU))]
    try:
        with torch.no_grad():
            model(torch.as_tensor(x, dtype=torch.float32))
    finally:
        for h in hooks:
            h.remove()
    return [a.reshape(len(x), -1) for a in acts]


def test_a_constant_input_layer_starts_at_half_its_threshold(digits, digits_model):
    """The first layer sees the same input current every step; an IF neuron that starts at
    ``v0`` fires ``ceil(v0/V_th + a T/V_th - 1)`` times, which is nearest to ``a T/V_th``
    for ``v0 = V_th/2`` (Bu et al. 2022). Starting from ``v0 = 0`` (``shift="none"``) the
    calibration must move the first layer there."""
    x = digits.x_train[:256]
    plain = lc.convert(digits_model, calibration=x, timesteps=4, shift="none")
    assert plain.snn.layers[0].v0 == 0.0
    first = calibrate_potentials(plain.ann, plain.snn, x).layers[0]
    assert first.v0 == pytest.approx(first.threshold / 2)
    # worked by hand for three neurons (V_th = 1, T = 4, currents 0.3, 0.45, 0.55): v0 = 0
    # gives 1, 1, 2 spikes; v0 = 1/2 gives 1, 2, 2, nearer to 1.2, 1.8, 2.2
    three = SpikingLayer(name="three", synapse=Synapse("dense", np.eye(3)), bias=np.zeros(3),
                         threshold=1.0, spiking=True, out_shape=(3,))
    inputs = torch.tensor([[0.3, 0.45, 0.55]], dtype=torch.float64).expand(4, 1, 3)
    trains = float_layer_trains(three, inputs, v0s=[0.0, 0.5])
    assert trains.sum(dim=0)[:, 0].tolist() == [[1, 1, 2], [1, 2, 2]]


def test_each_layer_gets_the_start_with_the_smallest_error(digits, relu_cnn):
    """Brute force through the whole-network float simulator: for every hidden layer, no
    other candidate start gives spike rates nearer the torch model's activations."""
    x, T = digits.x_train[:200], 4
    plain = lc.convert(relu_cnn, calibration=x, timesteps=T, shift="v0", balancing="max")
    tuned = calibrate_potentials(plain.ann, plain.snn, x)
    acts = _hidden_activations(relu_cnn, x)
    layers = tuned.layers
    assert len(acts) == len(layers) - 1
    for i, layer in enumerate(layers[:-1]):
        errors = {}
        for f in V0_FRACTIONS:
            trial = dataclasses.replace(tuned, layers=(
                *layers[:i], dataclasses.replace(layer, v0=f * layer.threshold), *layers[i + 1:]))
            counts = simulate_float(trial, x, T).spike_counts[layer.name]
            errors[f] = float(np.mean((acts[i] - counts / T * layer.threshold) ** 2))
        chosen = layer.v0 / layer.threshold
        assert errors[chosen] <= min(errors.values()) + 1e-12, (layer.name, chosen, errors)
        # a wrong sign or unit in the rates would make the error flat or favour an end
        assert max(errors.values()) > 1.05 * errors[chosen], (layer.name, errors)


def _channel_errors(acts, counts, layer, T):
    """Mean squared error per output channel (per neuron of a dense layer)."""
    error = (acts - counts / T * layer.threshold) ** 2
    channels = layer.out_shape[0] if layer.kind == "conv" else error.shape[1]
    return error.reshape(len(error), channels, -1).mean(axis=(0, 2))


def test_each_channel_gets_the_start_with_the_smallest_error(digits, relu_cnn):
    """``scope="channel"``, brute force through the whole-network float simulator: run
    the network with every candidate start for all of a layer's channels; each channel's
    chosen start must have that channel's smallest error. Then the network with the
    chosen starts must reproduce, channel by channel, the errors of those runs (the
    starts reach the right channels)."""
    x, T = digits.x_train[:200], 4
    plain = lc.convert(relu_cnn, calibration=x, timesteps=T, shift="v0", balancing="max")
    tuned = calibrate_potentials(plain.ann, plain.snn, x, scope="channel")
    acts = _hidden_activations(relu_cnn, x)
    layers, varied = tuned.layers, 0
    for i, layer in enumerate(layers[:-1]):
        fractions = np.asarray(layer.v0) / layer.threshold
        assert fractions.shape == np.shape(layer.bias), layer.name
        errors = []
        for f in V0_FRACTIONS:
            trial = dataclasses.replace(tuned, layers=(
                *layers[:i], dataclasses.replace(layer, v0=f * layer.threshold), *layers[i + 1:]))
            counts = simulate_float(trial, x, T).spike_counts[layer.name]
            errors.append(_channel_errors(acts[i], counts, layer, T))
        errors = np.array(errors)  # (candidates, channels)
        chosen = np.rint(fractions * (len(V0_FRACTIONS) - 1)).astype(int)  # eighths
        np.testing.assert_allclose(np.asarray(V0_FRACTIONS)[chosen], fractions, rtol=1e-12)
        channels = np.arange(len(chosen))
        assert np.all(errors[chosen, channels] <= errors.min(axis=0) + 1e-12), layer.name
        counts = simulate_float(tuned, x, T).spike_counts[layer.name]
        np.testing.assert_allclose(_channel_errors(acts[i], counts, layer, T),
                                   errors[chosen, channels], rtol=1e-9, err_msg=layer.name)
        varied += len(set(chosen.tolist())) > 1
    assert varied, "no layer chose different starts for its channels: the test tests nothing"


def test_the_calibrated_starts_are_kept_only_if_they_agree_better(digits, digits_model,
                                                                   monkeypatch):
    config = lc.ConversionConfig(timesteps=4, shift="v0", potential_calibration=128)
    stage = pipeline.Stage(graph=trace(digits_model, (1, 8, 8)), x=digits.x_train[:400],
                           config=config)
    stage = next(p for p in pipeline.PASSES if p.name == "balance").run(stage)
    calibration = next(p for p in pipeline.PASSES if p.name == "potential_calibration")

    def harmful(graph, snn, x, progress=False, scope="layer"):  # all first-layer neurons fire
        first = dataclasses.replace(snn.layers[0], v0=5 * snn.layers[0].threshold)
        return dataclasses.replace(snn, layers=(first, *snn.layers[1:]))

    monkeypatch.setattr(pipeline.order, "calibrate_potentials", harmful)
    assert calibration.run(stage).snn is stage.snn  # dropped
    monkeypatch.setattr(pipeline.order, "calibrate_potentials",
                        lambda graph, snn, x, progress=False, scope="layer":
                        dataclasses.replace(snn))
    assert calibration.run(stage).snn is not stage.snn  # the same agreement: kept
    converted = lc.convert(digits_model, calibration=digits.x_train[:400], config=config)
    assert "potential_calibration" in converted.sidecar()["passes"]
    assert [layer["v0"] for layer in converted.sidecar()["layers"]] == [
        layer.v0 for layer in converted.snn.layers]
    assert converted.sidecar()["config"]["potential_calibration"] == 128


def test_potential_calibration_is_refused_where_it_cannot_run():
    with pytest.raises(lc.ConfigError, match="potential_calibration"):
        lc.ConversionConfig(potential_calibration=-1)
    with pytest.raises(lc.ConfigError, match=r"potential_scope='neuron' is invalid.*'channel'"):
        lc.ConversionConfig(potential_scope="neuron")
    with pytest.raises(lc.ConfigError, match="potential_calibration=0"):
        lc.ConversionConfig.stock_netx(potential_calibration=64)


@pytest.mark.lava
def test_calibrated_starts_run_exactly_on_lava(digits, digits_model):
    T = 4
    # the V_th/(2T) bias shift starts at v0 = 0: a chosen start is anything else
    x = digits.x_test[:12]
    for scope in ("layer", "channel"):
        tuned = lc.convert(digits_model, calibration=digits.x_train[:200], timesteps=T,
                           shift="bias", potential_calibration=200, bias_calibration=200,
                           potential_scope=scope)
        starts = [np.asarray(layer.v0) / layer.threshold for layer in tuned.snn.layers[:-1]]
        assert any(np.any(f != 0) for f in starts), starts
        if scope == "channel":
            assert any(len(np.unique(f)) > 1 for f in starts), starts
        ref = lc.simulate(tuned.fixed, x, T)
        lava = lc.run_lava(tuned.fixed, x, T, progress=False)
        assert_same_spikes(lava, ref)
