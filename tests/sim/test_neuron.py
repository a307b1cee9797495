"""The neuron step functions against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lava_convert.hw.loihi import V_MAX
from lava_convert.sim.neuron import NeuronState, fixed_step, float_step


def run_fixed(inputs, **kw):
    state = NeuronState.zeros((1,), dtype=torch.int64)
    spikes, vs = [], []
    for a in inputs:
        state, s = fixed_step(state, torch.tensor([a]), **kw)
        spikes.append(int(s[0]))
        vs.append(int(state.v[0]))
    return spikes, vs


def test_soft_reset_staircase_by_hand():
    # input 3 per step, vth 10: v = 3,6,9,12->2,5,8,11->1,4,7,10 (not > 10),13->3
    spikes, vs = run_fixed([3] * 11, vth=10)
    assert [t + 1 for t, s in enumerate(spikes) if s] == [4, 7, 11]
    assert [v // 64 for v in vs] == [3, 6, 9, 2, 5, 8, 1, 4, 7, 10, 3]
    assert all(v % 64 == 0 for v in vs)


def test_hard_reset_staircase_by_hand():
    spikes, vs = run_fixed([3] * 12, vth=10, reset="hard")
    assert [t + 1 for t, s in enumerate(spikes) if s] == [4, 8, 12]
    assert vs[3] == 0 and vs[-1] == 0


def test_strict_threshold_and_bias_exponent():
    # bias 5 << 6 per step = 5 current units; v reaches exactly 10 at step 2: no spike
    spikes, vs = run_fixed([0, 0, 0], vth=10, bias=torch.tensor([5]))
    assert spikes == [0, 0, 1] and vs == [5 * 64, 10 * 64, 5 * 64]
    spikes, vs = run_fixed([0], vth=100, bias=torch.tensor([5]), bias_exp=0)
    assert vs == [5]


def test_u_wraps_and_v_saturates_like_lava():
    state = NeuronState.zeros((1,), dtype=torch.int64)
    big = 2**17 + 3  # (big << 6) > 2**23: wraps to a negative current
    state, s = fixed_step(state, torch.tensor([big]), vth=2**17 - 1)
    assert int(state.u[0]) == (big << 6) - 2**24
    state = NeuronState(u=torch.zeros(1, dtype=torch.int64),
                        v=torch.tensor([V_MAX - 10], dtype=torch.int64))
    state, s = fixed_step(state, torch.tensor([2**16]), vth=2**17 - 1, reset="soft")
    assert int(state.v[0]) == V_MAX - ((2**17 - 1) << 6) and bool(s[0])  # saturated, then fired


def test_decays_truncate_toward_zero():
    state = NeuronState(u=torch.tensor([-1000, 1000]), v=torch.tensor([-999, 999]))
    new, _ = fixed_step(state, torch.tensor([0, 0]), vth=2**16, du=100, dv=200)
    # trunc0(x * (4096 - du - 1) / 4096) for u, trunc0(x * (4096 - dv) / 4096) for v
    assert new.u.tolist() == [-(1000 * 3995 >> 12), 1000 * 3995 >> 12]
    assert new.v.tolist() == [-(999 * 3896 >> 12) + new.u[0].item(),
                              (999 * 3896 >> 12) + new.u[1].item()]


@pytest.mark.parametrize("reset", ["soft", "hard"])
def test_float_and_fixed_agree_on_integer_multiples(reset):
    rng = np.random.default_rng(1)
    a = rng.integers(-5, 12, size=(40, 6))
    fs = NeuronState.zeros((6,), dtype=torch.float64)
    xs = NeuronState.zeros((6,), dtype=torch.int64)
    for row in a:
        fs, f_spk = float_step(fs, torch.tensor(row, dtype=torch.float64), vth=10.0, reset=reset)
        xs, x_spk = fixed_step(xs, torch.tensor(row), vth=10, reset=reset)
        assert torch.equal(f_spk, x_spk)
        assert torch.equal(fs.v.to(torch.int64) * 64, xs.v)

