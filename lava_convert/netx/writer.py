"""Write a :class:`~lava_convert.ir.FixedNetwork` as a NetX HDF5 file (layout: see
:mod:`lava_convert.netx.format`)."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from ..errors import ExportError
from ..files import hdf5_bytes, write_bytes
from ..hw.loihi import netx_decays
from ..ir import STOCK_INPUT_TRANSFORM, FixedLayer, FixedNetwork, Synapse, skip_delays
from .format import (
    META_GROUP,
    MULTI_INPUT,
    encode_meta,
    format_version,
    stock_differences,
    stock_netx_note,
)


def _bytes(handle: h5py.Group, key: str, value: str) -> None:
    handle.create_dataset(key, (1,), f"S{max(len(value), 1)}", [value.encode("ascii")])


def _compact(a: np.ndarray) -> np.ndarray:
    """The smallest signed integer type that holds ``a`` (NetX casts to int on load)."""
    a = np.asarray(a, dtype=np.int64)
    for dtype in (np.int16, np.int32):
        info = np.iinfo(dtype)
        if a.size == 0 or (a.min() >= info.min and a.max() <= info.max):
            return a.astype(dtype)
    return a


def _stored(layer: FixedLayer, values, what: str) -> np.ndarray:
    """A per-neuron setting (bias, v0) as the file keeps it: one value per neuron of a
    dense layer, one per channel of a conv layer (NetX's layout; the reader takes no
    other), refused if it differs between a channel's positions."""
    if layer.kind != "conv":
        return np.reshape(values, -1)
    full = layer.per_neuron(values, what)
    if np.any(full != full[:, :1, :1]):
        raise ExportError(f"layer '{layer.name}': its {what} differs between the positions "
                          "of a channel, and a NetX conv layer keeps one per channel; give "
                          f"each channel one {what} (or make the layer dense)")
    return full[:, 0, 0]


def _write_synapse(g: h5py.Group, synapse: Synapse) -> None:
    """Weight (and conv settings) of a layer's main synapse or of a shortcut."""
    g.create_dataset("weight", data=_compact(synapse.weight))
    if synapse.kind == "conv":
        for key in ("stride", "padding", "dilation"):
            g.create_dataset(key, data=np.asarray(getattr(synapse.geometry, key),
                                                  dtype=np.int64))
        g.create_dataset("groups", data=np.int64(synapse.geometry.groups))


def _write_layer(g: h5py.Group, layer: FixedLayer, groups: list[int], delays: list[int],
                 multi_input: bool) -> None:
    """One layer; with ``multi_input`` (shortcuts, or the stock-NetX guard) in the
    multi-input form (``groups``: the /layer index of the input and of every layer so
    far, ``delays``: each shortcut's extra delay)."""
    _bytes(g, "type", MULTI_INPUT if multi_input else layer.kind)
    _bytes(g, "name", layer.name)
    g.create_dataset("shape", data=np.asarray(layer.shape, dtype=np.int64))
    if multi_input:
        inputs = g.create_group("inputs")
        main = inputs.create_group("0")
        _bytes(main, "type", layer.kind)
        main.create_dataset("source", data=np.int64(groups[-1]))
        main.create_dataset("delay", data=np.int64(0))
        _write_synapse(main, layer.synapse)
        for j, (skip, delay) in enumerate(zip(layer.skips, delays), start=1):
            k = inputs.create_group(str(j))
            _bytes(k, "type", skip.kind)
            k.create_dataset("source", data=np.int64(groups[skip.source + 1]))
            k.create_dataset("delay", data=np.int64(delay))
            _write_synapse(k, skip)
    elif layer.synapse is not None:
        _write_synapse(g, layer.synapse)
    sigma = layer.neuron == "sdnn" and not layer.spiking
    if sigma and np.any(layer.bias):
        raise ExportError(f"layer '{layer.name}': a sigma-delta output (Lava's Sigma) has no "
                          "bias; fold it into the layer before or drop it")
    if layer.kind != "input" and not sigma:  # stock reads an input layer's as its transform
        g.create_dataset("bias", data=_compact(_stored(layer, layer.bias, "bias")))
    n = g.create_group("neuron")
    if layer.neuron == "sdnn":  # stock NetX's keys: Delta, SigmaDelta (ReLU) or Sigma
        _bytes(n, "type", "SDNN")
        n.create_dataset("activation", data="relu")
        n.create_dataset("vThMant", data=np.int64(layer.vth))
        if not layer.spiking:
            n.create_dataset("sigma_output", data=True)
        return
    _bytes(n, "type", "LOIHI")
    n.create_dataset("vThMant", data=np.int64(layer.vth))
    i_decay, v_decay = netx_decays(layer.du, layer.dv)
    n.create_dataset("iDecay", data=np.int64(i_decay))
    n.create_dataset("vDecay", data=np.int64(v_decay))
    n.create_dataset("refDelay", data=np.int64(1))
    n.create_dataset("gradedSpike", data=np.int64(0))
    _bytes(n, "resetMode", layer.reset)
    n.create_dataset("spiking", data=np.int64(int(layer.spiking)))
    n.create_dataset("v0", data=np.int64(layer.v0) if np.ndim(layer.v0) == 0
                     else _compact(_stored(layer, layer.v0, "v0")))
    n.create_dataset("biasExp", data=np.int64(layer.bias_exp))


def write_netx(net: FixedNetwork, path: str | os.PathLike, *, package_version: str = "") -> Path:
    """Write ``net`` as a NetX HDF5 file at ``path`` (atomically, after a check of the free
    space; :func:`netx_bytes`)."""
    return write_bytes(path, netx_bytes(net, package_version=package_version))


def netx_bytes(net: FixedNetwork, *, package_version: str = "") -> bytes:
    """``net`` as the bytes of a NetX HDF5 file: its layers, and in ``/lava_convert`` the
    input coding, T, the format version and the quantization records (with the check's
    measurements when ``net.check`` is set)."""

    def write(target) -> None:
        with h5py.File(target, "w") as f:
            meta = f.create_group(META_GROUP)
            meta.attrs.update(
                format_version=format_version(net),
                package_version=package_version,
                input_scale=net.input_scale, input_bits=net.input_bits,
                input_signed=int(net.input_signed), timesteps=net.timesteps,
                input_shape=np.asarray(net.input_shape, dtype=np.int64),
                meta_json=encode_meta(net), stock_netx=stock_netx_note(net),
            )
            # the guard: a layer stock NetX refuses, before it builds anything
            guard = next((i for i, layer in enumerate(net.layers) if layer.synapse is not None),
                         None) if stock_differences(net) else None
            layers = f.create_group("layer")
            g = layers.create_group("0")
            _bytes(g, "type", "input")
            g.create_dataset("shape", data=np.asarray(net.input_shape, dtype=np.int64))
            if tuple(net.input_transform) != STOCK_INPUT_TRANSFORM:  # a foreign file's, kept
                for key, value in zip(("weight", "bias"), net.input_transform):
                    g.create_dataset(key, data=np.asarray([value], dtype=np.int64))
            index, previous, groups = 1, tuple(net.input_shape), [0]
            for i, (layer, delays) in enumerate(zip(net.layers, skip_delays(net.layers))):
                multi = bool(layer.skips) or i == guard
                if layer.kind == "dense" and len(previous) > 1 and not multi:
                    _bytes(layers.create_group(str(index)), "type", "flatten")
                    index += 1
                _write_layer(layers.create_group(str(index)), layer, groups, delays, multi)
                groups.append(index)
                index, previous = index + 1, tuple(layer.shape)

    return hdf5_bytes(write)
