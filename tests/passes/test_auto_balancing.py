"""``balancing="auto"`` on plain ReLU networks: every candidate measured Lava-exact, the
best kept, the measurement in the sidecar and the ``convert`` output."""

from __future__ import annotations

import json

import numpy as np

import lava_convert as lc
from lava_convert.passes.auto_balancing import CANDIDATES, describe_settings


def test_auto_keeps_the_candidate_that_agrees_best(relu_cnn, digits, tmp_path):
    converted = lc.convert(relu_cnn, calibration=digits.x_train, timesteps=4)
    choice = converted.balancing_choice
    assert converted.passes[:2] == ("auto_balancing", "balance")
    assert len(choice.candidates) == len(CANDIDATES) == 12
    agreements = [a for _, a in choice.candidates]
    best = agreements.index(max(agreements))  # the first of the best
    assert choice.chosen == choice.candidates[best][0]
    # the network is the one its settings give when asked for directly
    chosen = {k: v for k, v in choice.chosen.items()}
    direct = lc.convert(relu_cnn, calibration=digits.x_train, timesteps=4, **chosen)
    for a, b in zip(converted.fixed.layers, direct.fixed.layers):
        assert np.array_equal(a.synapse.weight, b.synapse.weight) and a.vth == b.vth
    assert converted.config.balancing == chosen["balancing"]
    # recorded where users look
    path = converted.export(tmp_path / "cnn.net")
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["auto_balancing"]["chosen"] == choice.chosen
    assert side["config"]["channel_thresholds"] == chosen["channel_thresholds"]
    assert describe_settings(choice.chosen) in choice.describe()


def test_auto_measures_the_agreement_it_reports(relu_cnn, digits):
    """Oracle: the agreement of one candidate, recomputed here from its own conversion."""
    converted = lc.convert(relu_cnn, calibration=digits.x_train, timesteps=4)
    settings, reported = converted.balancing_choice.candidates[0]
    x = digits.x_train
    samples = x[np.linspace(0, len(x) - 1, converted.balancing_choice.samples).astype(int)]
    candidate = lc.convert(relu_cnn, calibration=x, timesteps=4, **settings)
    ann = candidate.ann_logits(samples).argmax(1)
    assert np.mean(candidate.simulate(samples).predictions == ann) == reported


def test_networks_with_trained_clips_keep_their_clips(digits_snn):
    assert "auto_balancing" not in digits_snn.passes
    assert digits_snn.balancing_choice is None
    assert all(l.threshold_source == "clip" for l in digits_snn.snn.layers if l.spiking)


def test_the_stock_target_is_offered_no_initial_potential(relu_cnn, digits):
    converted = lc.convert(relu_cnn, calibration=digits.x_train[:300],
                           config=lc.ConversionConfig.stock_netx(timesteps=8))
    shifts = {s["shift"] for s, _ in converted.balancing_choice.candidates}
    assert shifts == {"bias"} and len(converted.balancing_choice.candidates) == 6
