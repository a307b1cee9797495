"""NIR's neuron nodes as a layer's neuron parameters (see :mod:`.reader` for the
discretisation): the gain on every input, the bias, the thresholds, the decays and the
reset, and the integrator/threshold/feedback pattern of a soft-reset neuron."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import NirGraphError
from .support import META, floats, meta_value

#: Neuron nodes: spiking (IF, LIF, CubaLIF) and, as the readout, integrating (I, LI, CubaLI).
NEURONS = ("IF", "LIF", "CubaLIF", "I", "LI", "CubaLI")


@dataclass(frozen=True)
class Neuron:
    """A neuron node (or the soft-reset pattern) as a layer's neuron parameters."""

    name: str  # the node that receives the layer's input
    output: str  # the node whose output is the layer's spikes (or readout)
    gain: np.ndarray  # per neuron: multiplies every input and the bias
    bias: np.ndarray  # per neuron, after the gain
    threshold: np.ndarray | None  # per neuron; None: a readout
    du: float
    dv: float
    reset: str | None  # "soft", "hard", or None (not said)
    v0: float | np.ndarray  # lava-convert's metadata: one, or per neuron (conv: channel)
    #: The start the soft-reset pattern's threshold offset says, per neuron (None: none);
    #: ``v0_in_offset``: the metadata's ``v0`` is that offset (our exact encoding), not
    #: an addition to it (older exports of ours)
    offset: np.ndarray | None = None
    v0_in_offset: bool = False



def _uniform(values: np.ndarray, node: str, what: str) -> float:
    flat = floats(values).reshape(-1)
    if flat.size and not np.allclose(flat, flat[0], rtol=1e-9, atol=0):
        raise NirGraphError(f"node '{node}': {what} differs between neurons; Lava has one per "
                            "layer: split the layer, or give its neurons one value")
    return float(flat[0]) if flat.size else 0.0


def _start_potential(node, name: str) -> float | np.ndarray:
    """lava-convert's ``v0`` metadata of a neuron node: a finite number or a 1-d array."""
    value = meta_value(node, "v0", 0.0)
    try:
        v0 = floats(0.0 if value is None else value)
    except (TypeError, ValueError) as exc:
        raise NirGraphError(f"node '{name}': metadata {META}.v0 = {value!r} is not a number "
                            "or a list of numbers; re-export the graph") from exc
    if v0.ndim > 1 or not np.all(np.isfinite(v0)):
        raise NirGraphError(f"node '{name}': metadata {META}.v0 must be finite numbers, one "
                            f"or one per neuron (conv: per channel), found shape {v0.shape}; "
                            "re-export the graph")
    return float(v0) if v0.ndim == 0 else v0


def _reset_of(node, name: str, reset: str | None) -> str | None:
    said = meta_value(node, "reset")
    if said in ("soft", "hard"):
        return said
    if reset is not None:
        if node.v_reset is not None and np.any(floats(node.v_reset) != 0) and reset == "hard":
            raise NirGraphError(f"node '{name}': v_reset={floats(node.v_reset).reshape(-1)[0]:g}"
                                "; Lava's hard reset sets v to 0 only")
        return reset
    return None


def read_neuron(name: str, node, nodes: dict, successors: dict, dt: float, reset: str | None):
    kind = type(node).__name__
    v0 = _start_potential(node, name)
    if kind == "IF":
        r = floats(node.r)
        return Neuron(name, name, r * dt, np.zeros_like(r), floats(node.v_threshold), 1.0, 0.0,
                      _reset_of(node, name, reset), v0)
    if kind in ("LIF", "LI"):
        tau, r = floats(node.tau), floats(node.r)
        k = dt / tau
        threshold = floats(node.v_threshold) if kind == "LIF" else None
        return Neuron(name, name, r * k, k * floats(node.v_leak), threshold, 1.0,
                      _uniform(k, name, "dt/tau"),
                      _reset_of(node, name, reset) if kind == "LIF" else "soft", v0)
    if kind in ("CubaLIF", "CubaLI"):
        k_syn, k_mem = dt / floats(node.tau_syn), dt / floats(node.tau_mem)
        gain = floats(node.w_in) * floats(node.r) * k_syn * k_mem
        threshold = floats(node.v_threshold) if kind == "CubaLIF" else None
        return Neuron(name, name, gain, k_mem * floats(node.v_leak), threshold,
                      _uniform(k_syn, name, "dt/tau_syn"), _uniform(k_mem, name, "dt/tau_mem"),
                      _reset_of(node, name, reset) if kind == "CubaLIF" else "soft", v0)
    # "I": an integrator; with a Threshold after it and Scale(-threshold) fed back, the
    # soft-reset pattern of our exact encoding
    r = floats(node.r)
    fire = [s for s in successors.get(name, ()) if type(nodes[s]).__name__ == "Threshold"]
    if not fire:
        return Neuron(name, name, r * dt, np.zeros_like(r), None, 1.0, 0.0, "soft", v0)
    back = [s for s in successors.get(fire[0], ())
            if type(nodes[s]).__name__ == "Scale" and name in successors.get(s, ())]
    if not back:
        raise NirGraphError(f"node '{fire[0]}' (Threshold) after integrator '{name}': without "
                            "a Scale(-threshold) fed back into the integrator it has no reset; "
                            "lava-convert reads the integrator/threshold/feedback form of a "
                            "soft-reset neuron only")
    # u counts from 0 and fires above `fires_at`, then loses `threshold`: a neuron with that
    # threshold whose v = u + (threshold - fires_at) starts at threshold - fires_at
    fires_at = floats(nodes[fire[0]].threshold)
    threshold = -floats(nodes[back[0]].scale) * r * dt
    offset = threshold - fires_at
    if not np.all(np.isfinite(offset)) or np.any(threshold <= 0):
        raise NirGraphError(f"node '{back[0]}' (Scale) fed back into integrator '{name}': "
                            "the reset it subtracts must be a positive, finite threshold")
    return Neuron(name, fire[0], r * dt, np.zeros_like(r), threshold, 1.0, 0.0, "soft", v0,
                  offset, bool(meta_value(node, "v0_in_threshold")))
