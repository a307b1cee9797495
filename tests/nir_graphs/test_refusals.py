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


def _if(**overrides):
    fields = dict(r=np.ones(2), v_threshold=np.ones(2), v_reset=np.zeros(2))
    return nir.IF(**{**fields, **overrides})


def _lif(tau):
    return nir.LIF(tau=np.full(2, tau), r=np.ones(2), v_leak=np.zeros(2),
                   v_threshold=np.ones(2), v_reset=np.zeros(2))


#: Hostile graphs: what is wrong, how to build it, and the words the refusal must use.
HOSTILE = {
    "NaN weight": (lambda: _replace("w1", nir.Affine(weight=np.full((2, 3), np.nan),
                                                     bias=np.zeros(2))),
                   r"node 'w1' \(Affine\): weight holds NaN"),
    "infinite threshold": (lambda: graph(first=_if(v_threshold=np.array([1.0, np.inf]))),
                           r"node 'h' \(IF\): v_threshold holds NaN or infinite"),
    "weights stored as text": (lambda: _replace("w1", nir.Affine(
        weight=np.array([[b"1", b"2", b"3"], [b"4", b"5", b"6"]]), bias=np.zeros(2))),
        r"node 'w1' \(Affine\): weight holds \|S1 values, not numbers"),
    "dt = 0": (lambda: graph(metadata={**META, "lava_convert.dt": 0.0}),
               r"dt = 0: the time step must be a finite number above 0"),
    "dt = -1": (lambda: graph(metadata={**META, "lava_convert.dt": -1.0}),
                r"dt = -1: the time step"),
    "tau = 0": (lambda: graph(first=_lif(0.0)), r"node 'h' \(LIF\): tau = 0 is shorter"),
    "tau = -10": (lambda: graph(first=_lif(-10.0)), r"node 'h' \(LIF\): tau = -10"),
    "tau = 0.5 at dt = 1": (lambda: graph(first=_lif(0.5)),
                            r"tau = 0.5 is shorter than the time step dt = 1"),
    "timesteps = 2**40": (lambda: graph(metadata={**META, "lava_convert.timesteps": 2**40}),
                          r"asks for timesteps = 1099511627776: at most 65536"),
    "huge input shape": (lambda: _replace("input", nir.Input(
        input_type=np.array([2**20, 2**20]))), r"node 'input'.*holds 1.1e\+12 values"),
    "input range NaN": (lambda: graph(metadata={**META, "lava_convert.input_range":
                                                np.array([0.0, np.nan])}),
                        r"input range \(0, nan\) is not two finite numbers"),
    "negative conv stride": (lambda: _replace("w1", nir.Conv2d(
        input_shape=np.array([1, 3]), weight=np.ones((2, 1, 1, 1)), stride=np.array([-1, 1]),
        padding=np.array([0, 0]), dilation=np.array([1, 1]), groups=1, bias=np.zeros(2))),
        r"node 'w1' \(Conv2d\): stride = \[-1, 1\]: whole numbers of at least 1"),
}


def _replace(name, node):
    g = graph()
    g.nodes[name] = node
    return g


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_graphs_are_refused_naming_the_node(case, tmp_path):
    build, words = HOSTILE[case]
    with pytest.raises(lc.NirGraphError, match=words) as refused:
        graph_to_snn(build(), reset="soft")
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("case", ["NaN weight", "tau = 0.5 at dt = 1", "timesteps = 2**40",
                                  "weights stored as text"])
def test_hostile_files_are_refused_through_from_nir(case, tmp_path):
    path = tmp_path / "hostile.nir"
    nir.write(path, HOSTILE[case][0]())
    with pytest.raises(lc.NirGraphError, match=HOSTILE[case][1]):
        lc.from_nir(path, np.random.default_rng(0).random((8, 3)), reset="soft")


def test_a_file_nir_itself_cannot_parse_is_one_nir_graph_error(tmp_path):
    """An unknown node type in the file: NIR's reader fails in its own way; the refusal is
    one line naming the file."""
    path = tmp_path / "odd.nir"
    nir.write(path, graph())
    with h5py.File(path, "r+") as f:
        del f["node/nodes/h/type"]
        f["node/nodes/h"].create_dataset("type", data=b"Teleporter")
    with pytest.raises(lc.NirGraphError, match=r"odd.nir: NIR .* cannot read this graph") \
            as refused:
        load_graph(path)
    assert "\n" not in str(refused.value)


def test_a_long_variable_length_string_counts_against_the_size_cap(tmp_path):
    """A 2 MB string in a NIR file declares a pointer's 16 bytes: its characters are
    counted (as the file's bytes beyond its datasets) against the cap."""
    path = tmp_path / "long.nir"
    nir.write(path, graph(metadata={**META, "note": "x" * 2_000_000}))
    with pytest.raises(lc.NirGraphError, match=r"long.nir: /node/.*: variable-length strings "
                                               r"of up to \d+ bytes"):
        load_graph(path, max_bytes=2**20)
    assert load_graph(path, max_bytes=2**22) is not None  # within a raised cap, it reads
