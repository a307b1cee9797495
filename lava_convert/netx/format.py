"""Read and write NetX HDF5 files (the format of ``lava.lib.dl.netx.hdf5.Network``).

Layout written (all plain datasets, as NetX expects)::

    /layer/0/{type="input", shape}                        input shape (C,H,W order)
    /layer/i/{type="dense"|"conv", shape, weight, bias, name,
              [stride, padding, dilation, groups],          conv only, (H,W) pairs
              neuron/{type="LOIHI", vThMant, iDecay, vDecay, refDelay=1, gradedSpike=0,
                      resetMode="soft"|"hard", spiking=0|1, v0, biasExp}}
    /layer/i/{type="flatten"}                             before a dense after a 3-D layer
    /lava_convert/                                        our metadata (attributes)

Extensions that stock NetX ignores: ``neuron/resetMode`` (stock NetX builds
Lava's hard-reset LIF), ``neuron/v0`` (membrane potential at each sample's
start, Lava units: one number, or one per neuron like the bias, per channel of a conv
layer; stock NetX starts at 0), ``neuron/biasExp`` (the bias exponent; NetX
fixes it at 6), ``neuron/spiking`` (0 marks the integrating readout layer),
``layer/i/name`` (module path in the source model) and the
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
without its shortcuts.

No silent misreading. Stock NetX builds Lava's hard-reset ``LIF`` for every
layer, starts ``v`` at 0 and ignores unknown keys, so it would load a soft-reset
or ``v0`` network as a different network without a word. Every file whose network
stock NetX cannot reproduce (:func:`stock_differences`) therefore writes its first
layer with a synapse in the multi-input form too (one input, the main synapse),
and stock NetX refuses it with the same ``NotImplementedError`` before building
anything; ``/lava_convert`` ``stock_netx`` says why and how to load it
(``lava_convert.netx.Network``). Such files are format version 2 (3 with a ``v0`` per
neuron); files stock NetX reproduces exactly (hard reset, no ``v0``, no shortcuts) stay
plain NetX, version 1.

The reader also takes plain NetX files (input, dense, conv
and flatten layers with CUBA/LOIHI neurons). Files are written to a temporary
file in the same directory and renamed into place, so an interrupted export
never leaves a half-written file.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ..ir import FixedNetwork, LayerQuantization, QuantizationCheck

#: Version 2 adds multi-input layers, version 3 initial potentials per neuron (per channel
#: of a conv layer); files without either are version 1 (see :func:`format_version`).
FORMAT_VERSION = 3
META_GROUP = "lava_convert"
#: NetX's reserved type for a layer with several inputs; stock NetX refuses it.
MULTI_INPUT = "concat"


def stock_differences(net: FixedNetwork) -> list[str]:
    """What stock ``netx.hdf5.Network`` would build differently from ``net`` (empty: it
    builds the same network). Each entry names the layers."""
    why = {"residual": "add residual shortcuts (stock NetX has no multi-input layer)",
           "soft_reset": "reset by subtraction (stock NetX builds Lava's LIF, which resets "
                         "to 0)",
           "v0": "start each sample at v0 != 0 (stock NetX starts at 0)",
           "bias_exp": "scale their bias by an exponent other than 6 (stock NetX always "
                       "uses 6)"}
    return [f"layers {names} {why[kind]}" for kind, names in net.extension_layers().items()
            if names]


def stock_netx_note(net: FixedNetwork) -> str:
    """The ``/lava_convert`` ``stock_netx`` attribute: why stock NetX refuses the file and
    how to load it, or that it loads it unchanged."""
    reasons = stock_differences(net)
    if not reasons:
        return ("stock lava.lib.dl.netx.hdf5.Network builds this network exactly (pass "
                "input_message_bits and reset_interval for graded input and per-sample reset)")
    return (f"stock lava.lib.dl.netx.hdf5.Network refuses this file (NotImplementedError: "
            f"{MULTI_INPUT} is not implemented.) because it would build a different network: "
            + "; ".join(reasons) + ". Load it with lava_convert.netx.Network, which takes the "
            "same arguments, or convert with target='stock-netx'")


def format_version(net: FixedNetwork) -> int:
    """The format version a file of ``net`` has: 3 when a layer starts its neurons at
    potentials of their own (``v0`` an array: readers before version 3 take one number),
    2 when it uses multi-input layers (residual shortcuts, or the guard against stock
    NetX, :func:`stock_differences`), else 1 (plain NetX). The writer and the sidecar
    both ask here."""
    if any(np.ndim(layer.v0) for layer in net.layers):
        return 3
    return 2 if stock_differences(net) else 1


def encode_meta(net: FixedNetwork) -> str:
    """The JSON kept in ``/lava_convert`` ``meta_json``: the quantization records (with the
    check's per-layer measurements beside them) and the check's warnings."""
    return json.dumps(meta_dict(net))


def meta_dict(net: FixedNetwork) -> dict[str, Any]:
    """``{"layers": [record + check per layer], "warnings", "prediction_mismatch"}``: the
    layout of ``meta_json`` and of the sidecar's per-layer entries."""
    check = net.check
    layers = []
    for record in net.quantization:
        entry = record.to_dict()
        measured = check.layer(record.name) if check is not None else None
        if measured is not None:
            entry.update({k: v for k, v in measured.to_dict().items() if k != "name"})
        layers.append(entry)
    quantization = [w for record in net.quantization for w in record.warnings]
    return {"layers": layers,
            "warnings": quantization + (list(check.warnings) if check is not None else []),
            "prediction_mismatch": check.prediction_mismatch if check is not None else None,
            "check_samples": check.samples if check is not None else None}


def decode_meta(meta: dict[str, Any]) -> tuple[tuple[LayerQuantization, ...],
                                               QuantizationCheck | None]:
    """The records of a ``meta_json`` object (inverse of :func:`meta_dict`); raises
    ``KeyError``/``TypeError``/``ValueError`` on a malformed one."""
    entries = meta.get("layers", [])
    records = tuple(LayerQuantization.from_dict(d) for d in entries)
    check = None
    if entries and all("rate_error" in d for d in entries):
        check = QuantizationCheck.from_dict({
            "layers": [dict(d, min_v=d.get("min_v", 0)) for d in entries],
            "warnings": [w for w in meta.get("warnings") or []
                         if not any(w in d.get("warnings", ()) for d in entries)],
            "prediction_mismatch": meta.get("prediction_mismatch"),
            "samples": meta.get("check_samples")})
    return records, check
