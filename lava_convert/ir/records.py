"""Frozen records that stages hand on: what quantization chose per layer, and what the
fixed-point check measured. The NetX writer and the sidecar serialise these same objects
(``to_dict``); the NetX reader rebuilds them (``from_dict``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..hw.loihi import BIAS_EXP


class Record:
    """``to_dict`` / ``from_dict`` for a flat frozen dataclass of JSON values."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        """``cls(**known fields of data)``; unknown keys are ignored, a missing field
        raises ``KeyError`` naming the record."""
        fields = dataclasses.fields(cls)
        required = [f.name for f in fields
                    if f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING]
        missing = [n for n in required if n not in data]
        if missing:
            raise KeyError(f"{cls.__name__} record lacks {missing}")
        return cls(**{f.name: data[f.name] for f in fields if f.name in data})


@dataclass(frozen=True)
class LayerQuantization(Record):
    """How quantization mapped one layer to Loihi integers.

    Attributes:
        name: Layer name.
        scale: Integer current units per real unit (weights, bias, threshold).
        scale_limited_by: Which range set the scale: ``"weights"``, ``"bias"`` or
            ``"state headroom"``.
        vth: Threshold mantissa.
        threshold: The real-valued threshold it came from (0 for a readout).
        threshold_source: How balancing chose the threshold.
        weight_bits: Bits (sign included) the largest integer weight uses.
        weights_underflow: Share of non-zero real weights that rounded to 0.
        max_current: Largest current magnitude per step, integer units.
        shift: Real-valued bias added by conversion (a number, or per neuron/channel).
        v0: Initial potential in real units (``V_th/2`` for ``shift="v0"``, or what
            potential calibration chose: a number, or per neuron/channel).
        bias_exp: Bias exponent written for NetX.
    """

    name: str
    scale: float
    scale_limited_by: str
    vth: int
    threshold: float = 0.0
    threshold_source: str = ""
    weight_bits: int = 0
    weights_underflow: float = 0.0
    max_current: float = 0.0
    shift: float | list = 0.0
    v0: float | list = 0.0
    bias_exp: int = BIAS_EXP
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["warnings"] = list(self.warnings)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LayerQuantization:
        record = super().from_dict(data)
        return dataclasses.replace(record, warnings=tuple(record.warnings))


@dataclass(frozen=True)
class LayerCheck(Record):
    """What the fixed-point check measured in one layer on calibration samples.

    Attributes:
        name: Layer name.
        rate_error: Mean ``|fixed - float|`` spikes per step and neuron (0 for a readout).
        max_abs_u, max_abs_v: Largest ``|u|`` and ``|v|`` in Lava units.
        min_v: Lowest ``v`` in Lava units (at most 0).
    """

    name: str
    rate_error: float
    max_abs_u: int
    max_abs_v: int
    min_v: int


@dataclass(frozen=True)
class QuantizationCheck:
    """The result of :func:`lava_convert.quantize.check.check_fixed_point`.

    Attributes:
        layers: One :class:`LayerCheck` per layer.
        warnings: Messages about layers where quantization costs accuracy.
        prediction_mismatch: Share of calibration samples whose class differs
            between fixed and float point.
        samples: Calibration samples simulated for the check (0: not recorded).
    """

    layers: tuple[LayerCheck, ...]
    warnings: tuple[str, ...] = ()
    prediction_mismatch: float = 0.0
    samples: int = 0

    def layer(self, name: str) -> LayerCheck | None:
        return next((c for c in self.layers if c.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {"layers": [c.to_dict() for c in self.layers], "warnings": list(self.warnings),
                "prediction_mismatch": self.prediction_mismatch, "samples": self.samples}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QuantizationCheck:
        return cls(layers=tuple(LayerCheck.from_dict(d) for d in data["layers"]),
                   warnings=tuple(str(w) for w in data.get("warnings", ())),
                   prediction_mismatch=float(data.get("prediction_mismatch") or 0.0),
                   samples=int(data.get("samples") or 0))
