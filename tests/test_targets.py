"""Each target's record is the rule: the config, the target pass, the quantizer and
``balancing="auto"`` follow it (checked here through their behaviour, not the record)."""

from __future__ import annotations

import pytest

import lava_convert as lc
from lava_convert.targets import TARGETS, target_rules


@pytest.mark.parametrize("name", list(TARGETS))
def test_every_target_accepts_its_own_settings_and_refuses_the_rest(name):
    rules = target_rules(name)
    config = lc.ConversionConfig.for_target(name)
    assert config.reset in rules.resets and config.readout in rules.readouts
    for reset in ("soft", "hard"):
        if reset not in rules.resets:
            with pytest.raises(lc.ConfigError, match=rf"reset='{reset}'.*target='{name}'"):
                lc.ConversionConfig.for_target(name, reset=reset)
    if not rules.initial_potential:
        with pytest.raises(lc.ConfigError, match="cannot start at v0"):
            lc.ConversionConfig.for_target(name, shift="v0")
    else:
        assert lc.ConversionConfig.for_target(name, shift="v0").shift == "v0"


def test_a_target_record_cannot_be_changed():
    rules = target_rules("stock-netx")
    with pytest.raises(TypeError):
        rules.settings["reset"] = "soft"
    with pytest.raises(AttributeError):
        rules.residual = True


def test_the_stock_config_helper_gives_what_stock_netx_runs():
    config = lc.ConversionConfig.stock_netx()
    assert (config.reset, config.readout, config.target) == ("hard", "spikes", "stock-netx")
