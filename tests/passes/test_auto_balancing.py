"""``balancing="auto"``: every candidate measured Lava-exact on
held-out calibration samples, the best kept, the measurement in the sidecar and the
``convert`` output."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

import lava_convert as lc
from lava_convert.layers import ThresholdReLU
from lava_convert.passes.acceptance import within_noise
from lava_convert.passes.auto_balancing import (
    AUTO_BIAS_CALIBRATION,
    CALIBRATED_FAMILIES,
    CANDIDATES,
    CLIPPED_CANDIDATES,
    EVALUATION_SAMPLES,
    FINALISTS,
    describe_settings,
    evaluation_plan,
)
from lava_convert.zoo.train import train_classifier


def evaluation_samples(x, fitted):
    """The held-out samples, worked out here: those no calibration fits on, spread evenly."""
    used = set()
    for n in fitted:
        used |= set(np.linspace(0, len(x) - 1, n).astype(int).tolist())
    rest = np.array([i for i in range(len(x)) if i not in used])
    return x[rest[np.linspace(0, len(rest) - 1, min(EVALUATION_SAMPLES, len(rest))).astype(int)]]


def test_auto_keeps_the_candidate_that_agrees_best(relu_cnn, digits, tmp_path):
    converted = lc.convert(relu_cnn, calibration=digits.x_train, timesteps=4)
    choice = converted.balancing_choice
    assert converted.passes[:2] == ("auto_balancing", "balance")
    rules, calibrated = choice.candidates[:12], choice.candidates[12:]
    assert [c.settings for c in rules] == list(CANDIDATES)
    # every rule screened; the FINALISTS best screened rules measured on all samples
    assert all(c.samples in (choice.screened, choice.samples) for c in rules)
    finalists = [c for c in rules if c.samples == choice.samples]
    assert len(finalists) == FINALISTS and choice.screened < choice.samples
    screened_out = [c for c in rules if c.samples == choice.screened]
    assert min(c.agreement for c in finalists) >= max(c.agreement for c in screened_out) - (
        2 / np.sqrt(choice.screened))  # finalists were the best on the screen
    # then bias calibration of the best rule of the two best families (grain and shift)
    assert len(calibrated) == CALIBRATED_FAMILIES
    families = {(c.settings["channel_thresholds"], c.settings["shift"]) for c in calibrated}
    assert len(families) == CALIBRATED_FAMILIES
    for c in calibrated:
        assert c.settings["bias_calibration"] == AUTO_BIAS_CALIBRATION
        assert c.samples == choice.samples
        assert {k: v for k, v in c.settings.items() if k != "bias_calibration"} in [
            r.settings for r in rules]
    # kept: the fewest spikes among those within the noise of the most agreeing one
    top = max(c.agreement for c in choice.candidates if c.samples == choice.samples)
    assert any(c.tied and c.agreement == top for c in choice.candidates)
    assert not any(c.tied for c in choice.candidates if c.samples < choice.samples)
    tied = [c for c in choice.candidates if c.tied]
    assert choice.best in tied and choice.best.spikes == min(c.spikes for c in tied)
    # the network is the one its settings give when asked for directly
    direct = lc.convert(relu_cnn, calibration=digits.x_train, timesteps=4, **choice.chosen)
    for a, b in zip(converted.fixed.layers, direct.fixed.layers):
        assert np.array_equal(a.synapse.weight, b.synapse.weight) and a.vth == b.vth
        assert np.array_equal(a.bias, b.bias)
    assert converted.config.balancing == choice.chosen["balancing"]
    # recorded where users look
    path = converted.export(tmp_path / "cnn.net")
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["auto_balancing"]["chosen"] == choice.chosen
    assert side["config"]["channel_thresholds"] == choice.chosen["channel_thresholds"]
    assert len(side["auto_balancing"]["candidates"]) == 12 + CALIBRATED_FAMILIES
    assert describe_settings(choice.chosen) in choice.describe()


def test_within_noise_is_one_standard_error_of_the_paired_difference():
    """Worked by hand on 100 samples; the best candidate agrees with the ANN on 90."""
    best = np.arange(100) < 90
    # 88 agree: the two differ on 4 samples (best alone on 3, this one alone on 1);
    # shortfall 2/100 = sqrt(4)/100: within the noise
    close = best.copy()
    close[[0, 1, 2]] = False
    close[95] = True
    assert close.sum() == 88 and within_noise(close, best)
    # 87 agree, differing on 3 samples: shortfall 3/100 > sqrt(3)/100
    short = best.copy()
    short[[0, 1, 2]] = False
    assert short.sum() == 87 and not within_noise(short, best)
    assert within_noise(best, best)


def test_auto_measures_on_held_out_samples_what_it_reports(relu_cnn, digits):
    """Oracle: a screened-out, a finalist and a calibrated candidate's agreement and
    spikes, recomputed here from their own conversions on the samples bias calibration
    did not fit on (the screen: every eighth of them, spread evenly)."""
    x = digits.x_train
    converted = lc.convert(relu_cnn, calibration=x, timesteps=4)
    choice = converted.balancing_choice
    samples = evaluation_samples(x, [AUTO_BIAS_CALIBRATION])
    assert choice.held_out and choice.samples == len(samples)
    screen = samples[np.linspace(0, len(samples) - 1, choice.screened).astype(int)]
    assert choice.screened == min(128, len(samples) // 8)
    out = next(c for c in choice.candidates if c.samples == choice.screened)
    final = next(c for c in choice.candidates[:12] if c.samples == choice.samples)
    for candidate, on in ((out, screen), (final, samples), (choice.candidates[-1], samples)):
        net = lc.convert(relu_cnn, calibration=x, timesteps=4, **candidate.settings)
        run = net.simulate(on)
        assert np.mean(run.predictions == net.ann_logits(on).argmax(1)) == \
            candidate.agreement
        assert sum(run.spikes_per_sample().values()) == pytest.approx(candidate.spikes)


def test_a_config_that_calibrates_has_every_candidate_calibrated(relu_cnn, digits):
    x = digits.x_train
    converted = lc.convert(relu_cnn, calibration=x, timesteps=4, bias_calibration=64)
    choice = converted.balancing_choice
    assert [c.settings for c in choice.candidates] == list(CANDIDATES)
    assert "bias_calibration" in converted.passes
    settings = next(c for c in choice.candidates if c.samples == choice.samples)
    net = lc.convert(relu_cnn, calibration=x, timesteps=4, bias_calibration=64,
                     **settings.settings)
    samples = evaluation_samples(x, [64])
    run = net.simulate(samples)
    assert np.mean(run.predictions == net.ann_logits(samples).argmax(1)) == settings.agreement


def test_too_few_samples_are_evaluated_on_the_calibration_data(relu_cnn, digits):
    """300 samples, 256 of them fitted on: the 44 left are too few to tell candidates apart."""
    converted = lc.convert(relu_cnn, calibration=digits.x_train[:300], timesteps=4)
    choice = converted.balancing_choice
    assert not choice.held_out and choice.samples == 300
    assert "held-out" not in choice.describe()


def test_auto_on_clipped_networks_measures_clips_and_channel_maxima(digits_snn):
    """A network whose every hidden layer has a clip (the digits QCFS MLP) gets the
    clipped rules: the clips and per-channel maxima, each with both shifts."""
    choice = digits_snn.balancing_choice
    assert digits_snn.passes[:2] == ("auto_balancing", "balance")
    assert [c.settings for c in choice.candidates[:len(CLIPPED_CANDIDATES)]] == list(
        CLIPPED_CANDIDATES)
    sources = {l.threshold_source for l in digits_snn.snn.layers if l.spiking}
    assert sources == ({"clip"} if choice.chosen["balancing"] == "clip"
                       else {"max per channel"})


def test_auto_gives_quiet_channels_of_a_clipped_network_their_own_threshold(digits):
    """Hand-made: a ThresholdReLU layer clipped at 8 whose activations stay below 0.5
    (weights scaled down after training). With the clip as threshold, no neuron reaches
    it in T=4 steps and every sample gets the same class; per-channel maxima let each
    neuron fire, so ``auto`` must find them (before, it kept the clips)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), ThresholdReLU(8.0), nn.Linear(32, 10))
    train_classifier(model, digits.x_train, digits.y_train, epochs=10)
    with torch.no_grad():  # quiet the hidden layer; the readout makes up for it
        model[1].weight /= 16
        model[1].bias /= 16
        model[3].weight *= 16
    x = digits.x_train
    hidden = model[2](model[1](model[0](torch.as_tensor(x)))).detach().numpy()
    assert hidden.max() < 0.5 * 8 / 4  # below half a level of the clip at T=4
    clip = lc.convert(model, calibration=x, timesteps=4, balancing="clip")
    converted = lc.convert(model, calibration=x, timesteps=4)
    on = digits.x_test
    ann = converted.ann_logits(on).argmax(1)
    assert np.mean(clip.simulate(on).predictions == ann) < 0.3
    assert converted.config.channel_thresholds and converted.config.balancing == "max"
    assert np.mean(converted.simulate(on).predictions == ann) > 0.8


def test_a_shift_the_caller_gives_is_kept(relu_cnn, digits):
    """``shift="v0"`` given with ``balancing="auto"``: every candidate starts at v0 (the
    six rules left once the shift is fixed); through a config object as well."""
    x = digits.x_train[:300]
    for converted in (lc.convert(relu_cnn, calibration=x, timesteps=4, shift="v0"),
                      lc.convert(relu_cnn, calibration=x,
                                 config=lc.ConversionConfig(timesteps=4, shift="v0"))):
        rules = [c.settings for c in converted.balancing_choice.candidates]
        assert {r["shift"] for r in rules} == {"v0"} and converted.config.shift == "v0"
        assert rules[:6] == [r for r in CANDIDATES if r["shift"] == "v0"]
        assert all(l.v0 is not None and np.any(np.asarray(l.v0) != 0)
                   for l in converted.snn.layers if l.spiking)


def test_the_stock_target_is_offered_no_initial_potential(relu_cnn, digits):
    converted = lc.convert(relu_cnn, calibration=digits.x_train[:300],
                           config=lc.ConversionConfig.stock_netx(timesteps=8))
    shifts = {c.settings["shift"] for c in converted.balancing_choice.candidates}
    assert shifts == {"bias"} and len(converted.balancing_choice.candidates) == 6 + 2


def test_the_plan_shrinks_for_networks_past_the_budget():
    """Worked by hand: a network costing 2**27 multiplications per sample fits 1024
    samples in 2**37 (all counts at their defaults, two calibrated families); one costing
    2**33 fits 16: the evaluation keeps its floor of 64 samples, the screen and the fit
    32, and one family is calibrated; fewer available samples cap the evaluation."""
    small = evaluation_plan(2**27, 5000)
    assert (small.evaluate, small.screen, small.fit, small.families) == (
        1024, 128, 256, CALIBRATED_FAMILIES)
    large = evaluation_plan(2**33, 5000)
    assert (large.evaluate, large.screen, large.fit, large.families) == (64, 32, 32, 1)
    assert evaluation_plan(2**27, 300).evaluate == 300
