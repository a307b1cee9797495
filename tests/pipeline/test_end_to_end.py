"""Digits end to end on Lava: spike-exact with the reference, accuracy within 1 point of the ANN."""

from __future__ import annotations

import multiprocessing

import numpy as np
import pytest

import lava_convert as lc
from lava_convert.sim.results import assert_same_spikes
from lava_convert.zoo.train import accuracy

pytestmark = pytest.mark.lava


def test_lava_equals_reference_on_the_whole_test_split(digits, digits_model, digits_net):
    x, y = digits.x_test, digits.y_test
    lava = lc.run_lava(digits_net, x, timesteps=32, progress=False)
    ref = lc.simulate(digits_net, x, timesteps=32)
    assert_same_spikes(lava, ref)
    ann = accuracy(digits_model, x, y)
    assert lava.accuracy(y) >= ann - 0.01
    assert sum(c.sum() for c in lava.spike_counts.values()) > 0


def test_chunked_streaming_matches_single_chunk(digits, digits_net):
    x = digits.x_test[:7]
    one = lc.run_lava(digits_net, x, chunk=7, progress=False)
    many = lc.run_lava(digits_net, x, chunk=3, progress=False)
    assert_same_spikes(one, many)


def test_other_timesteps_and_accuracy_curve(digits, digits_net):
    x, y = digits.x_test[:30], digits.y_test[:30]
    lava = lc.run_lava(digits_net, x, timesteps=8, progress=False)
    ref = lc.simulate(digits_net, x, timesteps=8)
    np.testing.assert_array_equal(lava.predictions, ref.predictions)
    curve = ref.accuracy_curve(y)
    assert curve.shape == (8,) and curve[-1] == pytest.approx(ref.accuracy(y))


def test_runtime_is_stopped_when_a_run_fails(digits, digits_net, monkeypatch):
    from lava_convert.lava import simulate as lava_runtime

    def broken_read(self, first, count):
        raise ValueError("reading failed")

    monkeypatch.setattr(lava_runtime.LavaNetwork, "read", broken_read)
    with pytest.raises(lc.LavaRunError, match="reading failed.*stopped"):
        lc.run_lava(digits_net, digits.x_test[:3], progress=False)
    assert multiprocessing.active_children() == []


def test_wrong_input_shape_is_refused_before_lava_starts(digits_net):
    with pytest.raises(lc.InputError, match=r"\(samples, 1, 8, 8\)"):
        lc.run_lava(digits_net, np.zeros((2, 64)))
    with pytest.raises(lc.InputError, match="one sample"):
        lc.run_lava(digits_net, np.zeros((1, 8, 8)))
    with pytest.raises(lc.ConfigError, match="timesteps"):
        lc.run_lava(digits_net, np.zeros((2, 1, 8, 8)), timesteps=0)


def test_the_sidecar_lists_the_passes_in_pipeline_order(digits, digits_model, digits_snn):
    from lava_convert.pipeline import PASSES

    assert digits_snn.sidecar()["passes"][:2] == ["auto_balancing", "balance"]
    assert digits_snn.sidecar()["passes"][-2:] == ["quantize", "check"]
    calibrated = lc.convert(digits_model, calibration=digits.x_train[:300], timesteps=8,
                            bias_calibration=64, balancing="clip")
    order = [p.name for p in PASSES]
    assert calibrated.passes == ("balance", "bias_calibration", "quantize",
                                 "bias_calibration_on_grid", "check")
    assert list(calibrated.passes) == sorted(calibrated.passes, key=order.index)


def test_conversion_shows_progress_unless_asked_not_to(digits, digits_model, capsys):
    x = digits.x_train[:200]
    lc.convert(digits_model, calibration=x, timesteps=8, progress=True, bias_calibration=32,
               balancing="clip")
    err = capsys.readouterr().err
    assert "converting" in err and "quantize" in err and "check" in err
    assert "bias calibration" in err
    lc.convert(digits_model, calibration=x, timesteps=8, progress=True)
    assert "balancing auto" in capsys.readouterr().err  # the bar names the candidates
    lc.convert(digits_model, calibration=x, timesteps=8, progress=False)
    assert capsys.readouterr().err == ""
