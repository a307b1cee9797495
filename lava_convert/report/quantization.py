"""Per-layer quantization report: what fixed point costs, and how close state gets to 24 bits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..hw.loihi import U_WRAP, V_MAX, weight_limit
from ..quantize.scale import weight_bits
from ..sim.reference import simulate_fixed, simulate_float
from .tables import format_table


@dataclass(frozen=True)
class QuantizationRow:
    """How one layer fared in quantization.

    Attributes:
        name: Layer name.
        scale: Integer current units per real unit.
        scale_limited_by: Which range set the scale (weights, bias, state headroom).
        weight_bits: Bits the largest integer weight uses (sign included).
        weights_clipped: Share of weights beyond :func:`~lava_convert.hw.loihi.weight_limit`.
        weights_underflow: Share of non-zero weights that rounded to 0.
        rate_error: Mean |fixed - float| spike rate (spikes per step per neuron).
        u_headroom_bits, v_headroom_bits: log2 of the 24-bit limit over the
            largest |u| / |v| seen in the fixed-point run (inf if never non-zero).
    """

    name: str
    scale: float
    scale_limited_by: str
    weight_bits: int
    weights_clipped: float
    weights_underflow: float
    rate_error: float
    u_headroom_bits: float
    v_headroom_bits: float


def _headroom(limit: int, peak: int) -> float:
    return float(np.log2(limit / peak)) if peak > 0 else float("inf")


def quantization_report(converted, x, timesteps: int | None = None) -> list[QuantizationRow]:
    """Quantize-and-simulate report for a ConvertedNetwork on samples ``x``."""
    T = timesteps or converted.fixed.timesteps
    fixed = simulate_fixed(converted.fixed, x, T, track_state=True)
    flt = simulate_float(converted.snn, x, T)
    limits = {q.name: q.scale_limited_by for q in converted.fixed.quantization}
    rows = []
    previous = converted.fixed.input_scale
    for snn_layer, layer in zip(converted.snn.layers, converted.fixed.layers):
        w_real = snn_layer.synapse.weight / previous  # real weight per integer input unit
        scaled = w_real * layer.scale
        nonzero = w_real != 0
        peak = fixed.info["state_max"][layer.name]
        rate = np.abs(fixed.spike_counts[layer.name] - flt.spike_counts[layer.name]) / T
        rows.append(QuantizationRow(
            name=layer.name, scale=layer.scale, scale_limited_by=limits.get(layer.name, ""),
            weight_bits=weight_bits(layer.weight),
            weights_clipped=float(np.mean(np.abs(scaled) > weight_limit(layer.kind) + 0.5)),
            weights_underflow=float(np.mean(np.rint(scaled[nonzero]) == 0)) if nonzero.any()
            else 0.0,
            rate_error=float(rate.mean()) if snn_layer.spiking else 0.0,
            u_headroom_bits=_headroom(U_WRAP, peak["u"]),
            v_headroom_bits=_headroom(V_MAX, peak["v"]),
        ))
        previous = 1.0
    return rows


def format_quantization(rows: list[QuantizationRow]) -> str:
    """The report as an aligned text table."""
    header = ["layer", "scale", "limited by", "w bits", "clipped %", "underflow %",
              "rate error", "u headroom", "v headroom"]
    body = [[r.name, r.scale, r.scale_limited_by, r.weight_bits, 100 * r.weights_clipped,
             100 * r.weights_underflow, f"{r.rate_error:.4f}", f"{r.u_headroom_bits:.1f} bit",
             f"{r.v_headroom_bits:.1f} bit"] for r in rows]
    return format_table(header, body)


__all__ = ["QuantizationRow", "format_quantization", "quantization_report"]
