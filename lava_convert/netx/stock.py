"""How stock ``lava.lib.dl.netx.hdf5.Network`` treats a file this package writes."""

from __future__ import annotations

from ..ir import FixedNetwork
from .format import MULTI_INPUT, stock_differences


def stock_netx_loads(net: FixedNetwork) -> bool:
    """Whether stock NetX loads a file of ``net`` (it then builds the same network)."""
    return not stock_differences(net)


def stock_netx_notes(net: FixedNetwork) -> list[str]:
    """How stock ``netx.hdf5.Network`` treats ``net``: it refuses every file whose network
    it would build differently (each note names the layers and why), and builds the
    others exactly; then the notes say what to pass it."""
    reasons = stock_differences(net)
    if reasons:
        return [f"stock NetX refuses the file (NotImplementedError: {MULTI_INPUT} is not "
                f"implemented.) rather than build a different network: {reason}"
                for reason in reasons] + [
                "load it with lava_convert.netx.Network (same arguments as stock NetX), or "
                "convert with --target stock-netx for a file stock NetX runs"]
    if net.neuron_model == "sdnn":
        return ["stock NetX builds this network exactly (sigma-delta neurons: Lava's Delta, "
                "SigmaDelta and Sigma); connect the input to net.in_layer.neuron.a_in, and "
                "run each sample in a fresh network: stock neither resets sigma-delta "
                "neurons between samples nor carries the bits a message drops (>> 6), so "
                "state drifts across samples"]
    return [f"stock NetX builds this network exactly; pass input_message_bits={net.input_bits} "
            "(graded input) and reset_interval=T, reset_offset=1 so that every layer resets "
            "when a new sample reaches it (state otherwise carries over between samples)"]
