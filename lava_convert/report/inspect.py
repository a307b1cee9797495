"""What a NetX file holds, as ``lava-convert inspect`` prints it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..ir import FixedNetwork, skip_delays
from ..lava.compat import ensure_lava
from ..netx.reader import read_netx
from ..netx.stock import stock_netx_loads, stock_netx_notes
from .cost import macs


def describe(net_path: str | Path | FixedNetwork) -> dict:
    """What a NetX file (or a FixedNetwork, then ``"file"`` is None) holds: layers, shapes,
    thresholds, exponents, counts, stock-NetX notes."""
    net = net_path if isinstance(net_path, FixedNetwork) else read_netx(net_path)
    layers, previous = [], tuple(net.input_shape)
    for layer, delays in zip(net.layers, skip_delays(net.layers)):
        synapses = macs(layer)
        w = None if layer.weight is None else np.asarray(layer.weight)
        layers.append({
            "name": layer.name, "kind": layer.kind, "input_shape": list(previous),
            "shape": list(layer.shape), "neurons": layer.size, "synapses": synapses,
            "neuron": _neuron_name(layer),
            "vth": layer.vth, "reset": layer.reset, "spiking": layer.spiking,
            "v0": np.asarray(layer.v0).tolist(), "du": layer.du, "dv": layer.dv,
            "bias_exp": layer.bias_exp,
            "weight_range": None if w is None else [int(w.min()), int(w.max())],
            "weight_exponent": None if w is None else _weight_exponent(w, layer.kind),
            **({"stride": list(layer.geometry.stride), "padding": list(layer.geometry.padding),
                "dilation": list(layer.geometry.dilation), "groups": layer.geometry.groups}
               if layer.kind == "conv" else {}),
            "shortcuts": [{"source": net.layers[k.source].name, "kind": k.kind, "delay": d,
                           "weight_range": [int(k.weight.min()), int(k.weight.max())]}
                          for k, d in zip(layer.skips, delays)],
        })
        previous = tuple(layer.shape)
    return {"file": None if net_path is net else str(net_path),
            "input_shape": list(net.input_shape), "input_bits": net.input_bits,
            "input_scale": net.input_scale,
            "timesteps": net.timesteps, "layers": layers,
            "neurons": sum(l["neurons"] for l in layers),
            "synapses": sum(l["synapses"] for l in layers),
            "stock_netx_loads": stock_netx_loads(net), "stock_netx": stock_netx_notes(net)}


def _neuron_name(layer) -> str:
    """The Lava process a layer's neurons become: ``LIF`` or a sigma-delta one."""
    if layer.neuron == "lif":
        return "LIF"
    return "Delta" if layer.kind == "input" else "SigmaDelta" if layer.spiking else "Sigma"


def _weight_exponent(weight: np.ndarray, kind: str) -> int | None:
    """The weight exponent NetX's ``optimize_weight_bits`` gives dense weights at load.

    Conv weights are passed to Lava unchanged (exponent 0). ``None`` when Lava
    is not installed.
    """
    if kind == "conv":
        return 0
    try:
        ensure_lava()
        from lava.lib.dl.netx.utils import optimize_weight_bits
    except ImportError:
        return None
    return int(optimize_weight_bits(weight)[2])
