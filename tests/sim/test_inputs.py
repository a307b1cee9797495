"""What enters a network: inputs outside the calibrated range are reported."""

from __future__ import annotations

import pytest


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
