"""Reading one NetX layer: its neurons, synapses (main and shortcut) and bias."""

from __future__ import annotations

import dataclasses

import h5py
import numpy as np

from ..hw.loihi import (
    BIAS_EXP,
    BIAS_EXP_MAX,
    DECAY_UNITY,
    NETX_INTEGRATOR_VTH,
    SDNN_BIAS_MAX,
    SDNN_VTH_MAX,
    V_MAX,
    VTH_MAX,
    WEIGHT_HARD_MAX,
    lava_decays,
)
from ..ir import ConvGeometry, FixedLayer, Synapse, setting_size, skip_delays
from .fields import FieldReader, check_range, read_pair

#: What NetX builds for a dense layer without a ``neuron`` group (an integrator).
NETX_DEFAULT_NEURON = {"vThMant": NETX_INTEGRATOR_VTH, "iDecay": 0, "vDecay": DECAY_UNITY}


def read_neuron(r: FieldReader, g: h5py.Group, kind: str, shape: tuple[int, ...]) -> dict:
    """The neuron settings of a layer (NetX's dense default if a dense layer has none)."""
    if "neuron" in g:
        neuron = g["neuron"]
        ntype = r.string(neuron, "type")
        if ntype == "SDNN":
            return _read_sigma_delta(r, neuron)
        if ntype not in ("LOIHI", "CUBA"):
            raise r.fail(f"{neuron.name}/type", f"neuron type {ntype!r} is not supported",
                         "lava-convert simulates CUBA/LOIHI (LIF) and SDNN (sigma-delta) "
                         "neurons")
        vth, i_decay = r.integer(neuron, "vThMant"), r.integer(neuron, "iDecay")
        v_decay = r.integer(neuron, "vDecay")
        reset = r.string(neuron, "resetMode") if "resetMode" in neuron else "hard"
        bias_exp = r.integer(neuron, "biasExp") if "biasExp" in neuron else BIAS_EXP
        spiking = bool(r.integer(neuron, "spiking")) if "spiking" in neuron else True
        v0 = _read_v0(r, neuron, kind, shape) if "v0" in neuron else 0
    elif kind == "dense":
        vth, i_decay, v_decay = (NETX_DEFAULT_NEURON[k] for k in ("vThMant", "iDecay", "vDecay"))
        reset, spiking, v0, bias_exp = "hard", True, 0, BIAS_EXP
    else:
        raise r.fail(f"{g.name}/neuron", "missing", "re-export the file")
    if reset not in ("soft", "hard"):
        raise r.fail(f"{g.name}/neuron/resetMode", f"unknown mode {reset!r}",
                     "use 'soft' or 'hard'")
    check_range(r, f"{g.name}/neuron/vThMant", vth, 0, VTH_MAX + 1, "threshold mantissa")
    check_range(r, f"{g.name}/neuron/iDecay", i_decay, 0, DECAY_UNITY, "current decay")
    check_range(r, f"{g.name}/neuron/vDecay", v_decay, 0, DECAY_UNITY, "voltage decay")
    check_range(r, f"{g.name}/neuron/v0", v0, -V_MAX, V_MAX, "initial potential")
    check_range(r, f"{g.name}/neuron/biasExp", bias_exp, BIAS_EXP, BIAS_EXP_MAX,
                 "bias exponent")
    du, dv = lava_decays(i_decay, v_decay)
    return dict(vth=vth, du=du, dv=dv, reset=reset, spiking=spiking, v0=v0, bias_exp=bias_exp)


def _read_sigma_delta(r: FieldReader, neuron: h5py.Group) -> dict:
    """An ``SDNN`` neuron group as stock NetX builds it: ``Delta`` (an input layer),
    ``Sigma`` (with ``sigma_output``: ``spiking`` false) or ``SigmaDelta`` with ReLU
    (stock ignores ``activation``); ``vThMant`` is the delta threshold. A ``messageBits``
    of 0 would make stock's next synapse read the graded messages as binary spikes, so it
    is refused."""
    vth = r.integer(neuron, "vThMant")
    check_range(r, f"{neuron.name}/vThMant", vth, 0, SDNN_VTH_MAX, "delta threshold mantissa")
    if "messageBits" in neuron and r.integer(neuron, "messageBits") == 0:
        raise r.fail(f"{neuron.name}/messageBits", "0 (binary spikes) for sigma-delta "
                     "neurons, whose messages are graded", "remove the key (stock's default "
                     "is 16 bits) or set the bits the messages need")
    sigma = "sigma_output" in neuron
    if sigma and "bias" in neuron.parent:
        raise r.fail(f"{neuron.parent.name}/bias", "a bias on a sigma-delta output layer "
                     "(sigma_output), which Lava's Sigma cannot take (stock NetX fails to "
                     "build it)", "remove the bias, or the layer's sigma_output")
    return dict(vth=vth, spiking=not sigma, neuron="sdnn")


def _read_v0(r: FieldReader, neuron: h5py.Group, kind: str,
             shape: tuple[int, ...]) -> int | np.ndarray:
    """``neuron/v0``: one initial potential for the layer, or one per neuron (per channel
    of a conv layer), as the bias."""
    if np.ndim(r.get(neuron, "v0")) == 0:
        return r.integer(neuron, "v0")
    return r.ints(neuron, "v0", (setting_size(kind, shape),))


def read_synapse(r: FieldReader, g: h5py.Group, kind: str, in_shape: tuple[int, ...],
                  shape: tuple[int, ...]) -> Synapse:
    """The weight (and conv settings) in group ``g`` connecting ``in_shape`` to ``shape``,
    as a :class:`Synapse` without source (the caller places it)."""
    if kind == "dense":
        weight = r.ints(g, "weight", (int(np.prod(shape)), int(np.prod(in_shape))))
        check_range(r, f"{g.name}/weight", weight, -WEIGHT_HARD_MAX, WEIGHT_HARD_MAX, "weights")
        return Synapse(kind, weight)
    w = np.asarray(r.get(g, "weight"))
    w = w.reshape(w.shape[:4]) if w.ndim == 5 and w.shape[4] == 1 else w
    groups = r.integer(g, "groups") if "groups" in g else 1
    if len(in_shape) != 3 or groups < 1 or in_shape[0] % groups or shape[0] % groups:
        raise r.fail(f"{g.name}/groups", f"{groups} groups do not divide the input "
                     f"{in_shape} and output {shape} channels", "the file is corrupt")
    if len(shape) != 3 or w.ndim != 4 or w.shape[:2] != (shape[0], in_shape[0] // groups):
        raise r.fail(f"{g.name}/weight", f"conv weight {w.shape} does not connect input "
                     f"{in_shape} to output {shape}", "the file is corrupt; re-export it")
    if 0 in w.shape:
        raise r.fail(f"{g.name}/weight", f"empty kernel {w.shape}", "the file is corrupt")
    weight = r.ints(g, "weight", np.asarray(r.get(g, "weight")).shape).reshape(w.shape)
    check_range(r, f"{g.name}/weight", weight, -WEIGHT_HARD_MAX, WEIGHT_HARD_MAX, "weights")
    geometry = ConvGeometry(stride=read_pair(r, g, "stride", 1, 1),
                            padding=read_pair(r, g, "padding", 0, 0),
                            dilation=read_pair(r, g, "dilation", 1, 1), groups=int(groups))
    extent = [geometry.dilation[d] * (w.shape[2 + d] - 1) + 1 for d in range(2)]
    if any(geometry.padding[d] >= extent[d] for d in range(2)):
        # rows of padding beyond the kernel's reach make outputs that see only zeros: no
        # network needs them, and a hostile file asks for millions
        raise r.fail(f"{g.name}/padding", f"padding {geometry.padding} reaches beyond the "
                     f"kernel's extent {tuple(extent)}", "the file is corrupt; re-export it")
    expected = (shape[0],) + tuple(
        (in_shape[1 + d] + 2 * geometry.padding[d] - geometry.dilation[d] * (w.shape[2 + d] - 1)
         - 1) // geometry.stride[d] + 1 for d in range(2))
    if expected != shape:
        raise r.fail(g.name, f"declared output {shape} but input {in_shape} with this "
                     f"kernel, stride, padding and dilation gives {expected}",
                     "the file is corrupt; re-export it")
    return Synapse(kind, weight, geometry=geometry)


def read_bias(r: FieldReader, g: h5py.Group, kind: str, shape: tuple[int, ...]) -> np.ndarray:
    n = setting_size(kind, shape)
    bias = r.ints(g, "bias", (n,)) if "bias" in g else np.zeros(n, np.int64)
    sdnn = "neuron" in g and "type" in g["neuron"] and r.string(g["neuron"], "type") == "SDNN"
    top = SDNN_BIAS_MAX if sdnn else V_MAX >> BIAS_EXP
    check_range(r, f"{g.name}/bias", bias, -top, top, "bias mantissas")
    return bias


def make_layer(r: FieldReader, g: h5py.Group, kind: str, shape, synapse: Synapse | None, bias,
           scale: float, skips=()) -> FixedLayer:
    neuron = read_neuron(r, g, kind, shape)
    return FixedLayer(
        name=r.string(g, "name") if "name" in g else g.name.rsplit("/", 1)[-1],
        kind=kind, shape=shape, synapse=synapse, bias=bias, scale=scale,
        skips=tuple(skips), **neuron)


def _refuse_axonal_delays(r: FieldReader, g: h5py.Group) -> None:
    """A plain layer's axonal delays (a non-zero ``delay`` beside its weight, as SLAYER
    writes them) are refused: the simulators here would run the synapse without them and
    give other spikes. (A multi-input layer's ``inputs/j/delay`` are its shortcuts' delay
    lines, checked by :func:`read_multi_input`.)"""
    if "delay" in g:
        delay = np.asarray(r.get(g, "delay"))
        if not np.issubdtype(delay.dtype, np.number) or np.any(delay != 0):
            raise r.fail(f"{g.name}/delay", "axonal delays are not supported yet (the "
                         "synapse would run without them and give other spikes)",
                         "run the file with stock netx.hdf5.Network, or retrain without "
                         "delays")


def read_layer(r: FieldReader, g: h5py.Group, kind: str, in_shape: tuple[int, ...],
                scale: float, source: int) -> FixedLayer:
    shape = r.shape(g, "shape")
    if kind == "input":  # NetX: no synapse, no neuron bias
        return make_layer(r, g, kind, shape, None, np.zeros(shape, np.int64), scale)
    _refuse_axonal_delays(r, g)
    synapse = read_synapse(r, g, kind, tuple(in_shape), shape)
    return make_layer(r, g, kind, shape, dataclasses.replace(synapse, source=source),
                  read_bias(r, g, kind, shape), scale)


def read_multi_input(r: FieldReader, g: h5py.Group, sources: dict[int, int],
                      layers: list[FixedLayer], scale: float,
                      in_shape: tuple[int, ...] | None) -> FixedLayer:
    """A multi-input layer: ``inputs/j`` synapses from earlier layers (``sources`` maps
    a /layer index to a layer position, -1 for the network input of shape
    ``in_shape``); the one from the previous layer (or, for the first layer, from the
    input) is its main synapse, the others become shortcuts. Recorded delays must match
    the graph's."""
    shape = r.shape(g, "shape")
    if "inputs" not in g or not isinstance(g["inputs"], h5py.Group) or not len(g["inputs"]):
        raise r.fail(f"{g.name}/inputs", "missing", "a 'concat' layer lists its synapses "
                     "under inputs/0..n-1; re-export the file")
    inputs = g["inputs"]
    keys = sorted(inputs.keys())
    if keys != sorted(str(j) for j in range(len(keys))):
        raise r.fail(f"{inputs.name}", f"input groups {keys} are not 0..n-1",
                     "the file is corrupt; re-export it")
    main, skips, delays = None, [], []
    for j in range(len(keys)):
        sg = inputs[str(j)]
        kind = r.string(sg, "type")
        if kind not in ("dense", "conv"):
            raise r.fail(f"{sg.name}/type", f"synapse type {kind!r} is not supported",
                         "use 'dense' or 'conv'")
        source = r.integer(sg, "source")
        if source not in sources:
            raise r.fail(f"{sg.name}/source", f"{source} is not an earlier layer with "
                         f"neurons (those are {sorted(sources)})", "the file is corrupt; "
                         "re-export it")
        index = sources[source]
        if index < 0 and (layers or in_shape is None):
            raise r.fail(f"{sg.name}/source", "a shortcut from the network input",
                         "shortcuts come from layers with neurons; re-export the file")
        synapse = read_synapse(r, sg, kind, in_shape if index < 0 else layers[index].shape,
                                shape)
        if index == len(layers) - 1 and main is None:
            main = dataclasses.replace(synapse, source=index)
        else:
            skips.append(dataclasses.replace(synapse, source=index))
            delays.append((sg, r.integer(sg, "delay") if "delay" in sg else None))
    if main is None:
        raise r.fail(f"{inputs.name}", "no input reads the layer just before it",
                     "the main path must come from the previous layer; re-export the file")
    layer = make_layer(r, g, main.kind, shape, main, read_bias(r, g, main.kind, shape), scale,
                   skips)
    needed = skip_delays(layers + [layer])[-1]
    for (sg, delay), want in zip(delays, needed):
        if delay is not None and delay != want:
            raise r.fail(f"{sg.name}/delay", f"{delay} steps, but the paths into this layer "
                         f"need {want} to arrive on the same step", "the file is corrupt; "
                         "re-export it")
    return layer
