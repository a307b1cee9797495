"""Energy per sample, as an estimate that says what it is.

Three figures from a run's operation counts (:mod:`lava_convert.report.cost`):

* **dynamic**: synaptic operations and neuron updates at published per-operation
  energies. It is a lower bound: routing between cores, input encoding, host I/O and
  static power are left out, and every neuron update is costed as an inactive one
  (``dynamic_upper_j`` costs them all as active ones);
* **static-inclusive**: the dynamic figure plus static power for the time the sample
  occupies the chip (``T`` steps of ``step_time_s``, pipelined: one sample per ``T``
  steps). On Loihi static power dominates small networks, so this is the figure to put
  beside a measurement;
* **ANN baselines**: the ANN's multiply-accumulates of the same (folded) layers, at the
  energy of a 32-bit float MAC and of an int8 MAC (multiply and add), dynamic only.

Every constant is a field of :class:`EnergyModel`, with its source in
:data:`SOURCES`; pass your own model to change any of them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from types import MappingProxyType

from ..errors import ConfigError

#: Where each :class:`EnergyModel` default comes from.
SOURCES = MappingProxyType({
    "synop_j": "Loihi 1 synaptic spike operation, 23.6 pJ (Davies et al., IEEE Micro "
               "38(1), 2018, Table 1)",
    "neuron_update_inactive_j": "Loihi 1 inactive neuron update, 52 pJ (Davies et al. "
                                "2018, Table 1)",
    "neuron_update_active_j": "Loihi 1 active neuron update, 81 pJ (Davies et al. 2018, "
                              "Table 1)",
    "static_power_w": "Loihi 1 Nahuku board at idle, about 0.9 W (reported board power; "
                      "an assumption for other systems)",
    "step_time_s": "assumption: real-time operation at 1 ms per time step (the step of "
                   "a 1 ms dt model); a chip free-running at its own pace steps faster",
    "mac_fp32_j": "32-bit float multiply-accumulate, 4.6 pJ (3.7 pJ multiply + 0.9 pJ "
                  "add, 45 nm; Horowitz, ISSCC 2014)",
    "mac_int8_j": "8-bit integer multiply-accumulate, 0.23 pJ (0.2 pJ multiply + 0.03 pJ "
                  "add, 45 nm; Horowitz, ISSCC 2014)",
})


@dataclass(frozen=True)
class EnergyModel:
    """Per-operation energies (joules), static power (watts) and step time (seconds);
    the defaults' sources are in :data:`SOURCES`."""

    synop_j: float = 23.6e-12
    neuron_update_inactive_j: float = 52e-12
    neuron_update_active_j: float = 81e-12
    static_power_w: float = 0.9
    step_time_s: float = 1e-3
    mac_fp32_j: float = 4.6e-12
    mac_int8_j: float = 0.23e-12

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                    0 <= value < float("inf")):
                raise ConfigError(f"EnergyModel.{name} = {value!r}: use a finite number "
                                  f">= 0 (default {getattr(type(self), name)!r}: "
                                  f"{SOURCES[name]})")


@dataclass(frozen=True)
class EnergyEstimate:
    """Energy per sample (joules), each figure an estimate (see the module docstring).

    Attributes:
        dynamic_j: Synaptic operations and neuron updates (inactive cost): a lower bound.
        dynamic_upper_j: The same with every neuron update at the active cost.
        static_j: Static power times ``timesteps`` steps of the model's step time.
        ann_fp32_j: The ANN's MACs at the float32 MAC energy.
        ann_int8_j: The ANN's MACs at the int8 MAC energy.
        model: The constants used.
    """

    timesteps: int
    dynamic_j: float
    dynamic_upper_j: float
    static_j: float
    ann_fp32_j: float
    ann_int8_j: float
    model: EnergyModel = field(default_factory=EnergyModel)

    @property
    def total_j(self) -> float:
        """The static-inclusive figure: dynamic (lower bound) plus static."""
        return self.dynamic_j + self.static_j

    def to_dict(self) -> dict:
        default = asdict(EnergyModel())
        return {"timesteps": self.timesteps, "dynamic_j": self.dynamic_j,
                "dynamic_upper_j": self.dynamic_upper_j, "static_j": self.static_j,
                "total_j": self.total_j, "ann_fp32_j": self.ann_fp32_j,
                "ann_int8_j": self.ann_int8_j, "model": asdict(self.model),
                "sources": {k: SOURCES[k] if v == default[k] else "given"
                            for k, v in asdict(self.model).items()},
                "note": "estimates from published per-operation energies and stated "
                        "assumptions, not measurements"}


def estimate_energy(synops: float, neuron_updates: float, ann_macs: float, timesteps: int,
                    model: EnergyModel | None = None) -> EnergyEstimate:
    """The estimate for one sample's counts: ``synops`` synaptic operations,
    ``neuron_updates`` neuron updates (neurons times steps), the ANN's ``ann_macs``, at
    ``timesteps`` steps per sample."""
    m = model or EnergyModel()
    return EnergyEstimate(
        timesteps=timesteps,
        dynamic_j=synops * m.synop_j + neuron_updates * m.neuron_update_inactive_j,
        dynamic_upper_j=synops * m.synop_j + neuron_updates * m.neuron_update_active_j,
        static_j=m.static_power_w * timesteps * m.step_time_s,
        ann_fp32_j=ann_macs * m.mac_fp32_j, ann_int8_j=ann_macs * m.mac_int8_j, model=m)


def energy_rows(energy: dict) -> list[list[str]]:
    """Table rows (figure, uJ, what it counts) for an :meth:`EnergyEstimate.to_dict`."""
    m, src = energy["model"], energy["sources"]
    return [
        ["Loihi dynamic (lower bound)", f"{1e6 * energy['dynamic_j']:.3f}",
         f"synaptic ops at {1e12 * m['synop_j']:g} pJ ({src['synop_j']}); neuron updates "
         f"at {1e12 * m['neuron_update_inactive_j']:g} pJ "
         f"({src['neuron_update_inactive_j']})"],
        ["Loihi dynamic, every update active", f"{1e6 * energy['dynamic_upper_j']:.3f}",
         f"neuron updates at {1e12 * m['neuron_update_active_j']:g} pJ "
         f"({src['neuron_update_active_j']})"],
        ["Loihi with static power", f"{1e6 * energy['total_j']:.3f}",
         f"dynamic + {m['static_power_w']:g} W ({src['static_power_w']}) x "
         f"{energy['timesteps']} steps x {1e3 * m['step_time_s']:g} ms "
         f"({src['step_time_s']})"],
        ["ANN, float32 MACs", f"{1e6 * energy['ann_fp32_j']:.3f}", src["mac_fp32_j"]],
        ["ANN, int8 MACs", f"{1e6 * energy['ann_int8_j']:.3f}", src["mac_int8_j"]]]


def energy_lines(energy: dict) -> list[str]:
    """Labelled lines for an :meth:`EnergyEstimate.to_dict` (what ``run`` and ``report``
    show)."""
    m = energy["model"]
    return [
        f"energy per sample (estimates): Loihi dynamic >= {1e6 * energy['dynamic_j']:.3f} uJ "
        f"(up to {1e6 * energy['dynamic_upper_j']:.3f} uJ with every neuron update "
        f"active); with static power {1e6 * energy['total_j']:.1f} uJ "
        f"({m['static_power_w']:g} W x {energy['timesteps']} steps x "
        f"{1e3 * m['step_time_s']:g} ms, assumed)",
        f"ANN on the same layers: {1e6 * energy['ann_fp32_j']:.3f} uJ float32, "
        f"{1e6 * energy['ann_int8_j']:.3f} uJ int8 (MACs only)"]
