"""SoftResetLIF on Lava: equal to Lava's own LIF below threshold, and to hand-computed trains."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lava_convert.lava.compat import ensure_lava
from lava_convert.sim.neuron import NeuronState, fixed_step

pytestmark = pytest.mark.lava


def _lava():
    ensure_lava()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    return RunSteps, Loihi2SimCfg(select_tag="fixed_pt")


def test_subthreshold_path_equals_lavas_lif_and_our_step():
    RunSteps, cfg = _lava()
    from lava.proc.dense.process import Dense
    from lava.proc.lif.process import LIF

    from lava_convert.lava.procs.process import GradedSource, SoftResetLIF

    rng = np.random.default_rng(0)
    n, steps = 5, 12
    a = rng.integers(-3000, 3000, size=(steps, n))
    params = dict(shape=(n,), du=700, dv=300, bias_mant=rng.integers(-400, 400, n), bias_exp=3,
                  vth=2**17 - 1)
    src = GradedSource(data=a, window=1)
    syn1 = Dense(weights=np.eye(n, dtype=int), num_message_bits=24)
    syn2 = Dense(weights=np.eye(n, dtype=int), num_message_bits=24)
    lif, ours = LIF(**params), SoftResetLIF(**params)
    src.s_out.connect(syn1.s_in)
    src.s_out.connect(syn2.s_in)
    syn1.a_out.connect(lif.a_in)
    syn2.a_out.connect(ours.a_in)
    trace_lif, trace_ours = [], []
    try:
        for _ in range(steps + 1):
            src.run(condition=RunSteps(num_steps=1), run_cfg=cfg)
            trace_lif.append((lif.u.get().copy(), lif.v.get().copy()))
            trace_ours.append((ours.u.get().copy(), ours.v.get().copy()))
    finally:
        src.stop()
    state = NeuronState.zeros((n,), dtype=torch.int64)
    inputs = np.vstack([np.zeros((1, n), int), a])  # the synapse delays by one step
    for t in range(steps + 1):
        state, s = fixed_step(state, torch.tensor(inputs[t]), vth=params["vth"],
                              bias=torch.tensor(params["bias_mant"]), bias_exp=3, du=700, dv=300)
        assert not s.any()
        np.testing.assert_array_equal(trace_ours[t][0], trace_lif[t][0])
        np.testing.assert_array_equal(trace_ours[t][1], trace_lif[t][1])
        np.testing.assert_array_equal(trace_ours[t][1], state.v.numpy())
        np.testing.assert_array_equal(trace_ours[t][0], state.u.numpy())


@pytest.mark.parametrize("reset, expected", [("soft", [4, 7, 11]), ("hard", [4, 8, 12])])
def test_spike_train_by_hand(reset, expected):
    RunSteps, cfg = _lava()
    from lava_convert.lava.procs.process import SoftResetLIF

    neuron = SoftResetLIF(shape=(1,), vth=10, bias_mant=3, bias_exp=6, reset_mode=reset,
                          window=100, record_windows=1)
    counts = []
    try:
        for _ in range(12):
            neuron.run(condition=RunSteps(num_steps=1), run_cfg=cfg)
            counts.append(int(neuron.spike_counts.get()[0, 0]))
    finally:
        neuron.stop()
    steps = [t + 1 for t in range(12) if counts[t] > (counts[t - 1] if t else 0)]
    assert steps == expected


def test_windows_reset_state_and_record_each_sample():
    RunSteps, cfg = _lava()
    from lava_convert.lava.procs.process import SoftResetLIF

    # bias 3, vth 10, windows of 5 steps starting at step 2: each window sees 5 steps of +3.
    neuron = SoftResetLIF(shape=(1,), vth=10, bias_mant=3, bias_exp=6, window=5, start=2,
                          record_windows=3, record_v=True)
    try:
        neuron.run(condition=RunSteps(num_steps=16), run_cfg=cfg)
        counts, v_end = neuron.spike_counts.get()[:, 0], neuron.v_end.get()[:, 0]
    finally:
        neuron.stop()
    # window k covers steps 2+5k..6+5k: v = 3,6,9,12->2,5 -> one spike, ends at 5
    assert counts.tolist() == [1, 1, 1] and v_end.tolist() == [5 * 64] * 3
