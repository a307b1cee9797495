"""What each conversion target allows, in one record per target (as sinabs'
``ConfigBuilder.get_constraints``): the config checks it, the target pass checks the
network against it, the quantizer and ``balancing="auto"`` read it. A new target is one
more :class:`Target` in :data:`TARGETS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class Target:
    """One target: where its files run and what they can express.

    Attributes:
        name: The ``ConversionConfig.target`` / ``--target`` value.
        runs_on: What runs its files, for messages and help.
        resets: The neuron resets it can express.
        readouts: The readouts it can express.
        initial_potential: Whether neurons can start at a ``v0`` other than 0.
        residual: Whether a layer can take shortcuts from earlier layers.
        free_bias_exponent: Whether a layer's bias exponent can grow past NetX's fixed 6
            (else the 13-bit bias mantissa limits the layer's scale).
        settings: The config settings it needs (applied by
            ``ConversionConfig.for_target`` and ``--target`` unless given).
        neuron: The neurons its files hold: ``"lif"`` (integrate-and-fire, rate-coded
            spikes) or ``"sdnn"`` (sigma-delta neurons, graded messages).
        balancings: The ``balancing`` rules it takes (for sigma-delta neurons: what sets
            each layer's activation range, and so its message scale).
        requires: Settings that must hold exactly these values (what its neurons have no
            use for: the shift, calibrations of spike rates, per-channel thresholds).
    """

    name: str
    runs_on: str
    resets: tuple[str, ...]
    readouts: tuple[str, ...]
    initial_potential: bool
    residual: bool
    free_bias_exponent: bool
    settings: Mapping[str, Any] = field(default_factory=dict)
    neuron: str = "lif"
    balancings: tuple[str, ...] = ("auto", "clip", "max", "percentile")
    requires: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "settings", MappingProxyType(dict(self.settings)))
        object.__setattr__(self, "requires", MappingProxyType(dict(self.requires)))

    @property
    def quoted(self) -> str:
        """``target='NAME' (what runs it)``, as messages name it."""
        return f"target={self.name!r} ({self.runs_on})"


#: Every target, by name; the first is the default.
TARGETS: Mapping[str, Target] = MappingProxyType({
    "lava-convert": Target(
        name="lava-convert", runs_on="lava_convert.netx.Network: soft reset, v0, shortcuts",
        resets=("soft", "hard"), readouts=("potential", "spikes"), initial_potential=True,
        residual=True, free_bias_exponent=True),
    "stock-netx": Target(
        name="stock-netx", runs_on="stock NetX builds Lava's hard-reset LIF, starts v at 0 "
        "and is read through output spikes",
        resets=("hard",), readouts=("spikes",), initial_potential=False, residual=False,
        free_bias_exponent=False, settings={"reset": "hard", "readout": "spikes"}),
    "sdnn": Target(
        name="sdnn", runs_on="stock NetX's sigma-delta neurons: Lava's Delta, SigmaDelta "
        "(ReLU) and graded messages; no shortcuts; clips as two ReLU populations",
        resets=("soft", "hard"), readouts=("potential",), initial_potential=False,
        residual=False, free_bias_exponent=False, neuron="sdnn",
        balancings=("max", "percentile"),
        settings={"balancing": "max", "shift": "none"},
        requires={"shift": "none", "channel_thresholds": False, "bias_calibration": 0,
                  "potential_calibration": 0, "readout_calibration": 0}),
})


def target_rules(name: str) -> Target:
    """The :class:`Target` called ``name`` (``ConversionConfig`` has checked it exists)."""
    return TARGETS[name]
