"""What enters a network: inputs outside the calibrated range are reported."""

from __future__ import annotations

import pytest

import lava_convert as lc


def test_inputs_beyond_the_calibrated_range_are_reported(digits_net, digits):
    import warnings

    import lava_convert as lc

    x = digits.x_test[:20]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # in range: not a word
        lc.simulate(digits_net, x)
    with pytest.warns(UserWarning, match=r"20 of 20 samples lie outside the calibrated input "
                      r"range \[0, 1\].*largest 255.*0\.\.255"):
        lc.simulate(digits_net, x * 255)


def test_a_run_whose_spike_counts_would_not_fit_in_memory_is_refused_before_it_runs(
        digits_net, digits, monkeypatch):
    """8 bytes per neuron and sample: the digits MLP (202 neurons) on 10 samples needs
    16,160 bytes; with 10,000 available (8,000 usable) at most 4 samples fit."""
    import lava_convert.sim.inputs as inputs
    from lava_convert.errors import InputError

    monkeypatch.setattr(inputs, "available_memory", lambda: 10_000)
    for run in (lc.simulate, lc.run_lava):
        with pytest.raises(InputError, match=r"10 samples x 202 neurons.*at most 4 samples"):
            run(digits_net, digits.x_test[:10])
    assert len(lc.simulate(digits_net, digits.x_test[:4]).output) == 4
