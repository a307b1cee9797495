"""``RunSummary``: what a run measured, as the report, the plots and the CLI read it, and as
``lava-convert run --json`` writes it (``to_dict``/``from_dict``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError


@dataclass(frozen=True)
class LayerSummary:
    """One layer of a run.

    Attributes:
        name, kind, neurons, spiking: The layer.
        spikes_per_sample: Mean spikes per sample.
        rate: Mean spikes per neuron and step.
        rate_error_quantization: The fixed-point check's rate error (from the file), if any.
        rate_correlation: Correlation of measured and ideal rates (spiking layers).
        rate_mae: Mean absolute difference of measured and ideal rates.
        scatter: A sample of ``{"ideal": [...], "snn": [...]}`` rate pairs.
    """

    name: str
    kind: str
    neurons: int
    spiking: bool
    spikes_per_sample: float
    rate: float
    rate_error_quantization: float | None = None
    rate_correlation: float | None = None
    rate_mae: float | None = None
    scatter: dict[str, list[float]] | None = None


@dataclass(frozen=True)
class RunSummary:
    """A run of a network on labelled samples.

    Attributes:
        backend: ``"lava"``, ``"reference-fixed"`` or ``"reference-float"``.
        samples, timesteps: What ran.
        accuracy: Fraction correct; ``ann_accuracy`` the ANN's from the sidecar, if known,
            measured on ``ann_samples`` test samples (which may be more than ``samples``).
        spikes_per_sample: Layer name -> mean spikes per sample.
        wall_time_s: Seconds the run took.
        layers: One :class:`LayerSummary` per layer.
        raster_first_sample: Layer name -> spike times of active neurons (first sample).
        cost: :meth:`lava_convert.report.cost.RunCost.to_dict` of the run.
        neurobench: NeuroBench's metrics of the run, the fields of
            :class:`lava_convert.report.neurobench.NeuroBenchRow`.
        accuracy_per_step: Accuracy after each step 1..T (reference runs), else ``None``.
        network, dataset: Where the run came from, when known.
    """

    backend: str
    samples: int
    timesteps: int
    accuracy: float
    layers: tuple[LayerSummary, ...]
    ann_accuracy: float | None = None
    ann_samples: int | None = None
    spikes_per_sample: dict[str, float] = field(default_factory=dict)
    wall_time_s: float = 0.0
    raster_first_sample: dict[str, list[list[int]]] = field(default_factory=dict)
    cost: dict[str, Any] | None = None
    neurobench: dict[str, Any] | None = None
    accuracy_per_step: list[float] | None = None
    network: str | None = None
    dataset: str | None = None

    def replace(self, **changes: Any) -> RunSummary:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["layers"] = [dataclasses.asdict(layer) for layer in self.layers]
        return data

    @classmethod
    def from_dict(cls, data: Any, where: str = "the run summary") -> RunSummary:
        """Rebuild a summary from its JSON; :class:`InputError` names what is missing."""
        required = ("backend", "samples", "timesteps", "accuracy", "layers")
        if not isinstance(data, dict):
            raise InputError(f"{where}: expected a JSON object from lava-convert run --json")
        missing = [k for k in required if k not in data]
        if missing:
            raise InputError(f"{where} lacks {missing}: pass the JSON that "
                             "`lava-convert run --json` or `sweep --json` writes")
        names = {f.name for f in dataclasses.fields(cls)}
        layer_names = {f.name for f in dataclasses.fields(LayerSummary)}
        try:
            layers = tuple(LayerSummary(**{k: v for k, v in d.items() if k in layer_names})
                           for d in data["layers"])
            return cls(**{k: v for k, v in data.items() if k in names and k != "layers"},
                       layers=layers)
        except (TypeError, AttributeError) as exc:
            raise InputError(f"{where}: malformed ({exc}); pass the JSON that "
                             "`lava-convert run --json` writes") from exc
