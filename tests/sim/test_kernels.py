"""The reference's number formats: whole numbers in float32 must equal Lava's int32 state
bit for bit, and are used only where a bound proves it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import fixed_layer

from lava_convert.hw.loihi import STATE_SHIFT, V_MAX
from lava_convert.ir import ConvGeometry, FixedNetwork, Synapse
from lava_convert.sim.kernels import plan_kernels
from lava_convert.sim.neuron import NeuronState, fixed_step, whole_float_if_step
from lava_convert.sim.reference import simulate_fixed


@pytest.mark.parametrize("reset", ["soft", "hard"])
def test_whole_float_step_equals_the_integer_step_up_to_the_largest_currents(reset):
    """Every state from -V_MAX to V_MAX and currents up to just below 2**24 (where float32
    sums of v and the current round): v, the spikes and the saturation equal fixed_step's."""
    rng = np.random.default_rng(0)
    n = 200_000
    v = rng.integers(-V_MAX, V_MAX + 1, n)
    v[:6] = [V_MAX, -V_MAX, V_MAX, -V_MAX, V_MAX - 1, 0]
    a_in = rng.integers(-(2**17), 2**17, n)  # a_in << 6 stays within 2**23: u never wraps
    bias = rng.integers(-(2**23), 2**23, n)
    limit = 2**24 - 1
    current = np.clip((a_in << STATE_SHIFT) + bias, -limit, limit)
    bias = current - (a_in << STATE_SHIFT)
    current[:6] = [limit, -limit, -limit, limit, 1, 2**23]
    bias[:6] = current[:6] - (a_in[:6] << STATE_SHIFT)
    for vth in (1, 1000, 2**17 - 1):
        expected, spikes = fixed_step(
            NeuronState(u=torch.zeros(n, dtype=torch.int64), v=torch.as_tensor(v)),
            torch.as_tensor(a_in), vth=vth, bias=torch.as_tensor(bias), bias_exp=0,
            reset=reset, wrap_u=False)
        got_v, got_s = whole_float_if_step(torch.as_tensor(v, dtype=torch.float32),
                                           torch.as_tensor(current, dtype=torch.float32),
                                           vth=vth, reset=reset)
        np.testing.assert_array_equal(got_v.to(torch.int64).numpy(), expected.v.numpy())
        np.testing.assert_array_equal(got_s.bool().numpy(), spikes.numpy())
        assert int(expected.v.min()) == -V_MAX  # saturation exercised


def mixed_network() -> FixedNetwork:
    """An input layer, a conv with channel-wise bias, a strided conv with hard reset, a
    per-neuron bias and a shortcut from the input layer, and a readout whose potential
    saturates at +-V_MAX within a few steps."""
    rng = np.random.default_rng(3)
    layers = (
        fixed_layer("in", "input", (2, 6, 6), None, np.array([-3, 5]), vth=20),
        fixed_layer("c1", "conv", (3, 6, 6), rng.integers(-20, 21, (3, 2, 3, 3)),
                    np.array([4, -7, 0]), vth=40, padding=(1, 1)),
        fixed_layer("c2", "conv", (3, 3, 3), rng.integers(-30, 31, (3, 3, 3, 3)),
                    rng.integers(-9, 10, (3, 3, 3)), vth=30, stride=(2, 2), padding=(1, 1),
                    reset="hard",
                    skips=(Synapse("conv", rng.integers(-5, 6, (3, 2, 1, 1)), source=0,
                                   geometry=ConvGeometry(stride=(2, 2))),)),
        fixed_layer("out", "dense", (4,), np.array([[4000] * 27, [-4000] * 27,
                                                    *rng.integers(-50, 51, (2, 27))]),
                    np.zeros(4, dtype=np.int64), vth=2**17 - 1, spiking=False),
    )
    return FixedNetwork(input_shape=(2, 6, 6), input_scale=1.0, input_bits=6,
                        input_signed=False, layers=layers, timesteps=12)


def test_reference_gives_the_same_spikes_in_either_number_format():
    """whole_float=False keeps every layer in int32 like Lava: the default run, which holds
    these layers as whole float32 numbers, must agree with it exactly, state peaks too."""
    net = mixed_network()
    assert [k.whole_float for k in plan_kernels(net, 63, "cpu")] == [True] * 4
    x = np.random.default_rng(4).integers(0, 64, (40, 2, 6, 6)).astype(np.float64)
    fast = simulate_fixed(net, x, 12, record_trains=True, track_state=True)
    exact = simulate_fixed(net, x, 12, record_trains=True, track_state=True,
                           whole_float=False)
    state = exact.info["state_max"]["out"]
    assert (state["v"], state["v_min"]) == (V_MAX, -V_MAX)  # the readout saturated
    assert fast.info["state_max"] == exact.info["state_max"]
    assert all(p["u"] > 0 for p in exact.info["state_max"].values())
    np.testing.assert_array_equal(fast.output, exact.output)
    np.testing.assert_array_equal(fast.predictions_per_step, exact.predictions_per_step)
    for name in exact.spike_counts:
        np.testing.assert_array_equal(fast.spike_counts[name], exact.spike_counts[name])
        np.testing.assert_array_equal(fast.spike_trains[name], exact.spike_trains[name])
        assert exact.spike_counts[name].any() or name == "out"


def test_whole_float_only_where_a_bound_proves_it():
    net = mixed_network()
    big = net.layers[3].synapse.weight * 2  # 27 * 8000 << 6 > 2**23: u could wrap
    leaky = fixed_layer("c1", "conv", (3, 6, 6), net.layers[1].synapse.weight,
                        net.layers[1].bias, vth=40, padding=(1, 1), du=100)
    layers = (net.layers[0], leaky, net.layers[2],
              fixed_layer("out", "dense", (4,), big, np.zeros(4, dtype=np.int64),
                          vth=2**17 - 1, spiking=False))
    odd = FixedNetwork(input_shape=net.input_shape, input_scale=1.0, input_bits=6,
                       input_signed=False, layers=layers, timesteps=12)
    assert [k.whole_float for k in plan_kernels(odd, 63, "cpu")] == [True, False, True, False]
    x = np.random.default_rng(5).integers(0, 64, (10, 2, 6, 6)).astype(np.float64)
    a, b = simulate_fixed(odd, x, 12), simulate_fixed(odd, x, 12, whole_float=False)
    np.testing.assert_array_equal(a.output, b.output)


def test_float_simulation_in_float32_follows_float64(digits, digits_snn):
    """float32 rounds differently only where a potential lies within rounding of the
    threshold: the spike counts agree almost everywhere and never by more than one."""
    from lava_convert.errors import ConfigError
    from lava_convert.sim.reference import simulate_float

    x = digits.x_test[:200]
    ref = simulate_float(digits_snn.snn, x, 32)
    single = simulate_float(digits_snn.snn, x, 32, dtype=torch.float32)
    for name, counts in ref.spike_counts.items():
        diff = np.abs(single.spike_counts[name] - counts)
        assert diff.max() <= 1 and diff.mean() < 0.01, name
    assert np.mean(single.predictions == ref.predictions) >= 0.99
    with pytest.raises(ConfigError, match="dtype"):
        simulate_float(digits_snn.snn, x, 4, dtype=torch.float16)


def test_folded_pooling_runs_as_sum_pooling_and_the_small_kernel():
    """AvgPool2d(2) folded into a 3x3 conv gives a 6x6 stride-2 kernel of repeated 2x2
    blocks; computing it as sum pooling then the 3x3 kernel gives the same integers
    (PyTorch's own convolution of the full kernel is the oracle)."""
    from lava_convert.sim.synapse import PooledWeight, current, pooled_form, prepare_weight

    rng = np.random.default_rng(0)
    small = rng.integers(-127, 128, (5, 4, 3, 3))
    full = small.repeat(2, axis=2).repeat(2, axis=3)
    synapse = Synapse("conv", full, geometry=ConvGeometry((2, 2), (2, 2)))
    weight = prepare_weight(synapse, (4, 8, 8), torch.float32, "cpu")
    assert isinstance(weight, PooledWeight) and weight.pool == (2, 2)
    np.testing.assert_array_equal(weight.weight.numpy(), small)
    spikes = torch.as_tensor(rng.random((6, 4, 8, 8)) < 0.3, dtype=torch.float32)
    expected = torch.nn.functional.conv2d(spikes.double(), torch.as_tensor(full).double(),
                                          stride=2, padding=2)
    assert torch.equal(current(synapse, spikes, weight).double(), expected)
    # not a pooled kernel: one weight changed, an odd input size, a dilation
    odd = full.copy()
    odd[0, 0, 0, 1] += 1
    assert pooled_form(Synapse("conv", odd, geometry=synapse.geometry), (4, 8, 8)) is None
    assert pooled_form(synapse, (4, 7, 7)) is None
    # an odd height pools along the width only, still exactly
    assert pooled_form(synapse, (4, 7, 8))[1] == (1, 2)
    wide = prepare_weight(synapse, (4, 7, 8), torch.float32, "cpu")
    assert torch.equal(current(synapse, spikes[:, :, :7], wide).double(),
                       torch.nn.functional.conv2d(spikes[:, :, :7].double(),
                                                  torch.as_tensor(full).double(), stride=2,
                                                  padding=2))
    assert pooled_form(Synapse("conv", full, geometry=ConvGeometry((2, 2), (2, 2), (2, 2))),
                       (4, 8, 8)) is None


def test_spike_sums_are_bounded_by_one_sign_of_the_weights():
    """Spikes are never negative: a sum lies between minus the row's negative weights and
    plus its positive ones. Worked by hand: rows (3000, 3000, -2500) and (-4000, 100, 0)
    reach at most 6000 and 4000, not the 8500 of |w|; << 6 is 384000, far below 2**23,
    so u cannot wrap. A layer with 65600 per sign (65600 << 6 > 2**23) still wraps."""
    from lava_convert.sim.kernels import box_bound

    rows = np.array([[3000, 3000, -2500], [-4000, 100, 0]])
    assert box_bound(rows, 0.0, 0, 1) == 6000
    assert box_bound(rows, 0.0, -1, 1) == 8500
    assert box_bound(rows, 0.0, 0, 3) == 18000
    # a shortcut adds its positive weights to the top and its negative ones to the bottom
    assert box_bound(rows, 0.0, 0, 1, [Synapse("dense", np.array([[500, -100], [0, -7000]]))]) \
        == 11000

    def net(weight):
        layers = (fixed_layer("in", "input", (3,), None, np.zeros(3, np.int64), vth=1),
                  fixed_layer("out", "dense", (2,), weight, np.zeros(2, np.int64), vth=2**16))
        return FixedNetwork(input_shape=(3,), input_scale=1.0, input_bits=6,
                            input_signed=False, layers=layers, timesteps=4)

    half = np.array([[65000, 65000, -130000], [1, 1, 1]])  # |w| sums 260000: abs bound wraps
    assert [k.wrap_u for k in plan_kernels(net(half), 63, "cpu")] == [False, False]
    assert plan_kernels(net(half * 2), 63, "cpu")[1].wrap_u
