"""A bias into a CubaLIF's synaptic current: NIR filters it through ``i``, Lava's LIF can
only add a bias to ``v``. Checked against a forward-Euler simulation of NIR's CubaLIF
equations written here (the discretisation the reader documents), on a hand-built
Norse-style graph (dt = 1e-3, reset to 0)."""

from __future__ import annotations

import numpy as np
import pytest

import lava_convert as lc
from lava_convert.nir.reader import graph_to_snn
from lava_convert.sim.reference import simulate_float

nir = pytest.importorskip("nir")
RNG = np.random.default_rng(11)
DT, T = 1e-3, 40
TAU_SYN, TAU_MEM = 4e-3, 8e-3


def graph(bias: np.ndarray):
    w1, w2 = RNG.normal(0.3, 0.8, (6, 4)), RNG.normal(0.0, 0.8, (3, 6))
    ones = np.ones(6)
    nodes = {
        "input": nir.Input(input_type=np.array([4])),
        "fc1": nir.Affine(weight=w1, bias=bias),
        "lif": nir.CubaLIF(tau_syn=TAU_SYN * ones, tau_mem=TAU_MEM * ones, r=1.5 * ones,
                           v_leak=0 * ones, v_threshold=0.4 * ones, v_reset=0 * ones,
                           w_in=ones),
        "fc2": nir.Affine(weight=w2, bias=np.zeros(3)),
        "out": nir.LI(tau=TAU_MEM * np.ones(3), r=np.ones(3), v_leak=np.zeros(3)),
        "output": nir.Output(output_type=np.array([3])),
    }
    edges = [("input", "fc1"), ("fc1", "lif"), ("lif", "fc2"), ("fc2", "out"),
             ("out", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


def euler_counts(g, x: np.ndarray) -> np.ndarray:
    """NIR's CubaLIF by forward Euler: the first layer's spike counts over T steps."""
    fc, n = g.nodes["fc1"], g.nodes["lif"]
    drive = x @ np.asarray(fc.weight).T + np.asarray(fc.bias)
    i, v, counts = np.zeros_like(drive), np.zeros_like(drive), np.zeros_like(drive)
    for _ in range(T):
        i = i * (1 - DT / n.tau_syn) + DT / n.tau_syn * n.w_in * drive
        v = v * (1 - DT / n.tau_mem) + DT / n.tau_mem * (n.v_leak + n.r * i)
        spikes = v > n.v_threshold
        v = np.where(spikes, n.v_reset, v)
        counts += spikes
    return counts


def ours(snn, x):
    return simulate_float(snn, x, T).spike_counts[snn.layers[0].name]


def test_without_a_synaptic_bias_the_reading_is_exact():
    g = graph(np.zeros(6))
    x = RNG.random((64, 4))
    snn = graph_to_snn(g, dt=DT, reset="hard", timesteps=T, input_range=(0.0, 1.0))
    expected = euler_counts(g, x)
    assert expected.sum() > 0
    assert np.array_equal(ours(snn, x), expected)


def test_a_synaptic_bias_is_refused_naming_the_nodes():
    g = graph(np.full(6, 0.5))
    with pytest.raises(lc.NirGraphError, match=r"node 'lif' \(CubaLIF\).*'fc1'.*v_leak.*"
                                               r"cuba_bias='voltage'"):
        graph_to_snn(g, dt=DT, reset="hard", timesteps=T, input_range=(0.0, 1.0))


def test_on_request_the_bias_acts_on_the_voltage_and_spikes_differ_at_first(caplog):
    """The approximation is what it says: more spikes than NIR's (the bias acts at full
    strength from the first step, where NIR's current still rises), never fewer, and the
    same network once the bias is 0."""
    g = graph(np.full(6, 0.5))
    x = RNG.random((64, 4))
    with caplog.at_level("WARNING"):
        snn = graph_to_snn(g, dt=DT, reset="hard", timesteps=T, input_range=(0.0, 1.0),
                           cuba_bias="voltage")
    assert "'lif'" in caplog.text and "fc1" in caplog.text
    got, expected = ours(snn, x), euler_counts(g, x)
    assert np.all(got >= expected) and np.any(got > expected)
