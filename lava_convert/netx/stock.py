"""How stock ``lava.lib.dl.netx.hdf5.Network`` treats a file this package writes."""

from __future__ import annotations

from ..ir import FixedNetwork
from .format import MULTI_INPUT


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
