"""Read and write NetX HDF5 files (the format of ``lava.lib.dl.netx.hdf5.Network``).

Layout written (all plain datasets, as NetX expects)::

    /layer/0/{type="input", shape}                       input shape (C,H,W order)
    /layer/i/{type="dense", shape=[n], weight (n, m) int, bias (n,) int,
              neuron/{type="LOIHI", vThMant, iDecay=4096, vDecay=0,
                      refDelay=1, gradedSpike=0,
                      resetMode="soft"|"hard", spiking=0|1}, name}
    /lava_convert/                                       our metadata (attributes)

Extensions that stock NetX ignores: ``neuron/resetMode`` (stock NetX builds
Lava's hard-reset LIF), ``neuron/spiking`` (0 marks the integrating readout
layer), ``layer/i/name`` (module path in the source model) and the
``/lava_convert`` group (format version, input quantization, time steps).
Files are written to a temporary file in the same directory and renamed into
place, so an interrupted export never leaves a half-written file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import h5py
import numpy as np

from .errors import NetXFormatError
from .ir import FixedDense, FixedNetwork
from .neuron import BIAS_EXP, DECAY_UNITY

FORMAT_VERSION = 1
META_GROUP = "lava_convert"


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
            for i, layer in enumerate(net.layers, start=1):
                g = layers.create_group(str(i))
                _bytes(g, "type", "dense")
                _bytes(g, "name", layer.name)
                g.create_dataset("shape", data=np.asarray([layer.size], dtype=np.int64))
                g.create_dataset("weight", data=layer.weight.astype(np.int64))
                g.create_dataset("bias", data=layer.bias.astype(np.int64))
                n = g.create_group("neuron")
                _bytes(n, "type", "LOIHI")
                n.create_dataset("vThMant", data=np.int64(layer.vth))
                n.create_dataset("iDecay", data=np.int64(DECAY_UNITY))
                n.create_dataset("vDecay", data=np.int64(0))
                n.create_dataset("refDelay", data=np.int64(1))
                n.create_dataset("gradedSpike", data=np.int64(0))
                _bytes(n, "resetMode", layer.reset)
                n.create_dataset("spiking", data=np.int64(int(layer.spiking)))

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
        value = value[0] if np.ndim(value) else value
        return value.decode("ascii") if isinstance(value, bytes) else str(value)

    def integer(self, group: h5py.Group, key: str) -> int:
        value = np.asarray(self.get(group, key))
        if value.size != 1 or not np.issubdtype(value.dtype, np.number):
            raise self.fail(f"{group.name}/{key}", f"expected one number, found {value!r}",
                            "the file is corrupt; re-export it")
        return int(value.reshape(-1)[0])

    def ints(self, group: h5py.Group, key: str, shape: tuple[int, ...]) -> np.ndarray:
        value = np.asarray(self.get(group, key))
        if value.shape != shape or not np.issubdtype(value.dtype, np.number):
            raise self.fail(f"{group.name}/{key}", f"expected numbers of shape {shape}, found "
                            f"{value.dtype} {value.shape}", "the file is corrupt; re-export it")
        if not np.all(np.isfinite(value)) or np.any(value != np.rint(value)):
            raise self.fail(f"{group.name}/{key}", "non-integer values",
                            "NetX stores integers; re-export the file")
        return value.astype(np.int64)


def read_netx(path: str | os.PathLike) -> FixedNetwork:
    """Read a NetX file written by :func:`write_netx` into a :class:`FixedNetwork`.

    Raises:
        NetXFormatError: missing, truncated, corrupt, foreign or too-new files,
            naming the file and the key.
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
        r = _Reader(path, f)
        if META_GROUP not in f:
            raise r.fail(f"/{META_GROUP}", "missing: this is not a lava-convert export",
                         "load it with lava.lib.dl.netx.hdf5.Network, or export with lava-convert")
        attrs = f[META_GROUP].attrs
        try:
            version = int(attrs["format_version"])
            input_scale = float(attrs["input_scale"])
            input_bits = int(attrs["input_bits"])
            input_signed = bool(attrs["input_signed"])
            timesteps = int(attrs["timesteps"])
            input_shape = tuple(int(s) for s in np.asarray(attrs["input_shape"]).reshape(-1))
            meta = json.loads(attrs.get("meta_json", "{}"))
        except (KeyError, ValueError, TypeError) as exc:
            raise r.fail(f"/{META_GROUP}", f"incomplete metadata ({exc})", "re-export the file") \
                from exc
        if version > FORMAT_VERSION:
            raise r.fail(f"/{META_GROUP}/format_version", f"version {version} is newer than this "
                         f"lava-convert reads ({FORMAT_VERSION})", "upgrade lava-convert")
        if "layer" not in f:
            raise r.fail("/layer", "missing", "the file is not a NetX network; re-export it")
        group = f["layer"]
        indices = sorted(int(k) for k in group.keys() if k.isdigit())
        if indices != list(range(len(group))) or len(indices) < 2:
            raise r.fail("/layer", f"layer groups {sorted(group.keys())} are not 0..n-1 with n>=2",
                         "the file is corrupt; re-export it")
        if r.string(group["0"], "type") != "input":
            raise r.fail("/layer/0/type", "expected 'input'", "re-export the file")
        n_in = int(np.prod(input_shape))
        scales = [d.get("scale", 1.0) for d in meta.get("layers", [])]
        layers = []
        for i in indices[1:]:
            g = group[str(i)]
            kind = r.string(g, "type")
            if kind != "dense":
                raise r.fail(f"/layer/{i}/type", f"layer type {kind!r} is not supported here",
                             "this version reads dense networks written by lava-convert")
            n = int(np.prod(r.get(g, "shape")))
            neuron = g["neuron"] if "neuron" in g else None
            if neuron is None:
                raise r.fail(f"/layer/{i}/neuron", "missing", "re-export the file")
            reset = r.string(neuron, "resetMode") if "resetMode" in neuron else "hard"
            if reset not in ("soft", "hard"):
                raise r.fail(f"/layer/{i}/neuron/resetMode", f"unknown mode {reset!r}",
                             "use 'soft' or 'hard'")
            layers.append(FixedDense(
                name=r.string(g, "name") if "name" in g else f"layer{i}",
                weight=r.ints(g, "weight", (n, n_in)),
                bias=r.ints(g, "bias", (n,)) if "bias" in g else np.zeros(n, np.int64),
                vth=r.integer(neuron, "vThMant"),
                spiking=bool(r.integer(neuron, "spiking")) if "spiking" in neuron else True,
                reset=reset, bias_exp=BIAS_EXP,
                scale=float(scales[i - 1]) if i - 1 < len(scales) else 1.0,
            ))
            n_in = n
        return FixedNetwork(input_shape=input_shape, input_scale=input_scale,
                            input_bits=input_bits, input_signed=input_signed,
                            layers=tuple(layers), timesteps=timesteps, meta=meta)
