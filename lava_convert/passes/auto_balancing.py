"""``balancing="auto"`` for networks of plain ReLUs: measure, then choose.

A network trained with clips (``ThresholdReLU``, ``QCFS``) has its thresholds: they are
the clips. A network of plain ReLUs does not, and which data-driven rule converts it
best at a given T depends on the network: the largest activation wastes resolution on
outliers, a percentile clips them, one threshold per channel (per neuron of a dense
layer) lets quiet channels fire, starting each neuron at half its threshold (``v0``)
instead of adding the shift to the bias changes the first steps, and bias calibration
removes each layer's mean conversion error, which at small T helps a network with one
threshold per layer most. This pass converts the network with every rule of
:data:`CANDIDATES` down to Loihi's fixed point (per-channel thresholds cost weight
resolution there, which a float simulation would not show), then once more with bias
calibration on :data:`AUTO_BIAS_CALIBRATION` samples for the best rule of each grain and
shift (:data:`FAMILIES`; when the config asks for no calibration of its own), simulates
each, Lava-exact, for ``config.timesteps`` on evaluation samples held out from those
calibration fits on, and keeps, of the candidates whose agreement with the ANN's
predictions is within the noise of the most agreeing one (:func:`within_noise`), the one
with the fewest spikes per inference (then the first measured: the simplest). The
measurement is kept for the sidecar and the ``convert`` output.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from ..config import ConversionConfig
from ..ir import AnnGraph, FixedNetwork
from ..quantize.scale import quantize
from ..sim.ann import logits
from ..sim.reference import simulate_fixed
from .balance import balance, layer_thresholds
from .calibration_data import held_out, spread

log = logging.getLogger(__name__)

#: Evaluation samples, spread evenly over the calibration data that bias calibration
#: does not fit on.
EVALUATION_SAMPLES = 1024
#: Fewest held-out evaluation samples; with fewer left over, the candidates are evaluated
#: on calibration samples (``held_out`` false in the measurement).
MIN_HELD_OUT = 128
#: Samples bias calibration fits on in the calibrated candidates, when the config sets
#: no ``bias_calibration`` of its own.
AUTO_BIAS_CALIBRATION = 256
#: Threshold rules, simplest first.
CANDIDATES: tuple[dict, ...] = tuple(
    {"balancing": balancing, **({"percentile": pct} if pct else {}),
     "channel_thresholds": per_channel, "shift": shift}
    for shift in ("bias", "v0")
    for per_channel in (False, True)
    for balancing, pct in (("max", None), ("percentile", 99.99), ("percentile", 99.9)))

#: The families whose best rule is measured again with bias calibration: how a rule
#: calibrates depends on its grain and its shift (measured: the ``auto_candidates``
#: section of benchmarks/RESULTS.md), not on its rank without calibration.
FAMILIES: tuple[dict, ...] = tuple({"channel_thresholds": per_channel, "shift": shift}
                                   for shift in ("bias", "v0") for per_channel in (False, True))

#: Converts with a config through the passes after this one (balance, calibrations,
#: quantization), as the pipeline would.
Converter = Callable[[ConversionConfig], FixedNetwork]


@dataclass(frozen=True)
class Candidate:
    """One measured candidate: its settings, how often its predictions agree with the
    ANN's on the evaluation samples, its spikes per inference (all layers), and whether
    its agreement is within the noise of the most agreeing candidate's (``tied``)."""

    settings: dict
    agreement: float
    spikes: float
    tied: bool = False

    def to_dict(self) -> dict:
        return {"settings": dict(self.settings), "agreement": self.agreement,
                "spikes": self.spikes, "tied": self.tied}


@dataclass(frozen=True)
class BalancingChoice:
    """What ``balancing="auto"`` measured and chose: each candidate on ``samples``
    evaluation samples at ``timesteps`` (``held_out``: none of them was fitted on by
    bias calibration)."""

    chosen: dict
    candidates: tuple[Candidate, ...]
    samples: int
    timesteps: int
    held_out: bool = True

    def to_dict(self) -> dict:
        return {"chosen": dict(self.chosen), "samples": self.samples,
                "timesteps": self.timesteps, "held_out": self.held_out,
                "candidates": [c.to_dict() for c in self.candidates]}

    @property
    def best(self) -> Candidate:
        return next(c for c in self.candidates if c.settings == self.chosen)

    def describe(self) -> str:
        where = "held-out calibration samples" if self.held_out else "calibration samples"
        tied = sum(c.tied for c in self.candidates)
        top = max(c.agreement for c in self.candidates)
        return (f"balancing auto chose {describe_settings(self.chosen)} (agrees with the ANN "
                f"on {100 * self.best.agreement:.1f} % of {self.samples} {where} at "
                f"T={self.timesteps}, {self.best.spikes:.0f} spikes per inference: the "
                f"fewest of the {tied} candidates within the noise of the best, "
                f"{100 * top:.1f} %; {len(self.candidates)} candidates measured)")


def describe_settings(settings: dict) -> str:
    rule = settings["balancing"]
    if rule == "percentile":
        rule = f"percentile {settings['percentile']:g}"
    grain = "per channel" if settings["channel_thresholds"] else "per layer"
    text = f"{rule} {grain}, shift {settings['shift']}"
    if settings.get("bias_calibration"):
        text += f", bias calibration ({settings['bias_calibration']} samples)"
    return text


def needs_choice(graph: AnnGraph, config: ConversionConfig) -> bool:
    """True for ``balancing="auto"`` on a network without a single trained clip."""
    return config.balancing == "auto" and not any(
        layer.activation in ("clip", "qcfs") for layer in graph.layers[:-1])


def choose_balancing(graph: AnnGraph, x: np.ndarray, config: ConversionConfig,
                     convert: Converter) -> tuple[ConversionConfig, BalancingChoice]:
    """The best candidate for ``graph`` (see the module docstring); the config with its
    settings, and the measurement. ``convert`` makes the calibrated candidates (and all
    of them when ``config`` already calibrates). Candidates the target cannot express
    (``v0`` on stock NetX) are left out."""
    own = (config.bias_calibration, config.potential_calibration, config.readout_calibration)
    calibrates = any(n > 0 for n in own)
    fitted = (own if calibrates
              else (AUTO_BIAS_CALIBRATION,))
    index = held_out(len(x), fitted, EVALUATION_SAMPLES)
    separate = len(index) >= MIN_HELD_OUT
    if not separate:  # too few samples left over: evaluate on the calibration data
        index = spread(len(x), EVALUATION_SAMPLES)
    samples = x[index]
    target = np.argmax(logits(graph, samples), axis=1)
    T = config.timesteps
    by_rule: dict = {}

    def direct(candidate: ConversionConfig) -> FixedNetwork:
        # no calibration: balance and quantize, the thresholds computed once per rule
        rule = (candidate.balancing, candidate.percentile, candidate.channel_thresholds)
        if rule not in by_rule:
            by_rule[rule] = layer_thresholds(graph, x, candidate)
        return quantize(balance(graph, x, candidate, by_rule[rule]), x, candidate)

    hits: list[np.ndarray] = []  # per candidate: the samples it agrees with the ANN on

    def measure(settings: dict, make: Converter) -> Candidate:
        run = simulate_fixed(make(config.replace(**settings)), samples, T)
        hits.append(run.predictions == target)
        result = Candidate(settings, float(np.mean(hits[-1])),
                           float(sum(run.spikes_per_sample().values())))
        log.info("balancing auto: %s agrees with the ANN on %.4f (%.0f spikes)",
                 describe_settings(settings), result.agreement, result.spikes)
        return result

    rules = [s for s in CANDIDATES if not (config.target == "stock-netx" and s["shift"] == "v0")]
    with _quiet("lava_convert.quantize", "lava_convert.sim"):
        measured = [measure(s, convert if calibrates else direct) for s in rules]
        if not calibrates:
            for family in FAMILIES:
                rules_of = [c for c in measured
                            if all(c.settings[k] == v for k, v in family.items())]
                if rules_of:  # none: v0 on stock NetX
                    measured.append(measure({**_best(rules_of).settings,
                                             "bias_calibration": AUTO_BIAS_CALIBRATION},
                                            convert))
    top = measured.index(_best(measured))
    measured = [dataclasses.replace(c, tied=within_noise(hits[i], hits[top]))
                for i, c in enumerate(measured)]
    chosen = min((c for c in measured if c.tied), key=lambda c: c.spikes).settings
    choice = BalancingChoice(chosen=chosen, candidates=tuple(measured), samples=len(index),
                             timesteps=T, held_out=separate)
    log.info("%s", choice.describe())
    return config.replace(**chosen), choice


def within_noise(hits: np.ndarray, best: np.ndarray) -> bool:
    """Whether a candidate that agrees with the ANN on the samples ``hits`` is as good as
    the one that agrees on ``best`` (same samples), as far as they tell: its shortfall is
    at most one standard error of the paired difference: ``sqrt(d)`` samples, for ``d``
    samples on which exactly one of the two agrees (McNemar's sign test at one sigma)."""
    d = int(np.sum(hits != best))
    return bool(int(best.sum()) - int(hits.sum()) <= np.sqrt(d))


def _best(candidates: list[Candidate]) -> Candidate:
    """Most agreement; then fewest spikes; then the first."""
    order = range(len(candidates))
    return candidates[max(order, key=lambda i: (candidates[i].agreement,
                                                -candidates[i].spikes, -i))]


@contextmanager
def _quiet(*names: str) -> Iterator[None]:
    """Hold back the warnings of these loggers below errors: they would be about candidate
    networks that are not kept (the kept one is converted again and warns then)."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
