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
per-layer report). The reader also takes plain NetX files (input, dense, conv
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

from .errors import NetXFormatError
from .ir import LAYER_KINDS, FixedLayer, FixedNetwork
from .neuron import BIAS_EXP, DECAY_UNITY, V_MAX

FORMAT_VERSION = 1
META_GROUP = "lava_convert"
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
    """How stock ``netx.hdf5.Network`` treats ``net``: it loads every file we write but
    ignores our extensions; each note says which layers that changes."""
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


def _write_layer(g: h5py.Group, layer: FixedLayer) -> None:
    _bytes(g, "type", layer.kind)
    _bytes(g, "name", layer.name)
    g.create_dataset("shape", data=np.asarray(layer.shape, dtype=np.int64))
    if layer.weight is not None:
        g.create_dataset("weight", data=_compact(layer.weight))
    g.create_dataset("bias", data=_compact(layer.bias))
    if layer.kind == "conv":
        for key in ("stride", "padding", "dilation"):
            g.create_dataset(key, data=np.asarray(getattr(layer, key), dtype=np.int64))
        g.create_dataset("groups", data=np.int64(layer.groups))
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
                format_version=FORMAT_VERSION, package_version=package_version,
                input_scale=net.input_scale, input_bits=net.input_bits,
                input_signed=int(net.input_signed), timesteps=net.timesteps,
                input_shape=np.asarray(net.input_shape, dtype=np.int64),
                meta_json=json.dumps(net.meta),
            )
            layers = f.create_group("layer")
            g = layers.create_group("0")
            _bytes(g, "type", "input")
            g.create_dataset("shape", data=np.asarray(net.input_shape, dtype=np.int64))
            index, previous = 1, tuple(net.input_shape)
            for layer in net.layers:
                if layer.kind == "dense" and len(previous) > 1:
                    _bytes(layers.create_group(str(index)), "type", "flatten")
                    index += 1
                _write_layer(layers.create_group(str(index)), layer)
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


def _read_layer(r: _Reader, g: h5py.Group, kind: str, in_shape: tuple[int, ...],
                scale: float) -> FixedLayer:
    shape = r.shape(g, "shape")
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
    n_out = int(np.prod(shape))
    if kind == "input":
        weight, bias = None, np.zeros(n_out, np.int64).reshape(shape)  # NetX: no neuron bias
    elif kind == "dense":
        weight = r.ints(g, "weight", (n_out, int(np.prod(in_shape))))
        bias = r.ints(g, "bias", (n_out,)) if "bias" in g else np.zeros(n_out, np.int64)
    else:
        w = np.asarray(r.get(g, "weight"))
        w = w.reshape(w.shape[:4]) if w.ndim == 5 and w.shape[4] == 1 else w
        groups = r.integer(g, "groups") if "groups" in g else 1
        if len(in_shape) != 3 or groups < 1 or in_shape[0] % groups or shape[0] % groups:
            raise r.fail(f"{g.name}/groups", f"{groups} groups do not divide the input "
                         f"{in_shape} and output {shape} channels", "the file is corrupt")
        if len(in_shape) != 3 or len(shape) != 3 or w.ndim != 4 \
                or w.shape[:2] != (shape[0], in_shape[0] // groups):
            raise r.fail(f"{g.name}/weight", f"conv weight {w.shape} does not connect input "
                         f"{in_shape} to output {shape}", "the file is corrupt; re-export it")
        weight = r.ints(g, "weight", np.asarray(r.get(g, "weight")).shape).reshape(w.shape)
        bias = r.ints(g, "bias", (shape[0],)) if "bias" in g else np.zeros(shape[0], np.int64)
        if 0 in w.shape:
            raise r.fail(f"{g.name}/weight", f"empty kernel {w.shape}", "the file is corrupt")
    if weight is not None:
        _check_range(r, f"{g.name}/weight", weight, -MAX_WEIGHT, MAX_WEIGHT, "weights")
    _check_range(r, f"{g.name}/bias", bias, -(V_MAX >> BIAS_EXP), V_MAX >> BIAS_EXP,
                 "bias mantissas")
    layer = FixedLayer(
        name=r.string(g, "name") if "name" in g else g.name.rsplit("/", 1)[-1],
        kind=kind, shape=shape, weight=weight, bias=bias, vth=vth, spiking=spiking, reset=reset,
        du=i_decay - 1, dv=v_decay, bias_exp=BIAS_EXP, scale=scale, v0=v0,
    )
    if kind == "conv":
        layer = dataclasses.replace(
            layer, stride=_pair(r, g, "stride", 1, 1), padding=_pair(r, g, "padding", 0, 0),
            dilation=_pair(r, g, "dilation", 1, 1), groups=int(groups))
        expected = (shape[0],) + tuple(
            (in_shape[1 + d] + 2 * layer.padding[d] - layer.dilation[d] * (w.shape[2 + d] - 1)
             - 1) // layer.stride[d] + 1 for d in range(2))
        if expected != shape:
            raise r.fail(g.name, f"declared output {shape} but input {in_shape} with this "
                         f"kernel, stride, padding and dilation gives {expected}",
                         "the file is corrupt; re-export it")
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
    """
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
    for i in indices:
        g = group[str(i)]
        kind = r.string(g, "type")
        if kind == "flatten":
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
                         f"supported: {', '.join(LAYER_KINDS)} and flatten")
        if kind == "input":
            in_shape = r.shape(g, "shape")
        elif not layers and in_shape is None:
            if kind == "conv":
                raise r.fail(f"/layer/{i}", "input shape unknown", "add an input layer")
            in_shape = (int(np.asarray(r.get(g, "weight")).shape[-1]),)
        prev = layers[-1].shape if layers else in_shape
        scale = float(scales[len(layers)]) if len(layers) < len(scales) else 1.0
        layer = _read_layer(r, g, kind, tuple(prev), scale)
        if any(layer.name == other.name for other in layers):
            raise r.fail(f"/layer/{i}/name", f"layer name {layer.name!r} is used twice",
                         "give every layer its own name")
        layers.append(layer)
    if not layers:
        raise r.fail("/layer", "no layers with neurons", "the file holds no network")
    if not header:  # a plain NetX file: graded 24-bit signed input, T from slayer if any
        tsample = r.integer(f["simulation"], "tSample") if "simulation/tSample" in f else 0
        header = dict(input_scale=1.0, input_bits=24, input_signed=True,
                      timesteps=tsample, input_shape=tuple(in_shape))
        _check_header(r, header, meta)
    return FixedNetwork(layers=tuple(layers), meta=meta, **header)
