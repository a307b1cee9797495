"""Read a NetX HDF5 file into a :class:`~lava_convert.ir.FixedNetwork`, checking every
key, shape and range (layout: see :mod:`lava_convert.netx.format`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np

from ..errors import ConfigError, NetXFormatError
from ..hw.loihi import (
    MAX_MESSAGE_BITS,
)
from ..ir import LAYER_KINDS, STOCK_INPUT_TRANSFORM, FixedLayer, FixedNetwork
from .fields import MAX_NEURONS, FieldReader
from .format import FORMAT_VERSION, META_GROUP, MULTI_INPUT, decode_meta
from .layers import read_layer, read_multi_input
from .untrusted import check_self_contained, max_bytes_limit


def _check_header(r: FieldReader, header: dict, meta) -> None:
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
    limit = max_bytes_limit(max_bytes)
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
            check_self_contained(path, f, limit)
            return _read(FieldReader(path, f))
        except NetXFormatError:
            raise
        except (OSError, KeyError, RuntimeError, ValueError) as exc:  # h5py, damaged file
            raise NetXFormatError(
                f"{path}: damaged HDF5 structure ({type(exc).__name__}: {exc}); the file is "
                "corrupt or truncated: re-export it"
            ) from exc


def _check_name(r: FieldReader, i: int, layer: FixedLayer, layers: list[FixedLayer]) -> None:
    if any(layer.name == other.name for other in layers):
        raise r.fail(f"/layer/{i}/name", f"layer name {layer.name!r} is used twice",
                     "give every layer its own name")


def _read(r: FieldReader) -> FixedNetwork:
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
    transform = STOCK_INPUT_TRANSFORM
    for i in indices:
        g = group[str(i)]
        kind = r.string(g, "type")
        if kind == "input" and i == indices[0]:  # stock's in_layer: the first group
            transform = _input_transform(r, g)
        if kind == "flatten":
            continue
        if kind == MULTI_INPUT:
            scale = float(scales[len(layers)]) if len(layers) < len(scales) else 1.0
            layer = read_multi_input(r, g, sources, layers, scale,
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
        layer = read_layer(r, g, kind, tuple(prev), scale, len(layers) - 1)
        _check_name(r, i, layer, layers)
        sources[i] = len(layers)
        layers.append(layer)
    if not layers:
        raise r.fail("/layer", "no layers with neurons", "the file holds no network")
    _check_neuron_models(r, layers)
    if not header:  # a plain NetX file: graded 24-bit signed input, T from slayer if any
        tsample = r.integer(f["simulation"], "tSample") if "simulation/tSample" in f else 0
        header = dict(input_scale=1.0, input_bits=MAX_MESSAGE_BITS, input_signed=True,
                      timesteps=tsample, input_shape=tuple(in_shape))
        _check_header(r, header, meta)
    if records and [q.name for q in records] != [layer.name for layer in layers]:
        raise r.fail(f"/{META_GROUP}/meta_json", f"layer records {[q.name for q in records]} "
                     f"do not match the layers {[layer.name for layer in layers]}",
                     "the file is corrupt; re-export it")
    return FixedNetwork(layers=tuple(layers), quantization=records, check=check,
                        input_transform=transform, **header)


def _check_neuron_models(r: FieldReader, layers: list[FixedLayer]) -> None:
    """One neuron model per file: sigma-delta layers send graded messages that a LIF
    layer's synapse would read otherwise, and their shortcuts are not defined."""
    models = [layer.neuron for layer in layers]
    if len(set(models)) > 1:
        i = next(i for i, m in enumerate(models) if m != models[0])
        raise r.fail(f"layer {layers[i].name}/neuron/type", f"{models[i]} neurons after "
                     f"{models[0]} ones", "a file holds either sigma-delta (SDNN) or LIF "
                     "(CUBA) neurons; convert the network again")
    if models[0] == "sdnn":
        for layer in layers:
            if layer.skips:
                raise r.fail(f"layer {layer.name}/inputs", "shortcuts into sigma-delta "
                             "neurons", "stock NetX has no shortcuts; use a sequential network")


def _input_transform(r: FieldReader, g: h5py.Group) -> tuple[int, int]:
    """An input layer's ``weight`` and ``bias`` (one whole number each), as stock NetX reads
    them into ``in_layer.transform`` (:data:`~lava_convert.ir.STOCK_INPUT_TRANSFORM`
    where absent)."""
    return tuple(r.integer(g, key) if key in g else default
                 for key, default in zip(("weight", "bias"), STOCK_INPUT_TRANSFORM))
