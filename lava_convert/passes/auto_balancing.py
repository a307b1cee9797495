"""``balancing="auto"`` for networks of plain ReLUs: measure, then choose.

A network trained with clips (``ThresholdReLU``, ``QCFS``) has its thresholds: they are
the clips. A network of plain ReLUs does not, and which data-driven rule converts it
best at a given T depends on the network: the largest activation wastes resolution on
outliers, a percentile clips them, one threshold per channel lets quiet channels fire,
and starting each neuron at half its threshold (``v0``) instead of adding the shift to
the bias changes the first steps. This pass converts the network with every candidate
in :data:`CANDIDATES` down to Loihi's fixed point (per-channel thresholds cost weight
resolution there, which a float simulation would not show), simulates each,
Lava-exact, for ``config.timesteps`` on evaluation samples spread over the calibration
data, and keeps the one whose predictions agree with the ANN's most often (the first
listed wins ties: the simplest). The measurement is kept for the sidecar and the
``convert`` output.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..config import ConversionConfig
from ..ir import AnnGraph
from ..quantize.scale import quantize
from ..sim.ann import logits
from ..sim.reference import simulate_fixed
from .balance import balance, layer_thresholds

log = logging.getLogger(__name__)

#: Evaluation samples (spread evenly over the calibration data).
EVALUATION_SAMPLES = 512
#: Candidate settings, simplest first.
CANDIDATES: tuple[dict, ...] = tuple(
    {"balancing": balancing, **({"percentile": pct} if pct else {}),
     "channel_thresholds": per_channel, "shift": shift}
    for shift in ("bias", "v0")
    for per_channel in (False, True)
    for balancing, pct in (("max", None), ("percentile", 99.99), ("percentile", 99.9)))


@dataclass(frozen=True)
class BalancingChoice:
    """What ``balancing="auto"`` measured and chose: each candidate's settings and its
    agreement with the ANN on ``samples`` evaluation samples at ``timesteps``."""

    chosen: dict
    candidates: tuple[tuple[dict, float], ...]
    samples: int
    timesteps: int

    def to_dict(self) -> dict:
        return {"chosen": dict(self.chosen), "samples": self.samples,
                "timesteps": self.timesteps,
                "candidates": [{"settings": dict(s), "agreement": a}
                               for s, a in self.candidates]}

    @property
    def agreement(self) -> float:
        return max(a for _, a in self.candidates)

    def describe(self) -> str:
        return (f"balancing auto chose {describe_settings(self.chosen)} (agrees with the ANN "
                f"on {100 * self.agreement:.1f} % of {self.samples} calibration samples at "
                f"T={self.timesteps})")


def describe_settings(settings: dict) -> str:
    rule = settings["balancing"]
    if rule == "percentile":
        rule = f"percentile {settings['percentile']:g}"
    grain = "per channel" if settings["channel_thresholds"] else "per layer"
    return f"{rule} {grain}, shift {settings['shift']}"


def needs_choice(graph: AnnGraph, config: ConversionConfig) -> bool:
    """True for ``balancing="auto"`` on a network without a single trained clip."""
    return config.balancing == "auto" and not any(
        layer.activation in ("clip", "qcfs") for layer in graph.layers[:-1])


def choose_balancing(graph: AnnGraph, x: np.ndarray,
                     config: ConversionConfig) -> tuple[ConversionConfig, BalancingChoice]:
    """The best of :data:`CANDIDATES` for ``graph`` (see the module docstring); the
    config with its settings, and the measurement. Candidates the target cannot express
    (``v0`` on stock NetX) are left out."""
    n = min(EVALUATION_SAMPLES, len(x))
    samples = x[np.linspace(0, len(x) - 1, n).astype(int)]
    target = np.argmax(logits(graph, samples), axis=1)
    T = config.timesteps
    measured, by_rule = [], {}
    for settings in CANDIDATES:
        if config.target == "stock-netx" and settings["shift"] == "v0":
            continue
        candidate = config.replace(**settings)
        # the thresholds depend on the rule, not on the shift: computed once per rule
        rule = (candidate.balancing, candidate.percentile, candidate.channel_thresholds)
        if rule not in by_rule:
            by_rule[rule] = layer_thresholds(graph, x, candidate)
        fixed = quantize(balance(graph, x, candidate, by_rule[rule]), x, candidate)
        agreement = float(np.mean(simulate_fixed(fixed, samples, T).predictions == target))
        measured.append((settings, agreement))
        log.info("balancing auto: %s agrees with the ANN on %.4f", describe_settings(settings),
                 agreement)
    best = max(range(len(measured)), key=lambda i: (measured[i][1], -i))
    chosen = measured[best][0]
    choice = BalancingChoice(chosen=chosen, candidates=tuple(measured), samples=n,
                             timesteps=T)
    log.info("%s", choice.describe())
    return config.replace(**chosen), choice
