"""Conversion methods: QCFS, ReLU swapping, batch-norm folding, shift variants, read-outs,
and the exact spike staircase of one soft-reset layer under Lava's strict ``v > vth`` rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import lava_convert as lc
from lava_convert.frontend.torch_fx import trace
from lava_convert.sim.ann import forward
from lava_convert.sim.neuron import NeuronState, fixed_step


def test_qcfs_values_and_straight_through_gradient():
    act = lc.QCFS(levels=4, threshold=2.0)
    x = torch.tensor([-1.0, 0.0, 0.24, 0.26, 1.0, 2.5, 5.0], requires_grad=True)
    y = act(x)
    # theta * clip(floor(x * L / theta + 1/2) / L, 0, 1) with L = 4, theta = 2
    assert y.tolist() == [0.0, 0.0, 0.0, 0.5, 1.0, 2.0, 2.0]
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]  # straight through, clipped
    assert act.threshold.grad is not None


def test_replace_relus_keeps_weights():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Sequential(nn.Linear(4, 4), nn.ReLU()),
                          nn.Linear(4, 2))
    linears = [model[0], model[2][0], model[3]]
    before = [(m.weight.clone(), m.bias.clone()) for m in linears]
    lc.replace_relus(model, "qcfs", levels=8, threshold=3.0)
    assert isinstance(model[1], lc.QCFS) and isinstance(model[2][1], lc.QCFS)
    assert float(model[1].threshold.detach()) == 3.0 and model[1].levels == 8
    for m, (w, b) in zip(linears, before):
        assert torch.equal(m.weight, w) and torch.equal(m.bias, b)
    with pytest.raises(ValueError, match="no nn.ReLU"):
        lc.replace_relus(nn.Sequential(nn.Linear(2, 2)), "threshold")


def test_batchnorm_is_folded_exactly():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))
    model.train()
    for _ in range(5):  # give the running statistics non-trivial values
        model(torch.randn(32, 5) * 3 + 1)
    with torch.no_grad():
        model[1].weight.uniform_(0.5, 2.0)
        model[1].bias.uniform_(-1, 1)
    model.eval()
    graph = trace(model, (5,))
    assert len(graph.layers) == 2
    x = torch.randn(20, 5)
    np.testing.assert_allclose(forward(graph, x.numpy())[-1], model(x).detach().numpy(),
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(lc.UnsupportedModuleError, match="BatchNorm1d that does not directly"):
        trace(nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.BatchNorm1d(6), nn.Linear(6, 2)), (5,))


def test_qcfs_converts_exactly_at_t_equal_l():
    """v0 = V_th/2, soft reset, T = L: the first layer's rate times V_th is the QCFS output."""
    torch.manual_seed(1)
    L = 4
    model = nn.Sequential(nn.Linear(6, 16), lc.QCFS(L, 1.5), nn.Linear(16, 3))
    x = torch.rand(200, 6).numpy()
    snn = lc.convert(model, calibration=x, timesteps=L, shift="v0")
    result = snn.simulate(x, L, mode="float")
    hidden = forward(snn.ann, x)[0]
    theta = snn.snn.layers[0].threshold
    np.testing.assert_allclose(result.spike_counts["0"] * theta / L, hidden, atol=1e-9)
    assert 0 < result.spike_counts["0"].mean() < L  # the staircase is exercised


@pytest.mark.parametrize("shift, reset", [("bias", "soft"), ("v0", "soft"), ("none", "hard")])
def test_config_knobs_reach_the_network(shift, reset):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), lc.ThresholdReLU(2.0), nn.Linear(5, 2))
    snn = lc.convert(model, calibration=np.random.default_rng(0).random((50, 4)), timesteps=10,
                     shift=shift, reset=reset)
    hidden, fixed = snn.snn.layers[0], snn.fixed.layers[0]
    assert hidden.threshold == 2.0 and hidden.reset == reset and fixed.reset == reset
    assert hidden.shift == (0.1 if shift == "bias" else 0.0)
    assert hidden.v0 == (1.0 if shift == "v0" else 0.0)
    assert fixed.v0 == (round(fixed.scale) << 6 if shift == "v0" else 0)


def test_spike_count_readout():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    x = np.random.default_rng(0).random((100, 4))
    snn = lc.convert(model, calibration=x, timesteps=16, readout="spikes")
    out = snn.snn.layers[-1]
    assert out.spiking and out.threshold == pytest.approx(forward(snn.ann, x)[-1].max())
    result = snn.simulate(x)
    np.testing.assert_array_equal(result.output, result.spike_counts["2"] / 16)


def staircase(v0: int, current: int, vth: int, T: int) -> int:
    """Spikes of a soft-reset IF neuron (Lava units) after T steps of constant input.

    With charge Q = v0 + T*I and at most one spike per step, the neuron fires once
    for every multiple k*vth strictly below Q (strict ``v > vth``):
    N = clip(ceil(Q / vth) - 1, 0, T).
    """
    return min(max(math.ceil((v0 + T * current) / vth) - 1, 0), T)


CASES = [(0, 3, 10, 8), (0, 5, 10, 8), (0, 10, 10, 5), (320 // 64, 5, 10, 7), (5, 2, 10, 9),
         (0, 11, 10, 4), (0, -2, 10, 6), (0, 0, 10, 3), (5, 1, 10, 1), (0, 7, 13, 13)]


@pytest.mark.parametrize("v0, current, vth, T", CASES)
def test_staircase_formula_matches_the_neuron_step(v0, current, vth, T):
    state = NeuronState.zeros((1,), dtype=torch.int64, v0=v0 << 6)
    spikes = 0
    for _ in range(T):
        state, s = fixed_step(state, torch.tensor([0]), vth=vth, bias=torch.tensor([current]))
        spikes += int(s[0])
    assert spikes == staircase(v0, current, vth, T)


@pytest.mark.lava
def test_staircase_formula_matches_lava():
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    from lava_convert.lava.compat import ensure_lava

    ensure_lava()
    from lava_convert.lava.procs.process import SoftResetLIF

    for v0, current, vth, T in CASES:
        neuron = SoftResetLIF(shape=(1,), vth=vth, bias_mant=current, bias_exp=6, v0=v0 << 6,
                              window=T, record_windows=1)
        try:
            neuron.run(condition=RunSteps(num_steps=T), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
            count = int(neuron.spike_counts.get()[0, 0])
        finally:
            neuron.stop()
        assert count == staircase(v0, current, vth, T), (v0, current, vth, T)


def test_streamed_percentile_matches_numpy_within_a_bin():
    from lava_convert.passes.balance import HIST_BINS, activation_statistics

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 30), nn.ReLU(), nn.Linear(30, 4))
    x = np.random.default_rng(0).normal(size=(3000, 10))
    graph = trace(model, (10,))
    stats = activation_statistics(graph, x, 99.0, batch_size=256)
    acts = forward(graph, x)
    top, pct = stats[0]
    assert top == pytest.approx(acts[0].max())
    assert np.percentile(acts[0], 99.0) <= pct <= np.percentile(acts[0], 99.0) + top / HIST_BINS
    assert stats[-1][0] == pytest.approx(acts[-1].max())
    snn = lc.convert(model, calibration=x, balancing="percentile", percentile=99.0)
    assert snn.snn.layers[0].threshold == pytest.approx(pct)


def test_bias_calibration_removes_the_average_conversion_error(digits, digits_model, tmp_path):
    x = digits.x_train[:300]
    T = 4
    plain = lc.convert(digits_model, calibration=digits.x_train, timesteps=T, shift="v0")
    tuned = lc.convert(digits_model, calibration=digits.x_train, timesteps=T, shift="v0",
                       bias_calibration=300)
    acts = forward(plain.ann, x)

    def mean_error(net, i):
        layer = net.snn.layers[i]
        rate = net.simulate(x, T, mode="float").spike_counts[layer.name] / T * layer.threshold
        return float(np.abs((acts[i].reshape(len(x), -1) - rate).mean(axis=0)).mean())

    # per neuron, the average error shrinks in every layer (a sign error would grow it);
    # what remains comes from neurons clipped at 0 or V_th, which a bias cannot move
    hidden = range(len(plain.snn.layers) - 1)
    assert all(mean_error(tuned, i) < mean_error(plain, i) for i in hidden)
    assert sum(mean_error(tuned, i) for i in hidden) < 0.95 * sum(mean_error(plain, i)
                                                                  for i in hidden)
    for i, layer in enumerate(plain.snn.layers[:-1]):
        assert not np.array_equal(tuned.snn.layers[i].bias, layer.bias)
    np.testing.assert_array_equal(tuned.snn.layers[-1].bias, plain.snn.layers[-1].bias)
    assert tuned.config.bias_calibration == 300
    y = digits.y_test
    assert tuned.simulate(digits.x_test, T).accuracy(y) >= \
        plain.simulate(digits.x_test, T).accuracy(y) - 0.01
    # the per-neuron corrections of the exported network (both passes) are in the sidecar
    side = tuned.sidecar()
    shift, fixed = np.asarray(side["layers"][0]["shift"]), tuned.fixed.layers[0]
    assert shift.shape == (tuned.snn.layers[0].synapse.weight.shape[0],)
    assert np.all(np.abs(fixed.bias - (tuned.ann.layers[0].bias + shift) * fixed.scale) <= 0.5)
    assert lc.read_netx(tuned.export(tmp_path / "tuned.net")).layers[0].bias.shape == \
        tuned.fixed.layers[0].bias.shape
    with pytest.raises(lc.ConfigError, match="bias_calibration"):
        lc.ConversionConfig(bias_calibration=-1)


def test_bias_calibration_leaves_a_spiking_readout_alone(digits, digits_model):
    """The readout's ANN target is a logit, which can be negative; no spike rate matches it.
    Calibrating it anyway pushed its biases up and cost a stock-target CNN 30 points."""
    x = digits.x_train[:300]
    plain = lc.convert(digits_model, calibration=x, timesteps=8, readout="spikes")
    tuned = lc.convert(digits_model, calibration=x, timesteps=8, readout="spikes",
                       bias_calibration=64)
    np.testing.assert_array_equal(tuned.snn.layers[-1].bias, plain.snn.layers[-1].bias)
    assert not np.array_equal(tuned.snn.layers[0].bias, plain.snn.layers[0].bias)


def test_the_second_calibration_pass_is_kept_only_if_it_agrees_better(digits, digits_model,
                                                                       monkeypatch):
    """The on-grid calibration pass is dropped when it would lower the fixed-point network's
    agreement with the ANN on the calibration samples (it cost the MNIST CNN 1.1 points at
    T=4), and kept when it does not."""
    import dataclasses

    from lava_convert import pipeline
    from lava_convert.frontend.torch_fx import trace

    config = lc.ConversionConfig(timesteps=4, shift="v0", bias_calibration=128)
    stage = pipeline.Stage(graph=trace(digits_model, (1, 8, 8)), x=digits.x_train[:400],
                           config=config)
    for name in ("balance", "bias_calibration", "quantize"):
        stage = next(p for p in pipeline.PASSES if p.name == name).run(stage)
    on_grid = next(p for p in pipeline.PASSES if p.name == "bias_calibration_on_grid")

    def harmful(graph, snn, x, progress=False):  # silences the first hidden layer
        first = dataclasses.replace(snn.layers[0], bias=snn.layers[0].bias - 100.0)
        return dataclasses.replace(snn, layers=(first, *snn.layers[1:]))

    monkeypatch.setattr(pipeline.order, "calibrate_biases", harmful)
    assert on_grid.run(stage).fixed is stage.fixed  # dropped
    monkeypatch.setattr(pipeline.order, "calibrate_biases",
                        lambda graph, snn, x, progress=False: snn)
    kept = on_grid.run(stage).fixed  # the same biases: agreement unchanged, so kept
    assert kept is not stage.fixed
    np.testing.assert_array_equal(kept.layers[0].bias, stage.fixed.layers[0].bias)
