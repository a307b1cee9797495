"""Read and write NetX HDF5 files (the format of ``lava.lib.dl.netx.hdf5.Network``).

Layout written (all plain datasets, as NetX expects)::

    /layer/0/{type="input", shape}                        input shape (C,H,W order)
    /layer/i/{type="dense"|"conv", shape, weight, bias, name,
              [stride, padding, dilation, groups],          conv only, (H,W) pairs
              neuron/{type="LOIHI", vThMant, iDecay, vDecay, refDelay=1, gradedSpike=0,
                      resetMode="soft"|"hard", spiking=0|1, v0}}
    /layer/i/{type="flatten"}                             before a dense after a 3-D layer
    /lava_convert/                                        our metadata (attributes)

Extensions that stock NetX ignores: ``neuron/resetMode`` (stock NetX builds
Lava's hard-reset LIF), ``neuron/v0`` (membrane potential at each sample's
start, Lava units; stock NetX starts at 0), ``neuron/spiking`` (0 marks the integrating readout
layer), ``layer/i/name`` (module path in the source model) and the
``/lava_convert`` group (format version, input quantization, time steps,
per-layer report).

Residual networks (multi-input layers). A layer whose neurons sum several
synapses (a residual add) is written with NetX's reserved multi-input type::

    /layer/i/{type="concat", name, shape, bias, neuron/{...},
              inputs/j/{type="dense"|"conv", source, delay, weight,
                        [stride, padding, dilation, groups]}}

``source`` is the /layer index of the layer whose spikes synapse ``j`` reads
(one of them is the layer just before, the main path; the others are
shortcuts; a dense synapse from a 3-D layer reads it flattened in C,H,W
order), and the currents of all synapses add at the neurons. ``delay`` is the
number of extra time steps a synapse holds its spikes so that every path
arrives on the same step: every synapse delays by one step in Lava, so a
shortcut from layer ``s`` into layer ``t`` needs ``depth(t) - depth(s) - 1``
where depth counts synapses along the main path (0 for the main synapse, 1
across a basic ResNet block). The reader checks it against the graph. Stock
``netx.hdf5.Network`` refuses such a file with ``NotImplementedError: concat
is not implemented.`` at the first residual layer instead of loading a network
without its shortcuts; files without residual layers stay plain NetX (format
version 1), files with them are format version 2.

The reader also takes plain NetX files (input, dense, conv
and flatten layers with CUBA/LOIHI neurons). Files are written to a temporary
file in the same directory and renamed into place, so an interrupted export
never leaves a half-written file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path

import h5py
import numpy as np

from .errors import ConfigError, NetXFormatError
from .ir import LAYER_KINDS, ConvGeometry, FixedLayer, FixedNetwork, Skip, skip_delays
from .neuron import BIAS_EXP, DECAY_UNITY, V_MAX

#: Version 2 adds multi-input layers; files without them are still written as version 1.
FORMAT_VERSION = 2
META_GROUP = "lava_convert"
#: NetX's reserved type for a layer with several inputs; stock NetX refuses it.
MULTI_INPUT = "concat"
#: Largest layer the reader accepts (neurons); guards against corrupt shapes.
MAX_NEURONS = 2**24
#: Largest integer weight magnitude the reader accepts (Lava: 8-bit mantissa, exponent <= 7).
MAX_WEIGHT = 2**15


def _bytes(handle: h5py.Group, key: str, value: str) -> None:
    handle.create_dataset(key, (1,), f"S{max(len(value), 1)}", [value.encode("ascii")])


def atomic_write(path: str | os.PathLike, write) -> Path:
    """Call ``write(tmp_path)`` and rename the result onto ``path`` (same directory)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _compact(a: np.ndarray) -> np.ndarray:
    """The smallest signed integer type that holds ``a`` (NetX casts to int on load)."""
    a = np.asarray(a, dtype=np.int64)
    for dtype in (np.int16, np.int32):
        info = np.iinfo(dtype)
        if a.size == 0 or (a.min() >= info.min and a.max() <= info.max):
            return a.astype(dtype)
    return a


def stock_netx_notes(net: FixedNetwork) -> list[str]:
    """How stock ``netx.hdf5.Network`` treats ``net``: it loads every file without
    residual layers but ignores our extensions (each note says which layers that
    changes), and refuses files with residual layers."""
    residual = [l.name for l in net.layers if l.skips]
    if residual:
        return [f"layers {residual} add residual shortcuts and are written as multi-input "
                f"'{MULTI_INPUT}' layers: stock NetX refuses the file (NotImplementedError: "
                f"{MULTI_INPUT} is not implemented.); run it with lava_convert.run_lava or "
                "`lava-convert run`"]
    notes = []
    soft = [l.name for l in net.layers if l.reset == "soft" and l.spiking]
    if soft:
        notes.append(f"layers {soft}: soft reset is ignored; stock NetX resets to 0 (use "
                     "lava_convert.run_lava for the converted behaviour)")
    v0 = [l.name for l in net.layers if l.v0]
    if v0:
        notes.append(f"layers {v0}: the initial potential v0 is ignored (starts at 0)")
    readout = [l.name for l in net.layers if not l.spiking]
    if readout:
        notes.append(f"layers {readout}: the integrating readout runs as a spiking LIF with "
                     "its (unreachable) threshold; read its potential, not its spikes")
    notes.append("stock NetX keeps neuron state from one sample to the next; lava-convert "
                 "resets it at each sample's first step")
    return notes


def _write_synapse(g: h5py.Group, synapse) -> None:
    """Weight (and conv settings) of a layer's synapse or of a shortcut (:class:`Skip`)."""
    g.create_dataset("weight", data=_compact(synapse.weight))
    if synapse.kind == "conv":
        for key in ("stride", "padding", "dilation"):
            g.create_dataset(key, data=np.asarray(getattr(synapse, key), dtype=np.int64))
        g.create_dataset("groups", data=np.int64(synapse.groups))


def _write_layer(g: h5py.Group, layer: FixedLayer, groups: list[int], delays: list[int]) -> None:
    """One layer; with shortcuts, the multi-input form (``groups``: the /layer index of
    the input and of every layer so far, ``delays``: each shortcut's extra delay)."""
    _bytes(g, "type", MULTI_INPUT if layer.skips else layer.kind)
    _bytes(g, "name", layer.name)
    g.create_dataset("shape", data=np.asarray(layer.shape, dtype=np.int64))
    if layer.skips:
        inputs = g.create_group("inputs")
        main = inputs.create_group("0")
        _bytes(main, "type", layer.kind)
        main.create_dataset("source", data=np.int64(groups[-1]))
        main.create_dataset("delay", data=np.int64(0))
        _write_synapse(main, layer)
        for j, (skip, delay) in enumerate(zip(layer.skips, delays), start=1):
            k = inputs.create_group(str(j))
            _bytes(k, "type", skip.kind)
            k.create_dataset("source", data=np.int64(groups[skip.source + 1]))
            k.create_dataset("delay", data=np.int64(delay))
            _write_synapse(k, skip)
    elif layer.weight is not None:
        _write_synapse(g, layer)
    g.create_dataset("bias", data=_compact(layer.bias))
    n = g.create_group("neuron")
    _bytes(n, "type", "LOIHI")
    n.create_dataset("vThMant", data=np.int64(layer.vth))
    n.create_dataset("iDecay", data=np.int64(layer.du + 1))
    n.create_dataset("vDecay", data=np.int64(layer.dv))
    n.create_dataset("refDelay", data=np.int64(1))
    n.create_dataset("gradedSpike", data=np.int64(0))
    _bytes(n, "resetMode", layer.reset)
    n.create_dataset("spiking", data=np.int64(int(layer.spiking)))
    n.create_dataset("v0", data=np.int64(layer.v0))


def write_json(path: str | os.PathLike, data) -> Path:
    """Write ``data`` as indented JSON at ``path`` (atomically)."""
    text = json.dumps(data, indent=2) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def write_netx(net: FixedNetwork, path: str | os.PathLike, *, package_version: str = "") -> Path:
    """Write ``net`` as a NetX HDF5 file at ``path`` (atomically)."""

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            meta = f.create_group(META_GROUP)
            meta.attrs.update(
                format_version=FORMAT_VERSION if net.is_residual else 1,
                package_version=package_version,
                input_scale=net.input_scale, input_bits=net.input_bits,
                input_signed=int(net.input_signed), timesteps=net.timesteps,
                input_shape=np.asarray(net.input_shape, dtype=np.int64),
                meta_json=json.dumps(net.meta),
            )
            layers = f.create_group("layer")
            g = layers.create_group("0")
            _bytes(g, "type", "input")
            g.create_dataset("shape", data=np.asarray(net.input_shape, dtype=np.int64))
            index, previous, groups = 1, tuple(net.input_shape), [0]
            for layer, delays in zip(net.layers, skip_delays(net.layers)):
                if layer.kind == "dense" and len(previous) > 1 and not layer.skips:
                    _bytes(layers.create_group(str(index)), "type", "flatten")
                    index += 1
                _write_layer(layers.create_group(str(index)), layer, groups, delays)
                groups.append(index)
                index, previous = index + 1, tuple(layer.shape)

    return atomic_write(path, write)


class _Reader:
    """Typed access to one file with errors that name the file and key."""

    def __init__(self, path: Path, f: h5py.File) -> None:
        self.path, self.f = path, f

    def fail(self, key: str, problem: str, fix: str) -> NetXFormatError:
        return NetXFormatError(f"{self.path}: {key}: {problem}; {fix}")

    def get(self, group: h5py.Group, key: str):
        full = f"{group.name.rstrip('/')}/{key}"
        if key not in group:
            raise self.fail(full, "missing", "the file is incomplete or not a NetX network; "
                            "re-export it")
        try:
            return group[key][()]
        except Exception as exc:  # h5py raises OSError/KeyError/... on corrupt data
            raise self.fail(full, f"unreadable ({exc})",
                            "the file is corrupt; re-export it") from exc

    def string(self, group: h5py.Group, key: str) -> str:
        value = self.get(group, key)
        value = value.reshape(-1)[0] if np.ndim(value) and np.size(value) else value
        try:
            return value.decode("ascii") if isinstance(value, bytes) else str(value)
        except UnicodeDecodeError as exc:
            raise self.fail(f"{group.name}/{key}", "not ASCII text",
                            "the file is corrupt; re-export it") from exc

    def integer(self, group: h5py.Group, key: str) -> int:
        value = np.asarray(self.get(group, key))
        if value.size != 1 or not np.issubdtype(value.dtype, np.number):
            raise self.fail(f"{group.name}/{key}", f"expected one number, found {value!r}",
                            "the file is corrupt; re-export it")
        return int(value.reshape(-1)[0])

    def shape(self, group: h5py.Group, key: str) -> tuple[int, ...]:
        """A layer shape: 1 to 3 positive sizes, at most ``MAX_NEURONS`` neurons in all."""
        value = np.asarray(self.get(group, key)).reshape(-1)
        if not np.issubdtype(value.dtype, np.number) or not 1 <= value.size <= 3 \
                or not np.all(np.isfinite(value)) or np.any(value != np.rint(value)) \
                or np.any(value < 1) or np.prod(value, dtype=np.float64) > MAX_NEURONS:
            raise self.fail(f"{group.name}/{key}", f"expected 1 to 3 positive sizes with at "
                            f"most {MAX_NEURONS} neurons, found {value!r}",
                            "the file is corrupt; re-export it")
        return tuple(int(v) for v in value)

    def ints(self, group: h5py.Group, key: str, shape: tuple[int, ...]) -> np.ndarray:
        value = np.asarray(self.get(group, key))
        if value.shape != shape or not np.issubdtype(value.dtype, np.number):
            raise self.fail(f"{group.name}/{key}", f"expected numbers of shape {shape}, found "
                            f"{value.dtype} {value.shape}", "the file is corrupt; re-export it")
        if not np.all(np.isfinite(value)) or np.any(value != np.rint(value)):
            raise self.fail(f"{group.name}/{key}", "non-integer values",
                            "NetX stores integers; re-export the file")
        return value.astype(np.int64)


#: What NetX builds for a dense layer without a ``neuron`` group (an integrator).
_NETX_DEFAULT_NEURON = {"vThMant": 1 << 17, "iDecay": 0, "vDecay": 4096}


def _pair(r: _Reader, g: h5py.Group, key: str, default: int, low: int) -> tuple[int, int]:
    """A conv (H, W) setting (one value for both, or two), each at least ``low``."""
    if key not in g:
        return (default, default)
    v = np.asarray(r.get(g, key)).reshape(-1)
    if v.size not in (1, 2) or not np.issubdtype(v.dtype, np.number) \
            or not np.all(np.isfinite(v)) or np.any(v != np.rint(v)) or np.any(v < low) \
            or np.any(v > 2**16):
        raise r.fail(f"{g.name}/{key}", f"expected one or two whole numbers >= {low}, found "
                     f"{v.tolist()}", "the file is corrupt; re-export it")
    return (int(v[0]), int(v[-1]))


def _check_range(r: _Reader, key: str, values, low: int, high: int, what: str) -> None:
    values = np.asarray(values)
    if values.size and (values.min() < low or values.max() > high):
        raise r.fail(key, f"{what} {values.min()}..{values.max()} lies outside "
                     f"{low}..{high}, which Lava cannot represent", "re-export the file")


def _read_neuron(r: _Reader, g: h5py.Group, kind: str) -> dict:
    """The neuron settings of a layer (NetX's dense default if a dense layer has none)."""
    if "neuron" in g:
        neuron = g["neuron"]
        ntype = r.string(neuron, "type")
        if ntype not in ("LOIHI", "CUBA"):
            raise r.fail(f"{neuron.name}/type", f"neuron type {ntype!r} is not supported",
                         "lava-convert simulates CUBA/LOIHI (LIF) neurons")
        vth, i_decay = r.integer(neuron, "vThMant"), r.integer(neuron, "iDecay")
        v_decay = r.integer(neuron, "vDecay")
        reset = r.string(neuron, "resetMode") if "resetMode" in neuron else "hard"
        spiking = bool(r.integer(neuron, "spiking")) if "spiking" in neuron else True
        v0 = r.integer(neuron, "v0") if "v0" in neuron else 0
    elif kind == "dense":
        vth, i_decay, v_decay = (_NETX_DEFAULT_NEURON[k] for k in ("vThMant", "iDecay", "vDecay"))
        reset, spiking, v0 = "hard", True, 0
    else:
        raise r.fail(f"{g.name}/neuron", "missing", "re-export the file")
    if reset not in ("soft", "hard"):
        raise r.fail(f"{g.name}/neuron/resetMode", f"unknown mode {reset!r}",
                     "use 'soft' or 'hard'")
    _check_range(r, f"{g.name}/neuron/vThMant", vth, 0, 2**17, "threshold mantissa")
    _check_range(r, f"{g.name}/neuron/iDecay", i_decay, 0, DECAY_UNITY, "current decay")
    _check_range(r, f"{g.name}/neuron/vDecay", v_decay, 0, DECAY_UNITY, "voltage decay")
    _check_range(r, f"{g.name}/neuron/v0", v0, -V_MAX, V_MAX, "initial potential")
    return dict(vth=vth, du=i_decay - 1, dv=v_decay, reset=reset, spiking=spiking, v0=v0)


def _read_synapse(r: _Reader, g: h5py.Group, kind: str, in_shape: tuple[int, ...],
                  shape: tuple[int, ...]) -> Skip:
    """The weight (and conv settings) in group ``g`` connecting ``in_shape`` to ``shape``,
    as a :class:`Skip` without source (the caller places it)."""
    if kind == "dense":
        weight = r.ints(g, "weight", (int(np.prod(shape)), int(np.prod(in_shape))))
        _check_range(r, f"{g.name}/weight", weight, -MAX_WEIGHT, MAX_WEIGHT, "weights")
        return Skip(source=-1, kind=kind, weight=weight)
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
    _check_range(r, f"{g.name}/weight", weight, -MAX_WEIGHT, MAX_WEIGHT, "weights")
    geometry = ConvGeometry(stride=_pair(r, g, "stride", 1, 1),
                            padding=_pair(r, g, "padding", 0, 0),
                            dilation=_pair(r, g, "dilation", 1, 1), groups=int(groups))
    expected = (shape[0],) + tuple(
        (in_shape[1 + d] + 2 * geometry.padding[d] - geometry.dilation[d] * (w.shape[2 + d] - 1)
         - 1) // geometry.stride[d] + 1 for d in range(2))
    if expected != shape:
        raise r.fail(g.name, f"declared output {shape} but input {in_shape} with this "
                     f"kernel, stride, padding and dilation gives {expected}",
                     "the file is corrupt; re-export it")
    return Skip(source=-1, kind=kind, weight=weight, conv=geometry)


def _read_bias(r: _Reader, g: h5py.Group, kind: str, shape: tuple[int, ...]) -> np.ndarray:
    n = shape[0] if kind == "conv" else int(np.prod(shape))
    bias = r.ints(g, "bias", (n,)) if "bias" in g else np.zeros(n, np.int64)
    _check_range(r, f"{g.name}/bias", bias, -(V_MAX >> BIAS_EXP), V_MAX >> BIAS_EXP,
                 "bias mantissas")
    return bias


def _layer(r: _Reader, g: h5py.Group, kind: str, shape, synapse: Skip | None, bias,
           scale: float, skips=()) -> FixedLayer:
    conv = synapse.conv if synapse is not None else ConvGeometry()
    return FixedLayer(
        name=r.string(g, "name") if "name" in g else g.name.rsplit("/", 1)[-1],
        kind=kind, shape=shape, weight=None if synapse is None else synapse.weight, bias=bias,
        bias_exp=BIAS_EXP, scale=scale, stride=conv.stride, padding=conv.padding,
        dilation=conv.dilation, groups=conv.groups, skips=tuple(skips),
        **_read_neuron(r, g, kind))


def _read_layer(r: _Reader, g: h5py.Group, kind: str, in_shape: tuple[int, ...],
                scale: float) -> FixedLayer:
    shape = r.shape(g, "shape")
    if kind == "input":  # NetX: no synapse, no neuron bias
        return _layer(r, g, kind, shape, None, np.zeros(shape, np.int64), scale)
    return _layer(r, g, kind, shape, _read_synapse(r, g, kind, tuple(in_shape), shape),
                  _read_bias(r, g, kind, shape), scale)


def _read_multi_input(r: _Reader, g: h5py.Group, sources: dict[int, int],
                      layers: list[FixedLayer], scale: float) -> FixedLayer:
    """A multi-input layer: ``inputs/j`` synapses from earlier layers (``sources`` maps
    a /layer index to a layer position); the one from the previous layer is its main
    synapse, the others become shortcuts. Recorded delays must match the graph's."""
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
        synapse = _read_synapse(r, sg, kind, layers[index].shape, shape)
        if index == len(layers) - 1 and main is None:
            main = synapse
        else:
            skips.append(dataclasses.replace(synapse, source=index))
            delays.append((sg, r.integer(sg, "delay") if "delay" in sg else None))
    if main is None:
        raise r.fail(f"{inputs.name}", "no input reads the layer just before it",
                     "the main path must come from the previous layer; re-export the file")
    layer = _layer(r, g, main.kind, shape, main, _read_bias(r, g, main.kind, shape), scale,
                   skips)
    needed = skip_delays(layers + [layer])[-1]
    for (sg, delay), want in zip(delays, needed):
        if delay is not None and delay != want:
            raise r.fail(f"{sg.name}/delay", f"{delay} steps, but the paths into this layer "
                         f"need {want} to arrive on the same step", "the file is corrupt; "
                         "re-export it")
    return layer


def _check_header(r: _Reader, header: dict, meta) -> None:
    """Ranges of the network-wide settings (input quantization, T) and of our metadata."""
    key = f"/{META_GROUP}"
    problems = []
    if not (np.isfinite(header["input_scale"]) and header["input_scale"] > 0):
        problems.append(f"input_scale {header['input_scale']} is not a positive number")
    if not 2 <= header["input_bits"] <= 24:
        problems.append(f"input_bits {header['input_bits']} is outside 2..24")
    if not 0 <= header["timesteps"] < 2**31:
        problems.append(f"timesteps {header['timesteps']} is outside 0..2**31-1")
    shape = header["input_shape"]
    if not 1 <= len(shape) <= 3 or min(shape) < 1 or np.prod(shape, dtype=float) > MAX_NEURONS:
        problems.append(f"input_shape {shape} is not 1 to 3 positive sizes")
    if not isinstance(meta, dict) or not isinstance(meta.get("layers", []), list) or not all(
            isinstance(d, dict) and isinstance(d.get("scale", 1.0), (int, float))
            and d.get("scale", 1.0) > 0 for d in meta.get("layers", [])):
        problems.append("meta_json does not hold a list of layer reports with positive scales")
    if problems:
        raise r.fail(key, "; ".join(problems), "the file is corrupt; re-export it")


def read_netx(path: str | os.PathLike) -> FixedNetwork:
    """Read a NetX HDF5 file into a :class:`FixedNetwork`.

    Reads files written by lava-convert and plain NetX files (input, dense,
    conv and flatten layers with CUBA/LOIHI neurons, as stock NetX loads).

    Raises:
        NetXFormatError: missing, truncated, corrupt, unsupported or too-new
            files, naming the file and the key.
        ConfigError: ``path`` is not a path.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ConfigError(f"read_netx takes the path of a .net file, not a "
                          f"{type(path).__name__}: pass the path that export() returned")
    path = Path(path)
    if not path.is_file():
        raise NetXFormatError(f"{path}: no such file; check the path (exports go to netx_exports/)")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise NetXFormatError(
            f"{path}: not a readable HDF5 file ({exc}); it may be truncated or not a NetX "
            "network: re-export it"
        ) from exc
    with f:
        try:
            return _read(_Reader(path, f))
        except NetXFormatError:
            raise
        except (OSError, KeyError, RuntimeError) as exc:  # h5py on a damaged structure
            raise NetXFormatError(
                f"{path}: damaged HDF5 structure ({type(exc).__name__}: {exc}); the file is "
                "corrupt or truncated: re-export it"
            ) from exc


def _check_name(r: _Reader, i: int, layer: FixedLayer, layers: list[FixedLayer]) -> None:
    if any(layer.name == other.name for other in layers):
        raise r.fail(f"/layer/{i}/name", f"layer name {layer.name!r} is used twice",
                     "give every layer its own name")


def _read(r: _Reader) -> FixedNetwork:
    """Parse an open file (see :func:`read_netx`)."""
    f = r.f
    if "layer" not in f or not isinstance(f["layer"], h5py.Group):
        raise r.fail("/layer", "missing", "the file is not a NetX network")
    group = f["layer"]
    indices = sorted(int(k) for k in group.keys() if k.isdigit())
    if not indices or indices != list(range(len(group))) \
            or not all(isinstance(group[str(i)], h5py.Group) for i in indices):
        raise r.fail("/layer", f"layer groups {sorted(group.keys())} are not 0..n-1",
                     "the file is corrupt or empty; re-export it")
    meta, header = {}, {}
    if META_GROUP in f:
        attrs = f[META_GROUP].attrs
        try:
            version = int(attrs["format_version"])
            header = dict(
                input_scale=float(attrs["input_scale"]), input_bits=int(attrs["input_bits"]),
                input_signed=bool(attrs["input_signed"]), timesteps=int(attrs["timesteps"]),
                input_shape=tuple(int(s) for s in np.asarray(attrs["input_shape"]).ravel()),
            )
            meta = json.loads(attrs.get("meta_json", "{}"))
        except (KeyError, ValueError, TypeError, OverflowError) as exc:
            raise r.fail(f"/{META_GROUP}", f"incomplete metadata ({exc})",
                         "re-export the file") from exc
        if version > FORMAT_VERSION:
            raise r.fail(f"/{META_GROUP}/format_version", f"version {version} is newer than "
                         f"this lava-convert reads ({FORMAT_VERSION})", "upgrade lava-convert")
        _check_header(r, header, meta)
    scales = [d.get("scale", 1.0) for d in meta.get("layers", [])]
    in_shape = header.get("input_shape")
    layers: list[FixedLayer] = []
    sources: dict[int, int] = {}  # /layer index -> position in layers
    for i in indices:
        g = group[str(i)]
        kind = r.string(g, "type")
        if kind == "flatten":
            continue
        if kind == MULTI_INPUT and layers:
            scale = float(scales[len(layers)]) if len(layers) < len(scales) else 1.0
            layer = _read_multi_input(r, g, sources, layers, scale)
            _check_name(r, i, layer, layers)
            sources[i] = len(layers)
            layers.append(layer)
            continue
        if kind == "input" and "neuron" not in g:
            in_shape = r.shape(g, "shape")
            if header and in_shape != header["input_shape"]:
                raise r.fail(f"/layer/{i}/shape", f"input shape {in_shape} differs from "
                             f"/{META_GROUP} input_shape {header['input_shape']}",
                             "the file is corrupt; re-export it")
            continue
        if kind not in LAYER_KINDS:
            raise r.fail(f"/layer/{i}/type", f"layer type {kind!r} is not supported",
                         f"supported: {', '.join(LAYER_KINDS)}, flatten and (lava-convert's "
                         f"multi-input layer) {MULTI_INPUT}")
        if kind == "input":
            in_shape = r.shape(g, "shape")
        elif not layers and in_shape is None:
            if kind == "conv":
                raise r.fail(f"/layer/{i}", "input shape unknown", "add an input layer")
            in_shape = (int(np.asarray(r.get(g, "weight")).shape[-1]),)
        prev = layers[-1].shape if layers else in_shape
        scale = float(scales[len(layers)]) if len(layers) < len(scales) else 1.0
        layer = _read_layer(r, g, kind, tuple(prev), scale)
        _check_name(r, i, layer, layers)
        sources[i] = len(layers)
        layers.append(layer)
    if not layers:
        raise r.fail("/layer", "no layers with neurons", "the file holds no network")
    if not header:  # a plain NetX file: graded 24-bit signed input, T from slayer if any
        tsample = r.integer(f["simulation"], "tSample") if "simulation/tSample" in f else 0
        header = dict(input_scale=1.0, input_bits=24, input_signed=True,
                      timesteps=tsample, input_shape=tuple(in_shape))
        _check_header(r, header, meta)
    return FixedNetwork(layers=tuple(layers), meta=meta, **header)
