"""The energy estimate: worked by hand, its constants overridable, bad ones refused, and
shown labelled where runs are reported."""

from __future__ import annotations

import pytest

from lava_convert.errors import ConfigError
from lava_convert.report.energy import (
    SOURCES,
    EnergyModel,
    energy_lines,
    energy_rows,
    estimate_energy,
)


def test_the_three_figures_worked_by_hand():
    """1000 synaptic ops, 100 neuron updates, 500 ANN MACs, T = 4, default constants:
    dynamic 1000 x 23.6 pJ + 100 x 52 pJ = 28.8 nJ (every update active: 23.6 + 8.1 = 31.7 nJ);
    static 0.9 W x 4 steps x 1 ms = 3.6 mJ; the ANN 2.3 nJ in float32, 0.115 nJ in int8."""
    e = estimate_energy(1000, 100, 500, 4)
    assert e.dynamic_j == pytest.approx(28.8e-9)
    assert e.dynamic_upper_j == pytest.approx(31.7e-9)
    assert e.static_j == pytest.approx(3.6e-3)
    assert e.total_j == pytest.approx(3.6e-3 + 28.8e-9)
    assert e.ann_fp32_j == pytest.approx(2.3e-9)
    assert e.ann_int8_j == pytest.approx(0.115e-9)


def test_every_constant_is_overridable_and_says_where_it_came_from():
    e = estimate_energy(1000, 100, 500, 4, EnergyModel(step_time_s=1e-5, static_power_w=0.5))
    assert e.static_j == pytest.approx(0.5 * 4 * 1e-5)
    d = e.to_dict()
    assert d["sources"]["step_time_s"] == "given" and d["sources"]["static_power_w"] == "given"
    assert d["sources"]["synop_j"] == SOURCES["synop_j"] and "Davies" in SOURCES["synop_j"]
    assert "not measurements" in d["note"]
    assert set(SOURCES) == set(d["model"])  # every constant has its source


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), "1", True])
def test_a_bad_constant_is_refused_by_name(bad):
    with pytest.raises(ConfigError, match="EnergyModel.static_power_w") as err:
        EnergyModel(static_power_w=bad)
    assert "default 0.9: Loihi 1 Nahuku" in str(err.value)  # the default, with its source


def test_what_runs_show_is_labelled_as_estimates():
    d = estimate_energy(1000, 100, 500, 4).to_dict()
    text = "\n".join(energy_lines(d))
    assert "estimates" in text and "assumed" in text and "int8" in text
    rows = energy_rows(d)
    assert [r[0] for r in rows] == ["Loihi dynamic (lower bound)",
                                    "Loihi dynamic, every update active",
                                    "Loihi with static power", "ANN, float32 MACs",
                                    "ANN, int8 MACs"]
    assert float(rows[2][1]) == pytest.approx(3600.0288, rel=1e-6)  # uJ, from the hand case
