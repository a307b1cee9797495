"""The one assertion that two runs are the same network's spikes: what it names."""

from __future__ import annotations

import numpy as np
import pytest

import lava_convert as lc
from lava_convert.sim.results import RunResult


def _run(counts: dict, output) -> RunResult:
    return RunResult(backend="test", timesteps=4, output=np.asarray(output, dtype=float),
                     spike_counts={k: np.asarray(v) for k, v in counts.items()})


def test_spike_differences_names_the_layer_sample_and_neuron():
    a = _run({"h": [[1, 2], [3, 4]], "o": [[0, 0], [0, 0]]}, [[0.5, 0.25], [0.1, 0.2]])
    same = _run({"h": [[1, 2], [3, 4]], "o": [[0, 0], [0, 0]]}, [[0.5, 0.25], [0.1, 0.2]])
    assert lc.spike_differences(a, same) == []
    lc.assert_same_spikes(a, same)
    other = _run({"h": [[1, 2], [3, 5]], "o": [[0, 0], [0, 0]]}, [[0.5, 0.25], [0.2, 0.1]])
    assert lc.spike_differences(a, other) == [
        "layer h: 1 of 2 samples differ (first: sample 1, neuron 1: 4 against 5 spikes)",
        "the readout differs"]
    with pytest.raises(AssertionError, match=r"test and test differ: layer h: 1 of 2"):
        lc.assert_same_spikes(a, other)
    missing = _run({"h": [[1, 2], [3, 4]]}, [[0.5, 0.25], [0.1, 0.2]])
    assert lc.spike_differences(a, missing) == ["layers ['h', 'o'] against ['h']"]
