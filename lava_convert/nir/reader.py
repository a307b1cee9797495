"""Read a NIR graph into the IR: an ``SnnNetwork`` (real-valued units), ready to quantize.

A NIR graph is read as layers: each neuron node (``IF``, ``LIF``, ``CubaLIF``; as the
readout ``I``, ``LI``, ``CubaLI``; or the soft-reset pattern integrator ``I`` ->
``Threshold`` with ``Scale(-threshold)`` fed back, as :mod:`.writer` writes it) with
the chains of linear nodes (``Affine``, ``Linear``, ``Conv2d``, ``Flatten``,
``SumPool2d``, ``AvgPool2d``, ``Scale``) that feed it. The chain from the layer before
is the layer's synapse; chains from earlier layers are shortcuts. A chain of one
``Affine``/``Linear`` (after an optional ``Flatten``), one ``Conv2d`` or one pooling
node keeps its form; longer chains are composed into one dense matrix.

NIR's neurons are continuous-time; a graph does not store the time step. They are
discretised as snnTorch does (forward Euler at step ``dt``, the synaptic current
updated before the voltage, then the spike ``v > threshold``, then the reset), which
is the order of Lava's LIF::

    IF:       v += r dt I
    LIF:      v = v (1 - dt/tau) + (dt/tau) (v_leak + r I)
    CubaLIF:  i = i (1 - dt/tau_syn) + (dt/tau_syn) w_in I
              v = v (1 - dt/tau_mem) + (dt/tau_mem) (v_leak + r i)

so ``du = dt/tau_syn``, ``dv = dt/tau_mem``, and the input gain and ``v_leak`` fold
into the synapse weights and the bias. Per-neuron gains and thresholds fold into the
weights too (exactly: a neuron's ``v`` scales with all its inputs); decays must be
the same for a whole layer (Lava has one ``du``, ``dv`` per layer).

NIR resets to ``v_reset`` (hard reset) but producers differ (snnTorch's ``Leaky``
subtracts the threshold by default and still writes ``v_reset = 0``), so the reset
comes from the caller (``reset=``) or from lava-convert's own metadata, never from a
guess; ``Delay`` nodes, recurrent edges (other than the soft-reset pattern) and
nested graphs are refused.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import h5py
import numpy as np

from ..errors import ConfigError, NirGraphError
from ..ir import SnnNetwork, SpikingLayer, Synapse, setting_size
from ..netx.untrusted import check_self_contained, max_bytes_limit
from .chains import LINEAR, chain_synapse
from .neurons import NEURONS, Neuron, read_neuron
from .support import META, import_nir, meta_value, per_neuron
from .validate import check_node, check_range, check_run, check_shape

log = logging.getLogger(__name__)

SUPPORTED = ("Input", "Output", "Threshold") + NEURONS + LINEAR


def load_graph(source, max_bytes: int | None = None):
    """A ``nir.NIRGraph`` from a graph or a NIR file (checked like a .net file first:
    self-contained, declared sizes within ``max_bytes``)."""
    nir = import_nir()
    if isinstance(source, nir.NIRGraph):
        return source
    if not isinstance(source, (str, os.PathLike)):
        raise ConfigError(f"expected a nir.NIRGraph or the path of a NIR file, got "
                          f"{type(source).__name__}")
    path = Path(source)
    if not path.is_file():
        raise NirGraphError(f"{path}: no such NIR file")
    try:
        with h5py.File(path, "r") as f:
            check_self_contained(path, f, max_bytes_limit(max_bytes), what="a NIR file",
                                 error=NirGraphError)
            if "node" not in f:
                raise NirGraphError(f"{path}: no 'node' group: not a NIR file")
    except OSError as exc:
        raise NirGraphError(f"{path}: not an HDF5 file ({exc})") from exc
    try:  # NIR's own type check rejects grouped convolutions: shapes are checked here
        return nir.read(path, type_check=False)
    except Exception as exc:  # noqa: BLE001 - whatever NIR raises on a bad file, said once
        detail = " ".join(str(exc).split())[:200]
        raise NirGraphError(f"{path}: NIR {nir.version} cannot read this graph "
                            f"({type(exc).__name__}: {detail})") from None


#: What :func:`graph_to_snn` does with a bias that reaches a ``CubaLIF``/``CubaLI`` through
#: its synaptic current: refuse it, or add it to the voltage (``"voltage"``: Lava's LIF has
#: a bias on ``v`` only; the same steady state, a faster start).
CUBA_BIAS = ("refuse", "voltage")


def graph_to_snn(graph, *, dt: float | None = None, reset: str | None = None,
                 timesteps: int | None = None,
                 input_range: tuple[float, float] | None = None,
                 cuba_bias: str = "refuse") -> SnnNetwork:
    """The ``SnnNetwork`` of a NIR graph (see the module docstring).

    Args:
        dt: The time step the graph's time constants are in units of (snnTorch's exports
            assume 1e-4 s, Norse's 1e-3 s); default: the graph's own (lava-convert's
            files say 1); required otherwise.
        reset: ``"soft"`` or ``"hard"`` for every spiking node whose reset the graph does
            not state in lava-convert's metadata; required if there is one.
        timesteps: Time steps per sample (default: the graph's, if it says).
        input_range: The inputs' range (default: the graph's, if it says).
        cuba_bias: A bias of the linear node before a ``CubaLIF``/``CubaLI`` enters its
            synaptic current in NIR (``i`` rises to it over about ``tau_syn``); Lava's
            LIF adds a bias to ``v`` only. ``"refuse"`` (default): a ``NirGraphError``
            naming the nodes; ``"voltage"``: the bias is added to ``v`` from the first
            step (the same steady state; spikes differ while ``i`` would still rise).

    Raises:
        NirGraphError: a node or edge lava-convert cannot express, naming it and what is
            supported; a missing ``dt``/``reset``/``timesteps``.
    """
    if cuba_bias not in CUBA_BIAS:
        raise ConfigError(f"cuba_bias={cuba_bias!r} is invalid: use 'refuse' or 'voltage'")
    if reset not in (None, "soft", "hard"):
        raise ConfigError(f"reset={reset!r} is invalid: use 'soft' (subtract the threshold) "
                          "or 'hard' (reset to 0)")
    nir = import_nir()
    nodes = dict(graph.nodes)
    for name, node in nodes.items():
        kind = type(node).__name__
        if isinstance(node, nir.NIRGraph):
            raise NirGraphError(f"node '{name}' is a nested graph (a recurrent layer such as "
                                "snnTorch's RLeaky): recurrent layers are not supported")
        if kind == "Delay":
            raise NirGraphError(f"node '{name}' (Delay): delays are not supported; lava-convert "
                                "layers read each other in the same time step")
        if kind not in SUPPORTED:
            raise NirGraphError(f"node '{name}' ({kind}) is not supported; supported nodes: "
                                f"{', '.join(SUPPORTED)}")
    meta = getattr(graph, "metadata", None) or {}
    dt = dt if dt is not None else meta_value(graph, "dt")
    if dt is None:
        raise NirGraphError("the graph does not say its time step: pass dt (snnTorch's "
                            "exports assume dt=1e-4, Norse's dt=1e-3)")
    from_graph = timesteps is None
    timesteps = timesteps if timesteps is not None else meta_value(graph, "timesteps")
    if timesteps is None:
        raise NirGraphError("the graph does not say how many time steps a sample runs: pass "
                            "timesteps")
    dt, timesteps = check_run(dt, timesteps, from_graph)
    for name, node in nodes.items():  # every number before anything is built
        check_node(name, node, dt)
    if input_range is None:
        input_range = meta.get(f"{META}.input_range")
    if input_range is None:
        raise NirGraphError("the graph does not say its input range: pass input_range "
                            "(or calibration data, with from_nir)")
    input_range = check_range(input_range)
    successors: dict[str, list[str]] = {}
    predecessors: dict[str, list[str]] = {}
    for a, b in graph.edges:
        if a not in nodes or b not in nodes:
            raise NirGraphError(f"edge {a} -> {b} names a node the graph does not have")
        successors.setdefault(a, []).append(b)
        predecessors.setdefault(b, []).append(a)
    inputs = [n for n, v in nodes.items() if type(v).__name__ == "Input"]
    outs = [n for n, v in nodes.items() if type(v).__name__ == "Output"]
    if len(inputs) != 1 or len(outs) != 1:
        raise NirGraphError(f"the graph has {len(inputs)} Input and {len(outs)} Output nodes; "
                            "lava-convert reads graphs with one of each")
    input_type = nodes[inputs[0]].input_type
    input_shape = check_shape(inputs[0], input_type.get("input") if isinstance(
        input_type, dict) else input_type, "input shape")

    # neurons, including the integrator/threshold/feedback pattern
    neurons, internal = {}, set()
    for name, node in nodes.items():
        if type(node).__name__ in NEURONS:
            neuron = read_neuron(name, node, nodes, successors, float(dt), reset)
            neurons[name] = neuron
            if neuron.output != name:
                feedback = [s for s in successors[neuron.output]
                            if name in successors.get(s, ())]
                internal |= {(name, neuron.output), (neuron.output, feedback[0]),
                             (feedback[0], name)}
                for a, b in [(neuron.output, feedback[0]), (feedback[0], name)]:
                    predecessors[b].remove(a)  # the pattern's edges are internal: out of
                    successors[a].remove(b)    # the order of layers in both directions
    in_pattern = {name for edge in internal for name in edge}
    for name, node in nodes.items():
        if type(node).__name__ == "Threshold" and name not in in_pattern:
            raise NirGraphError(f"node '{name}' (Threshold) does not follow an integrator with "
                                "a Scale(-threshold) fed back; lava-convert cannot read it")
    by_output = {n.output: n for n in neurons.values()}
    order = _topological(nodes, successors, predecessors)
    layers_nodes = [by_output[n] for n in order if n in by_output]
    if not layers_nodes:
        raise NirGraphError("the graph has no neuron nodes (IF, LIF, CubaLIF, I, LI, CubaLI)")
    index = {n.output: i for i, n in enumerate(layers_nodes)}
    index[inputs[0]] = -1
    shapes: dict[int, tuple[int, ...]] = {-1: input_shape}
    layers = []
    for i, neuron in enumerate(layers_nodes):
        chains = [_chain_to(p, predecessors, nodes, index, neuron.name)
                  for p in predecessors.get(neuron.name, ())]
        # the main synapse reads the layer before (ours are named "<layer>.synapse"); any
        # other path, from there or from earlier layers, is a shortcut
        from_before = sorted((c for c in chains if c[0] == i - 1),
                             key=lambda c: not c[1] or not c[1][-1].endswith(".synapse"))
        if not from_before:
            before = "the Input node" if i == 0 else f"'{layers_nodes[i - 1].output}'"
            raise NirGraphError(f"node '{neuron.name}': no input comes from the layer before "
                                f"it ({before}); lava-convert reads a chain of layers (with "
                                "shortcuts from earlier ones)")
        main = from_before[0]
        layers.append(_layer(neuron, main, [c for c in chains if c is not main], nodes,
                             shapes, i, layers_nodes, cuba_bias))
        shapes[i] = layers[-1].out_shape
    last = layers_nodes[-1]
    if outs[0] not in successors.get(last.output, ()):
        raise NirGraphError(f"the Output node is not fed by the last layer '{last.output}'")
    return SnnNetwork(input_shape=input_shape, layers=tuple(layers), timesteps=int(timesteps),
                      input_range=(float(input_range[0]), float(input_range[1])))


def _topological(nodes, successors, predecessors) -> list[str]:
    """Nodes in an order where every edge points forward; refuses other cycles."""
    degree = {n: len(predecessors.get(n, ())) for n in nodes}
    ready = [n for n, d in degree.items() if d == 0]
    order = []
    while ready:
        n = ready.pop(0)
        order.append(n)
        for s in successors.get(n, ()):
            degree[s] -= 1
            if degree[s] == 0:
                ready.append(s)
    if len(order) != len(nodes):
        stuck = sorted(n for n in nodes if n not in order)
        raise NirGraphError(f"the graph has a recurrent edge among {', '.join(stuck[:6])}: "
                            "recurrence is not supported (other than the soft-reset feedback "
                            "of lava-convert's exact encoding)")
    return order


def _chain_to(start: str, predecessors, nodes, index, target: str) -> tuple[int, list[str]]:
    """Walk back from ``start`` through linear nodes to a layer's output or the input:
    (source layer index, the linear nodes in order from the source)."""
    chain, node = [], start
    while node not in index:
        kind = type(nodes[node]).__name__
        if kind not in LINEAR:
            raise NirGraphError(f"node '{node}' ({kind}) feeds '{target}' but is neither a "
                                "linear node nor a layer's output")
        sources = predecessors.get(node, ())
        if len(sources) != 1:
            raise NirGraphError(f"node '{node}' ({kind}) has {len(sources)} inputs; a linear "
                                "node between layers must have exactly one")
        chain.append(node)
        node = sources[0]
    return index[node], chain[::-1]


def _layer(neuron: Neuron, main, skips, nodes, shapes, i: int, layers_nodes,
           cuba_bias: str = "refuse") -> SpikingLayer:
    source, chain = main
    where = f"layer '{neuron.output}'"
    synapse, bias, out_shape = chain_synapse(chain, nodes, source, shapes[source], where)
    skip_synapses = []
    for s_source, s_chain in skips:
        if s_source < 0:
            raise NirGraphError(f"{where}: a shortcut from the Input node; lava-convert "
                                "shortcuts start at a layer's spikes")
        k, k_bias, k_shape = chain_synapse(s_chain, nodes, s_source, shapes[s_source], where)
        if k_shape != out_shape:
            raise NirGraphError(f"{where}: a shortcut gives shape {k_shape}, the main path "
                                f"{out_shape}")
        if synapse.kind == "conv" and k.kind == "conv":
            bias = bias + k_bias
        else:
            bias = np.broadcast_to(_bias_full(synapse, bias, out_shape), out_shape) \
                + _bias_full(k, k_bias, out_shape)
        skip_synapses.append(k)
    if neuron.du < 1.0 and np.any(np.asarray(bias) != 0):
        biased = [c[-1] for c in [chain] + [c for _, c in skips] if c]
        kind = type(nodes[neuron.name]).__name__
        if cuba_bias == "refuse":
            raise NirGraphError(
                f"node '{neuron.name}' ({kind}): the bias of {', '.join(map(repr, biased))} "
                "enters its synaptic current, which rises to it over tau_syn; Lava's LIF "
                "adds a bias to the voltage only. Move the bias into the node's v_leak "
                "(exact), or pass cuba_bias='voltage' (--cuba-bias voltage) to add it to the "
                "voltage from the first step (same steady state, spikes differ at first)")
        log.warning("node '%s' (%s): the bias of %s is added to the voltage from the first "
                    "step (cuba_bias='voltage'), not through the synaptic current",
                    neuron.name, kind, ", ".join(biased))
        # the current would settle at 1/du times one step's input: so much on the voltage
        bias = np.asarray(bias, dtype=np.float64) / neuron.du
    spiking = neuron.threshold is not None
    if not spiking and i != len(layers_nodes) - 1:
        raise NirGraphError(f"{where}: a non-spiking node ({type(nodes[neuron.name]).__name__})"
                            " before the last layer; lava-convert reads it only as the readout")
    if spiking and neuron.reset is None:
        kind = type(nodes[neuron.name]).__name__
        raise NirGraphError(f"node '{neuron.name}' ({kind}): NIR says reset to v_reset, but "
                            "producers differ (snnTorch's Leaky subtracts the threshold, "
                            "Norse resets to zero): pass reset='soft' or reset='hard'")
    # per-neuron factors: the gain, and for spiking layers threshold_j -> one threshold
    size = int(np.prod(out_shape))
    gain = _per_neuron_values(neuron.gain, out_shape, neuron.name, "gains")
    leak_bias = _per_neuron_values(neuron.bias if neuron.bias.size else np.zeros(1),
                                   out_shape, neuron.name, "leak potentials")
    threshold = 0.0
    factor = np.ones(out_shape)
    if spiking:
        th = _per_neuron_values(neuron.threshold, out_shape, neuron.output, "thresholds")
        if np.any(th <= 0):
            raise NirGraphError(f"{where}: thresholds must be positive")
        threshold = float(np.max(th))
        factor = threshold / th
    scale = gain * factor  # multiplies the synaptic input
    if synapse.kind == "conv":
        per_channel = scale.reshape(out_shape[0], -1)
        if not np.allclose(per_channel, per_channel[:, :1]):
            raise NirGraphError(f"{where}: gains or thresholds differ within a channel of a "
                                "convolution; lava-convert needs one per channel there")
        column = per_channel[:, 0]
        synapse = _scaled(synapse, column)
        skip_synapses = [_scaled(k, column if k.kind == "conv" else scale.reshape(-1))
                         for k in skip_synapses]
        full_bias = _bias_full(synapse, bias, out_shape) * scale + leak_bias * factor
        bias_out = full_bias[:, 0, 0].copy() if np.allclose(
            full_bias, full_bias[:, :1, :1]) else full_bias
    else:
        flat = scale.reshape(-1)
        synapse = _scaled(synapse, flat)
        skip_synapses = [_scaled(k, flat) for k in skip_synapses]
        bias_out = (np.broadcast_to(bias, out_shape) * scale + leak_bias * factor).reshape(size)
    return SpikingLayer(
        name=meta_value(nodes[neuron.name], "layer") or neuron.output, synapse=synapse,
        bias=np.asarray(bias_out, dtype=np.float64),
        threshold=threshold, spiking=spiking, reset=neuron.reset or "soft",
        v0=_start(neuron, factor, synapse.kind, tuple(out_shape), where),
        threshold_source="NIR", out_shape=tuple(out_shape),
        skips=tuple(skip_synapses), du=neuron.du, dv=neuron.dv)


def _per_neuron_values(values: np.ndarray, out_shape: tuple[int, ...], node: str,
                       what: str) -> np.ndarray:
    """A neuron node's parameter as one value per neuron of the layer's ``out_shape``: one
    value for all, one per neuron in any shape of as many (a conv's output read through a
    composed, flat synapse), or broadcast."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 1:
        return np.full(out_shape, float(values.reshape(-1)[0]))
    if values.size == int(np.prod(out_shape)):
        return values.reshape(out_shape)
    try:
        return np.broadcast_to(values, out_shape)
    except ValueError:
        raise NirGraphError(f"node '{node}': {values.size} {what} for a layer of shape "
                            f"{tuple(out_shape)}; give one, or one per neuron") from None


def _bias_full(synapse: Synapse, bias: np.ndarray, out_shape) -> np.ndarray:
    bias = np.asarray(bias, dtype=np.float64)
    if synapse.kind == "conv" and bias.shape == (out_shape[0],):
        return np.broadcast_to(bias[:, None, None], out_shape)
    return np.broadcast_to(bias.reshape(out_shape) if bias.size == np.prod(out_shape)
                           else bias, out_shape)


def _scaled(synapse: Synapse, rows: np.ndarray) -> Synapse:
    """``synapse`` with each output (row, or output channel of a conv) multiplied."""
    weight = np.asarray(synapse.weight, dtype=np.float64)
    if synapse.kind == "conv":
        weight = weight * np.asarray(rows).reshape(-1, 1, 1, 1)
    else:
        weight = weight * np.asarray(rows).reshape(-1, 1)
    return Synapse(synapse.kind, weight, synapse.source, synapse.geometry)


def _start(neuron: Neuron, factor: np.ndarray, kind: str, out_shape: tuple[int, ...],
           where: str) -> float | np.ndarray:
    """The layer's ``v0``: the metadata's and the soft-reset pattern's threshold offset
    (:class:`~lava_convert.nir.neurons.Neuron`), in units of the layer's one threshold
    (times ``factor``, as the inputs are), as one value or one per channel of a conv
    layer / neuron of a dense layer."""
    v0 = _v0_fits(neuron.v0, kind, out_shape, where)
    if neuron.offset is None and np.all(factor == 1):
        return v0
    start = per_neuron(v0, kind, out_shape)
    if neuron.offset is not None:
        offset = _per_neuron_values(neuron.offset, out_shape, neuron.output, "thresholds")
        if not neuron.v0_in_offset:
            start = start + offset
        elif not np.allclose(start, offset, rtol=1e-9, atol=1e-12):
            raise NirGraphError(f"{where}: metadata v0 disagrees with the threshold offset of "
                                f"node '{neuron.output}' (threshold - v0); re-export the graph")
    start = start * factor
    flat = start.reshape(-1)
    if np.all(flat == flat[0]):
        return float(flat[0])
    if kind == "conv":
        per_channel = start.reshape(out_shape[0], -1)
        if not np.all(per_channel == per_channel[:, :1]):
            raise NirGraphError(f"{where}: the initial potential differs within a channel of "
                                "a convolution; Lava holds one per channel there")
        return per_channel[:, 0].copy()
    return flat.copy()


def _v0_fits(v0: float | np.ndarray, kind: str, out_shape, where: str) -> float | np.ndarray:
    """A per-neuron ``v0`` from the metadata, checked against the layer: one value per
    channel of a conv layer, one per neuron of a dense layer."""
    if np.ndim(v0) == 0:
        return v0
    n = setting_size(kind, tuple(out_shape))
    if v0.shape != (n,):
        raise NirGraphError(f"{where}: metadata v0 has {v0.size} values; this {kind} layer "
                            f"of shape {tuple(out_shape)} takes one or {n}; re-export the graph")
    return v0
