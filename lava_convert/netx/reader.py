"""Read a NetX HDF5 file into a :class:`~lava_convert.ir.FixedNetwork`, checking every
key, shape and range (layout: see :mod:`lava_convert.netx.format`)."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import h5py
import numpy as np

from ..errors import ConfigError, NetXFormatError
from ..hw.loihi import (
    BIAS_EXP,
    BIAS_EXP_MAX,
    DECAY_UNITY,
    MAX_MESSAGE_BITS,
    NETX_INTEGRATOR_VTH,
    V_MAX,
    VTH_MAX,
    WEIGHT_HARD_MAX,
    lava_decays,
)
from ..ir import LAYER_KINDS, ConvGeometry, FixedLayer, FixedNetwork, Synapse, skip_delays
from .format import FORMAT_VERSION, META_GROUP, MULTI_INPUT, decode_meta

#: Largest layer the reader accepts (neurons); guards against corrupt shapes.
MAX_NEURONS = 2**24
#: Largest dataset (bytes, as declared) and all datasets together that the reader reads by
#: default; ``read_netx(path, max_bytes=...)`` or the environment variable
#: ``LAVA_CONVERT_NETX_MAX_BYTES`` raise the limit for genuinely large networks.
MAX_BYTES = 256 * 2**20
MAX_BYTES_ENV = "LAVA_CONVERT_NETX_MAX_BYTES"
#: Largest ``meta_json`` attribute (characters).
MAX_META_CHARS = 4 * 2**20
#: Dataset element types a NetX file may hold: integers, floats, booleans, strings.
_DTYPE_KINDS = "iufbSO"


def _max_bytes(max_bytes: int | None) -> int:
    if max_bytes is not None:
        return int(max_bytes)
    env = os.environ.get(MAX_BYTES_ENV)
    if env is None:
        return MAX_BYTES
    try:
        return int(env)
    except ValueError as exc:
        raise ConfigError(f"{MAX_BYTES_ENV}={env!r} is not a number of bytes") from exc


def _check_self_contained(path: Path, f: h5py.File, max_bytes: int) -> None:
    """Refuse, before reading any data, what could make reading leave the file or take
    unbounded memory: soft and external links, datasets stored outside the file
    (external raw storage, virtual datasets), element types other than numbers and
    strings, and declared sizes beyond ``max_bytes`` (one dataset, or all together)."""
    total = 0

    def fail(key: str, problem: str, fix: str) -> NetXFormatError:
        return NetXFormatError(f"{path}: {key}: {problem}; {fix}")

    def walk(group: h5py.Group) -> None:
        nonlocal total
        for name in group:
            key = f"{group.name.rstrip('/')}/{name}"
            link = group.get(name, getlink=True)
            if isinstance(link, (h5py.SoftLink, h5py.ExternalLink)):
                target = (f"{link.filename}:{link.path}" if isinstance(link, h5py.ExternalLink)
                          else link.path)
                raise fail(key, f"a {type(link).__name__} to {target!r}", "a .net file must be "
                           "self-contained (lava-convert never writes links); re-export it")
            obj = group[name]
            if isinstance(obj, h5py.Group):
                walk(obj)
                continue
            if not isinstance(obj, h5py.Dataset):
                raise fail(key, f"an object of type {type(obj).__name__}", "re-export the file")
            plist = obj.id.get_create_plist()
            if plist.get_layout() == h5py.h5d.VIRTUAL:
                raise fail(key, "a virtual dataset (its data lives in other files)",
                           "a .net file must be self-contained; re-export it")
            if plist.get_external_count():
                raise fail(key, "a dataset stored in external files",
                           "a .net file must be self-contained; re-export it")
            if obj.dtype.kind not in _DTYPE_KINDS or obj.dtype.itemsize > 8 \
                    and obj.dtype.kind != "S":
                raise fail(key, f"element type {obj.dtype}", "NetX stores integers, floats "
                           "and strings; re-export the file")
            size = int(np.prod(obj.shape, dtype=np.float64) * obj.dtype.itemsize)
            total += size
            if size > max_bytes or total > max_bytes:
                raise fail(key, f"declares {size} bytes ({total} so far in the file), more "
                           f"than the limit of {max_bytes}", "for a genuinely large network "
                           f"pass max_bytes to read_netx or set {MAX_BYTES_ENV}")

    walk(f)


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
        if value.size and (float(value.max()) >= 2**63 or float(value.min()) < -2**63):
            raise self.fail(f"{group.name}/{key}", f"values up to {value.max()} do not fit "
                            "64-bit integers", "the file is corrupt; re-export it")
        return value.astype(np.int64)


#: What NetX builds for a dense layer without a ``neuron`` group (an integrator).
_NETX_DEFAULT_NEURON = {"vThMant": NETX_INTEGRATOR_VTH, "iDecay": 0, "vDecay": DECAY_UNITY}


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
        bias_exp = r.integer(neuron, "biasExp") if "biasExp" in neuron else BIAS_EXP
        spiking = bool(r.integer(neuron, "spiking")) if "spiking" in neuron else True
        v0 = r.integer(neuron, "v0") if "v0" in neuron else 0
    elif kind == "dense":
        vth, i_decay, v_decay = (_NETX_DEFAULT_NEURON[k] for k in ("vThMant", "iDecay", "vDecay"))
        reset, spiking, v0, bias_exp = "hard", True, 0, BIAS_EXP
    else:
        raise r.fail(f"{g.name}/neuron", "missing", "re-export the file")
    if reset not in ("soft", "hard"):
        raise r.fail(f"{g.name}/neuron/resetMode", f"unknown mode {reset!r}",
                     "use 'soft' or 'hard'")
    _check_range(r, f"{g.name}/neuron/vThMant", vth, 0, VTH_MAX + 1, "threshold mantissa")
    _check_range(r, f"{g.name}/neuron/iDecay", i_decay, 0, DECAY_UNITY, "current decay")
    _check_range(r, f"{g.name}/neuron/vDecay", v_decay, 0, DECAY_UNITY, "voltage decay")
    _check_range(r, f"{g.name}/neuron/v0", v0, -V_MAX, V_MAX, "initial potential")
    _check_range(r, f"{g.name}/neuron/biasExp", bias_exp, BIAS_EXP, BIAS_EXP_MAX,
                 "bias exponent")
    du, dv = lava_decays(i_decay, v_decay)
    return dict(vth=vth, du=du, dv=dv, reset=reset, spiking=spiking, v0=v0, bias_exp=bias_exp)


def _read_synapse(r: _Reader, g: h5py.Group, kind: str, in_shape: tuple[int, ...],
                  shape: tuple[int, ...]) -> Synapse:
    """The weight (and conv settings) in group ``g`` connecting ``in_shape`` to ``shape``,
    as a :class:`Synapse` without source (the caller places it)."""
    if kind == "dense":
        weight = r.ints(g, "weight", (int(np.prod(shape)), int(np.prod(in_shape))))
        _check_range(r, f"{g.name}/weight", weight, -WEIGHT_HARD_MAX, WEIGHT_HARD_MAX, "weights")
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
    _check_range(r, f"{g.name}/weight", weight, -WEIGHT_HARD_MAX, WEIGHT_HARD_MAX, "weights")
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
    return Synapse(kind, weight, geometry=geometry)


def _read_bias(r: _Reader, g: h5py.Group, kind: str, shape: tuple[int, ...]) -> np.ndarray:
    n = shape[0] if kind == "conv" else int(np.prod(shape))
    bias = r.ints(g, "bias", (n,)) if "bias" in g else np.zeros(n, np.int64)
    _check_range(r, f"{g.name}/bias", bias, -(V_MAX >> BIAS_EXP), V_MAX >> BIAS_EXP,
                 "bias mantissas")
    return bias


def _layer(r: _Reader, g: h5py.Group, kind: str, shape, synapse: Synapse | None, bias,
           scale: float, skips=()) -> FixedLayer:
    neuron = _read_neuron(r, g, kind)
    return FixedLayer(
        name=r.string(g, "name") if "name" in g else g.name.rsplit("/", 1)[-1],
        kind=kind, shape=shape, synapse=synapse, bias=bias, scale=scale,
        skips=tuple(skips), **neuron)


def _read_layer(r: _Reader, g: h5py.Group, kind: str, in_shape: tuple[int, ...],
                scale: float, source: int) -> FixedLayer:
    shape = r.shape(g, "shape")
    if kind == "input":  # NetX: no synapse, no neuron bias
        return _layer(r, g, kind, shape, None, np.zeros(shape, np.int64), scale)
    synapse = _read_synapse(r, g, kind, tuple(in_shape), shape)
    return _layer(r, g, kind, shape, dataclasses.replace(synapse, source=source),
                  _read_bias(r, g, kind, shape), scale)


def _read_multi_input(r: _Reader, g: h5py.Group, sources: dict[int, int],
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
        synapse = _read_synapse(r, sg, kind, in_shape if index < 0 else layers[index].shape,
                                shape)
        if index == len(layers) - 1 and main is None:
            main = dataclasses.replace(synapse, source=index)
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
    if not 2 <= header["input_bits"] <= MAX_MESSAGE_BITS:
        problems.append(f"input_bits {header['input_bits']} is outside 2..{MAX_MESSAGE_BITS}")
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


def read_netx(path: str | os.PathLike, *, max_bytes: int | None = None) -> FixedNetwork:
    """Read a NetX HDF5 file into a :class:`FixedNetwork`.

    Reads files written by lava-convert and plain NetX files (input, dense,
    conv and flatten layers with CUBA/LOIHI neurons, as stock NetX loads). Files are
    untrusted: nothing is read from outside the file (links, external storage and
    virtual datasets are refused) and nothing is read before its declared size is
    checked against ``max_bytes`` (default ``MAX_BYTES``, 256 MiB, or the environment
    variable ``LAVA_CONVERT_NETX_MAX_BYTES``).

    Raises:
        NetXFormatError: missing, truncated, corrupt, unsupported, too-new or
            not self-contained files, naming the file and the key.
        ConfigError: ``path`` is not a path.
    """
    limit = _max_bytes(max_bytes)
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
            _check_self_contained(path, f, limit)
            return _read(_Reader(path, f))
        except NetXFormatError:
            raise
        except (OSError, KeyError, RuntimeError, ValueError) as exc:  # h5py, damaged file
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
        for name in attrs:
            if attrs.get_id(name).get_storage_size() > MAX_META_CHARS:
                raise r.fail(f"/{META_GROUP}/{name}", f"an attribute of more than "
                             f"{MAX_META_CHARS} bytes", "the file is corrupt; re-export it")
        try:
            version = int(attrs["format_version"])
            header = dict(
                input_scale=float(attrs["input_scale"]), input_bits=int(attrs["input_bits"]),
                input_signed=bool(attrs["input_signed"]), timesteps=int(attrs["timesteps"]),
                input_shape=tuple(int(s) for s in np.asarray(attrs["input_shape"]).ravel()),
            )
            meta = json.loads(attrs.get("meta_json", "{}"))
        except (KeyError, ValueError, TypeError, OverflowError, RecursionError) as exc:
            raise r.fail(f"/{META_GROUP}", f"incomplete metadata ({type(exc).__name__}: "
                         f"{str(exc)[:200]})",
                         "re-export the file") from exc
        if version > FORMAT_VERSION:
            raise r.fail(f"/{META_GROUP}/format_version", f"version {version} is newer than "
                         f"this lava-convert reads ({FORMAT_VERSION})", "upgrade lava-convert")
        _check_header(r, header, meta)
    try:
        records, check = decode_meta(meta)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise r.fail(f"/{META_GROUP}/meta_json", f"malformed layer records ({exc})",
                     "re-export the file") from exc
    scales = [q.scale for q in records]
    in_shape = header.get("input_shape")
    layers: list[FixedLayer] = []
    sources: dict[int, int] = {}  # /layer index -> position in layers
    for i in indices:
        g = group[str(i)]
        kind = r.string(g, "type")
        if kind == "flatten":
            continue
        if kind == MULTI_INPUT:
            scale = float(scales[len(layers)]) if len(layers) < len(scales) else 1.0
            layer = _read_multi_input(r, g, sources, layers, scale,
                                      None if in_shape is None else tuple(in_shape))
            _check_name(r, i, layer, layers)
            sources[i] = len(layers)
            layers.append(layer)
            continue
        if kind == "input" and "neuron" not in g:
            in_shape = r.shape(g, "shape")
            sources[i] = -1  # the network input: only a first layer's main synapse reads it
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
        layer = _read_layer(r, g, kind, tuple(prev), scale, len(layers) - 1)
        _check_name(r, i, layer, layers)
        sources[i] = len(layers)
        layers.append(layer)
    if not layers:
        raise r.fail("/layer", "no layers with neurons", "the file holds no network")
    if not header:  # a plain NetX file: graded 24-bit signed input, T from slayer if any
        tsample = r.integer(f["simulation"], "tSample") if "simulation/tSample" in f else 0
        header = dict(input_scale=1.0, input_bits=MAX_MESSAGE_BITS, input_signed=True,
                      timesteps=tsample, input_shape=tuple(in_shape))
        _check_header(r, header, meta)
    if records and [q.name for q in records] != [layer.name for layer in layers]:
        raise r.fail(f"/{META_GROUP}/meta_json", f"layer records {[q.name for q in records]} "
                     f"do not match the layers {[layer.name for layer in layers]}",
                     "the file is corrupt; re-export it")
    return FixedNetwork(layers=tuple(layers), quantization=records, check=check, **header)
