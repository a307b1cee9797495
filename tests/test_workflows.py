"""What the jobs return: typed records, still readable the old way for a while."""

from __future__ import annotations

import warnings

import pytest

from lava_convert.workflows import BackendComparison, LayerComparison


def comparison(differing: int) -> BackendComparison:
    layer = LayerComparison(name="h", neurons=6, samples_differing=differing,
                            max_count_difference=2 if differing else 0,
                            first_difference=(0, 3) if differing else None,
                            lava_spikes_per_sample=4.0, reference_spikes_per_sample=4.5)
    return BackendComparison(samples=3, timesteps=8, layers=(layer,), predictions_agree=1.0,
                             lava_wall_time_s=1.0, reference_wall_time_s=0.1)


def test_identical_means_no_layer_differs_and_the_json_keeps_its_keys():
    assert comparison(0).identical and not comparison(1).identical
    d = comparison(1).to_dict()
    assert d["identical"] is False and d["layers"][0]["first_difference"] == (0, 3)
    assert set(d) == {"samples", "timesteps", "layers", "predictions_agree",
                      "lava_wall_time_s", "reference_wall_time_s", "identical"}


def test_reading_a_record_as_the_old_dict_warns_and_still_works():
    c = comparison(1)
    with pytest.warns(DeprecationWarning, match=r"BackendComparison\['identical'\].*\.identical"):
        assert c["identical"] is False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert c["layers"][0]["samples_differing"] == 1
    for missing in ("nope", "_KeyAccess__x", 0):
        with pytest.raises(KeyError):
            c[missing]
