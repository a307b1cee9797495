"""What enters a run: inputs outside the calibrated range reported, and runs too large for
the memory or the work budget refused before they start."""

from __future__ import annotations

import numpy as np
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


def _work_net():
    """Hand-made: a 2->4 conv (3x3, padding 1) on 16x16, then a dense readout of 10:
    (2*3*3) * 4 weights x 256 positions + 1024*10 = 18,432 + 10,240 = 28,672 products per
    step."""
    from helpers import fixed_layer

    from lava_convert.ir import FixedNetwork

    rng = np.random.default_rng(0)
    conv = fixed_layer(name="c", kind="conv", shape=(4, 16, 16),
                       weight=rng.integers(-3, 4, (4, 2, 3, 3)), bias=np.zeros(4, np.int64),
                       vth=40, padding=(1, 1))
    out = fixed_layer(name="o", kind="dense", shape=(10,),
                      weight=rng.integers(-3, 4, (10, 1024)), bias=np.zeros(10, np.int64),
                      vth=2**16, spiking=False)
    return FixedNetwork(input_shape=(2, 16, 16), input_scale=100.0, input_bits=8,
                        input_signed=False, layers=(conv, out), timesteps=4)


def test_a_run_that_declares_too_much_work_is_refused_before_it_runs(monkeypatch):
    from lava_convert.errors import ConfigError, InputError
    from lava_convert.sim.kernels import MAX_WORK_ENV, products_per_step

    net = _work_net()
    assert products_per_step(net) == 28_672
    x = np.random.default_rng(1).random((5, 2, 16, 16))
    # 5 samples x T=8 x 28,672 = 1,146,880 > 1,000,000; 4 samples (917,504) fit
    monkeypatch.setenv(MAX_WORK_ENV, "1e6")
    for run in (lc.simulate, lc.run_lava):
        with pytest.raises(InputError, match=r"5 samples x T=8 x 28,672 .*at most 4\b"):
            run(net, x, 8)
    assert len(lc.simulate(net, x[:4], 8).output) == 4
    monkeypatch.setenv(MAX_WORK_ENV, "0")  # no limit
    assert len(lc.simulate(net, x, 8).output) == 5
    for bad in ("lots", "inf", "-5"):
        monkeypatch.setenv(MAX_WORK_ENV, bad)
        with pytest.raises(ConfigError, match=MAX_WORK_ENV):
            lc.simulate(net, x, 8)
    # by default: one sample asking for 2**36 steps is refused at once, not run for days
    monkeypatch.delenv(MAX_WORK_ENV)
    with pytest.raises(InputError, match="past the limit"):
        lc.simulate(net, x[:1], 2**36)
