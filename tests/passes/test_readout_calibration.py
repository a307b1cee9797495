"""Readout calibration: the readout's weights refitted to the ANN's logits."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import lava_convert as lc
from lava_convert.ir import SnnNetwork, SpikingLayer, Synapse
from lava_convert.passes.layerwise import CALIBRATION_DTYPE
from lava_convert.passes.readout_calibration import calibrate_readout
from lava_convert.sim.reference import simulate_float
from lava_convert.sim.results import assert_same_spikes

T = 8


def _layer(name, weight, source, *, spiking=True, skips=()):
    return SpikingLayer(name=name, synapse=Synapse("dense", weight, source=source),
                        bias=np.zeros(len(weight)), threshold=1.0 if spiking else 0.0,
                        spiking=spiking, out_shape=(len(weight),), skips=skips)


def _network(readout_main, readout_skip):
    """Input (4) -> spiking 6 -> spiking 5 -> readout (3), the readout also reading the
    first layer's spikes through a shortcut."""
    rng = np.random.default_rng(0)
    first = _layer("first", rng.uniform(0.0, 0.8, (6, 4)), -1)
    second = _layer("second", rng.uniform(-0.3, 0.6, (5, 6)), 0)
    readout = _layer("readout", readout_main, 1, spiking=False,
                     skips=(Synapse("dense", readout_skip, source=0),))
    return SnnNetwork(input_shape=(4,), layers=(first, second, readout), timesteps=T,
                      input_range=(0.0, 1.0))


def test_the_readout_learns_hand_chosen_weights_from_its_own_rates():
    """The target is what hand-chosen readout weights (main synapse A, shortcut B, bias c)
    make of the network's own spike rates, so a correct fit reproduces it, on the samples
    it saw and on others (the rates are too alike for the weights themselves to be
    determined; weights put on the wrong synapse would miss the target)."""
    rng = np.random.default_rng(1)
    A, B, c = rng.normal(size=(3, 5)), rng.normal(size=(3, 6)), np.array([0.5, -1.0, 2.0])
    net = _network(np.zeros((3, 5)), np.zeros((3, 6)))
    x = rng.uniform(0.0, 1.0, (400, 4))
    run = simulate_float(net, x, T)
    rates = {name: counts / T for name, counts in run.spike_counts.items()}
    target = rates["second"] @ A.T + rates["first"] @ B.T + c
    assert np.abs(run.output).max() == 0  # a zero readout: everything is left to learn

    tuned, fit = calibrate_readout(net, x, target)

    assert fit.kept and fit.error_after < 1e-3 * fit.error_before
    assert tuned.layers[:2] == net.layers[:2]  # hidden layers untouched (the same objects)
    assert np.any(tuned.layers[-1].skips[0].weight != 0)
    for samples in (x, rng.uniform(0.0, 1.0, (400, 4))):
        rates = {k: v / T for k, v in simulate_float(net, samples, T).spike_counts.items()}
        target = rates["second"] @ A.T + rates["first"] @ B.T + c
        after = simulate_float(tuned, samples, T).output
        assert np.mean((after - target) ** 2) < 1e-3 * np.mean(target ** 2)


def test_a_readout_that_already_matches_is_left_alone():
    rng = np.random.default_rng(2)
    net = _network(rng.normal(size=(3, 5)), rng.normal(size=(3, 6)))
    x = rng.uniform(0.0, 1.0, (200, 4))
    # the calibration simulates in CALIBRATION_DTYPE: the same arithmetic, no error at all
    own = simulate_float(net, x, T, dtype=CALIBRATION_DTYPE).output
    tuned, fit = calibrate_readout(net, x, own)
    assert not fit.kept and fit.error_before == 0.0 and tuned is net


def test_calibration_brings_the_readout_closer_to_the_ann_on_unseen_samples(digits,
                                                                             digits_model):
    """The digits MLP at T=4: on test samples the fit never saw, the readout's output is
    closer to the ANN's logits (what the fit minimises; the classes can still differ on a
    sample or two either way); only the readout changed."""
    settings = dict(calibration=digits.x_train, timesteps=4, bias_calibration=300)
    plain = lc.convert(digits_model, **settings)
    tuned = lc.convert(digits_model, readout_calibration=300, **settings)
    assert "readout_calibration" in tuned.passes
    recorded = tuned.sidecar()["readout_calibration"]
    assert recorded["kept"] and recorded["error_after"] < recorded["error_before"]
    assert "readout_calibration" not in plain.sidecar()
    for a, b in zip(tuned.snn.layers[:-1], plain.snn.layers[:-1]):
        np.testing.assert_array_equal(a.synapse.weight, b.synapse.weight)
        np.testing.assert_array_equal(a.bias, b.bias)
    assert not np.array_equal(tuned.snn.layers[-1].synapse.weight,
                              plain.snn.layers[-1].synapse.weight)
    x = digits.x_test
    target = tuned.ann_logits(x)
    errors = [np.mean((simulate_float(net.snn, x, 4).output - target) ** 2)
              for net in (plain, tuned)]
    assert errors[1] < 0.8 * errors[0], errors


def test_readout_calibration_is_refused_where_it_cannot_run():
    with pytest.raises(lc.ConfigError, match="readout_calibration"):
        lc.ConversionConfig(readout_calibration=-1)
    with pytest.raises(lc.ConfigError, match="readout='spikes' use readout_calibration=0"):
        lc.ConversionConfig(readout="spikes", readout_calibration=64)
    with pytest.raises(lc.ConfigError, match="readout_calibration"):
        lc.ConversionConfig.stock_netx(readout_calibration=64)
    net = _network(np.zeros((3, 5)), np.zeros((3, 6)))
    readout = net.layers[-1]
    x = np.full((10, 4), 0.5)
    for changed, message in (
            (dict(spiking=True, threshold=1.0), "layer 'readout' spikes"),
            (dict(dv=0.1), r"layer 'readout' leaks \(du=1.0, dv=0.1\)"),
            (dict(synapse=Synapse("conv", np.zeros((3, 5, 1, 1)), source=1)),
             "layer 'readout' reads its input through a convolution")):
        bad = dataclasses.replace(net, layers=(*net.layers[:2],
                                               dataclasses.replace(readout, **changed)))
        with pytest.raises(lc.ConfigError, match=message):
            calibrate_readout(bad, x, np.zeros((10, 3)))


@pytest.mark.lava
def test_a_calibrated_readout_runs_exactly_on_lava(digits, digits_model):
    tuned = lc.convert(digits_model, calibration=digits.x_train[:300], timesteps=4,
                       bias_calibration=300, readout_calibration=300)
    assert "readout_calibration" in tuned.passes
    x = digits.x_test[:12]
    ref = lc.simulate(tuned.fixed, x, 4)
    lava = lc.run_lava(tuned.fixed, x, 4, progress=False)
    assert_same_spikes(lava, ref)
