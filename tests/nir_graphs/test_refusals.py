"""What the NIR reader refuses, each in its own words: what is wrong, where, and the fix."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

import lava_convert as lc
from lava_convert.nir.reader import graph_to_snn, load_graph

nir = pytest.importorskip("nir")
META = {"lava_convert.dt": 1.0, "lava_convert.timesteps": 4,
        "lava_convert.input_range": np.array([0.0, 1.0])}


def graph(*middle, edges=None, metadata=META, first=None):
    """input -> affine -> IF(h) -> [middle] -> affine -> I(o) -> output."""
    nodes = {"input": nir.Input(input_type=np.array([3])),
             "w1": nir.Affine(weight=np.ones((2, 3)), bias=np.zeros(2)),
             "h": first or nir.IF(r=np.ones(2), v_threshold=np.ones(2), v_reset=np.zeros(2)),
             "w2": nir.Affine(weight=np.ones((2, 2)), bias=np.zeros(2)),
             "o": nir.I(r=np.ones(2)), "output": nir.Output(output_type=np.array([2]))}
    chain = ["input", "w1", "h", "w2", "o", "output"]
    for name, node in middle:
        nodes[name] = node
    edges = edges or list(zip(chain, chain[1:]))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata, type_check=False)


def test_a_plain_graph_reads():
    snn = graph_to_snn(graph(), reset="soft")
    assert [l.name for l in snn.layers] == ["h", "o"]
    assert snn.layers[0].threshold == 1.0 and not snn.layers[1].spiking


def test_the_reset_must_be_said():
    with pytest.raises(lc.NirGraphError, match=r"node 'h' \(IF\).*pass reset='soft' or "
                                               r"reset='hard'"):
        graph_to_snn(graph())
    with pytest.raises(lc.ConfigError, match="reset='sideways' is invalid"):
        graph_to_snn(graph(), reset="sideways")


def test_the_time_step_and_length_must_be_said():
    with pytest.raises(lc.NirGraphError, match="time step: pass dt.*1e-4"):
        graph_to_snn(graph(metadata={}), reset="soft")
    with pytest.raises(lc.NirGraphError, match="pass timesteps"):
        graph_to_snn(graph(metadata={}), reset="soft", dt=1.0)


def test_unsupported_nodes_are_named_with_what_is_supported():
    g = graph(("odd", nir.Delay(delay=np.ones(2))))
    with pytest.raises(lc.NirGraphError, match=r"node 'odd' \(Delay\): delays are not"):
        graph_to_snn(g, reset="soft")
    g = graph(("odd", nir.Conv1d(input_shape=3, weight=np.ones((1, 1, 1)), stride=1,
                                 padding=0, dilation=1, groups=1, bias=np.zeros(1))))
    with pytest.raises(lc.NirGraphError, match=r"node 'odd' \(Conv1d\) is not supported; "
                                               r"supported nodes: Input, Output, Threshold, IF"):
        graph_to_snn(g, reset="soft")


def test_recurrent_edges_are_refused():
    chain = ["input", "w1", "h", "w2", "o", "output"]
    edges = list(zip(chain, chain[1:])) + [("h", "rec"), ("rec", "h")]
    g = graph(("rec", nir.Linear(weight=np.eye(2))), edges=edges)
    with pytest.raises(lc.NirGraphError, match="recurrent edge among h, "):
        graph_to_snn(g, reset="soft")


def test_per_neuron_time_constants_are_refused_per_layer():
    lif = nir.LIF(tau=np.array([2.0, 3.0]), r=np.ones(2), v_leak=np.zeros(2),
                  v_threshold=np.ones(2), v_reset=np.zeros(2))
    with pytest.raises(lc.NirGraphError, match=r"node 'h': dt/tau differs between neurons"):
        graph_to_snn(graph(first=lif), reset="soft")


def test_per_neuron_thresholds_and_gains_fold_into_the_weights():
    """Worked by hand: thresholds 1 and 4, r = 2 and 1. Each neuron's input row is scaled
    by r * (4 / threshold): row 0 by 8, row 1 by 1, and the layer's threshold is 4."""
    node = nir.IF(r=np.array([2.0, 1.0]), v_threshold=np.array([1.0, 4.0]),
                  v_reset=np.zeros(2))
    layer = graph_to_snn(graph(first=node), reset="soft").layers[0]
    assert layer.threshold == 4.0
    assert np.array_equal(layer.synapse.weight, [[8.0, 8.0, 8.0], [1.0, 1.0, 1.0]])


def test_a_nonzero_hard_reset_potential_is_refused():
    node = nir.IF(r=np.ones(2), v_threshold=np.ones(2), v_reset=np.full(2, 0.5))
    with pytest.raises(lc.NirGraphError, match="v_reset=0.5; Lava's hard reset sets v to 0"):
        graph_to_snn(graph(first=node), reset="hard")


def test_a_file_that_points_outside_itself_is_refused_before_reading(tmp_path):
    path = tmp_path / "net.nir"
    nir.write(path, graph())
    with h5py.File(path, "a") as f:
        f["node/nodes/w1/extra"] = h5py.ExternalLink("/etc/passwd", "/x")
    with pytest.raises(lc.NirGraphError, match=r"net.nir: /node/nodes/w1/extra: a "
                                               r"ExternalLink.*a NIR file must be"):
        load_graph(path)
    (tmp_path / "junk.nir").write_bytes(b"not hdf5")
    with pytest.raises(lc.NirGraphError, match="not an HDF5 file"):
        load_graph(tmp_path / "junk.nir")
    with pytest.raises(lc.NirGraphError, match="no such NIR file"):
        load_graph(tmp_path / "missing.nir")


def test_a_threshold_without_its_reset_feedback_is_refused():
    nodes = {"input": nir.Input(input_type=np.array([3])),
             "w1": nir.Affine(weight=np.ones((2, 3)), bias=np.zeros(2)),
             "h": nir.I(r=np.ones(2)), "fire": nir.Threshold(threshold=np.ones(2)),
             "w2": nir.Affine(weight=np.ones((2, 2)), bias=np.zeros(2)),
             "o": nir.I(r=np.ones(2)), "output": nir.Output(output_type=np.array([2]))}
    chain = ["input", "w1", "h", "fire", "w2", "o", "output"]
    g = nir.NIRGraph(nodes=nodes, edges=list(zip(chain, chain[1:])), metadata=META,
                     type_check=False)
    with pytest.raises(lc.NirGraphError, match=r"node 'fire' \(Threshold\) after integrator "
                                               r"'h': without a Scale\(-threshold\) fed back"):
        graph_to_snn(g)
