"""``balancing="auto"``: measure, then choose.

Which threshold rule converts a network best at a given T depends on the network. A
network of plain ReLUs has no thresholds of its own: the largest activation wastes
resolution on outliers, a percentile clips them. A network trained with clips
(``ThresholdReLU``, ``QCFS``) has its clips, but a channel that never reaches its clip
fires more often, and so more finely, with a threshold of its own. On both, one
threshold per channel (per neuron of a dense layer) lets quiet channels fire, starting
each neuron at half its threshold (``v0``) instead of adding the shift to the bias
changes the first steps (in a deep network at small T, the later layers' share of the T
steps), and bias calibration removes each layer's mean conversion error, which at small
T helps a network with one threshold per layer most. This pass converts the network with
every rule of :data:`CANDIDATES` (plain ReLUs) or :data:`CLIPPED_CANDIDATES` (every
hidden layer clipped) down to Loihi's fixed point (per-channel thresholds cost weight
resolution there, which a float simulation would not show) and simulates each,
Lava-exact, for ``config.timesteps`` on a screening subset of evaluation samples held
out from those calibration fits on; the :data:`FINALISTS` best rules are then measured
on all evaluation samples, and so is the best rule of each of the
:data:`CALIBRATED_FAMILIES` best families (grain and shift) once more with bias
calibration (when the config asks for no calibration of its own). Sample counts shrink,
and one family is calibrated, for networks whose simulation costs more than
:data:`AUTO_BUDGET` (:func:`evaluation_plan`), so the choice costs a few fixed-point
checks at any size; the rule statistics share one ANN forward pass
(:func:`~lava_convert.passes.balance.shared_activations`). Of the candidates measured on
all samples whose agreement with the ANN's predictions is within the noise of the most
agreeing one (:func:`within_noise`), it keeps the one with the fewest spikes per
inference (then the first measured: the simplest), and the pipeline goes on from its
conversion (nothing is converted twice). The measurement is kept for the sidecar and the
``convert`` output.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np
from tqdm.auto import tqdm

from ..config import ConversionConfig
from ..errors import CalibrationError
from ..ir import AnnGraph, FixedNetwork
from ..sim.reference import simulate_fixed
from ..targets import target_rules
from .acceptance import ann_predictions, within_noise
from .balance import shared_activations
from .calibration_data import held_out, spread

log = logging.getLogger(__name__)

#: Evaluation samples, spread evenly over the calibration data that bias calibration
#: does not fit on; fewest, for networks whose simulation costs more than the budget.
EVALUATION_SAMPLES, MIN_EVALUATION = 1024, 64
#: Samples every rule is screened on (at most; an eighth of the evaluation samples);
#: fewest.
SCREEN_SAMPLES, MIN_SCREEN = 128, 32
#: Fewest held-out evaluation samples; with fewer left over, the candidates are evaluated
#: on calibration samples (``held_out`` false in the measurement).
MIN_HELD_OUT = 128
#: Samples bias calibration fits on in the calibrated candidates, when the config sets
#: no ``bias_calibration`` of its own (fewer for large networks).
AUTO_BIAS_CALIBRATION = 256
#: Rules measured on all evaluation samples after screening.
FINALISTS = 3
#: Families (grain and shift) whose best screened rule is measured with bias calibration
#: (one for networks past the budget).
CALIBRATED_FAMILIES = 2
#: Multiplications per candidate the evaluation may spend (times T, per sample, see
#: :func:`evaluation_plan`): MNIST-sized networks get every sample, a CIFAR VGG at
#: T=16 the fewest.
AUTO_BUDGET = 2**37
#: Threshold rules, simplest first.
CANDIDATES: tuple[dict, ...] = tuple(
    {"balancing": balancing, **({"percentile": pct} if pct else {}),
     "channel_thresholds": per_channel, "shift": shift}
    for shift in ("bias", "v0")
    for per_channel in (False, True)
    for balancing, pct in (("max", None), ("percentile", 99.99), ("percentile", 99.9)))
#: Threshold rules for a network whose every hidden layer has a trained clip
#: (``ThresholdReLU``, ``QCFS``): the clips themselves, or one threshold per channel from
#: the data (its largest activation, which the clip bounds: a channel that never reaches
#: its clip fires more often), each with either shift. Simplest first.
CLIPPED_CANDIDATES: tuple[dict, ...] = tuple(
    {"balancing": balancing, "channel_thresholds": per_channel, "shift": shift}
    for shift in ("bias", "v0")
    for balancing, per_channel in (("clip", False), ("max", True)))


class Converted(Protocol):
    """What a :data:`Converter` returns: anything that holds the fixed-point network."""

    fixed: FixedNetwork


#: Converts with a config through the passes after this one (balance, calibrations,
#: quantization), as the pipeline would.
Converter = Callable[[ConversionConfig], Converted]


@dataclass(frozen=True)
class Candidate:
    """One measured candidate: its settings, how often its predictions agree with the
    ANN's on the ``samples`` evaluation samples it was measured on (all of them, or the
    screening subset for a rule screened out), its spikes per inference (all layers), and
    whether its agreement is within the noise of the most agreeing candidate's
    (``tied``; only candidates measured on all samples can tie)."""

    settings: dict
    agreement: float
    spikes: float
    tied: bool = False
    samples: int = 0

    def to_dict(self) -> dict:
        return {"settings": dict(self.settings), "agreement": self.agreement,
                "spikes": self.spikes, "tied": self.tied, "samples": self.samples}


@dataclass(frozen=True)
class BalancingChoice:
    """What ``balancing="auto"`` measured and chose: every rule screened on
    ``screened`` samples, the promising ones measured on all ``samples`` evaluation
    samples at ``timesteps`` (``held_out``: none of them was fitted on by bias
    calibration); ``skipped``: the rules that could not convert the network, each with
    the reason (per-channel maxima of a layer silent on the calibration data; a rule with
    one threshold per layer that fails fails the conversion: no rule could set that layer)."""

    chosen: dict
    candidates: tuple[Candidate, ...]
    samples: int
    timesteps: int
    held_out: bool = True
    screened: int = 0
    skipped: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"chosen": dict(self.chosen), "samples": self.samples,
                "screened": self.screened, "timesteps": self.timesteps,
                "held_out": self.held_out, "candidates": [c.to_dict() for c in self.candidates],
                "skipped": list(self.skipped)}

    @property
    def best(self) -> Candidate:
        return next(c for c in self.candidates if c.settings == self.chosen)

    def describe(self) -> str:
        where = "held-out calibration samples" if self.held_out else "calibration samples"
        tied = sum(c.tied for c in self.candidates)
        final = [c for c in self.candidates if c.samples == self.samples]
        top = max(c.agreement for c in final)
        return (f"balancing auto chose {describe_settings(self.chosen)} (agrees with the ANN "
                f"on {100 * self.best.agreement:.1f} % of {self.samples} {where} at "
                f"T={self.timesteps}, {self.best.spikes:.0f} spikes per inference: the "
                f"fewest of the {tied} candidates within the noise of the best, "
                f"{100 * top:.1f} %; {len(self.candidates)} candidates screened on "
                f"{self.screened} samples, {len(final)} measured on all {self.samples}"
                + (f"; {len(self.skipped)} could not convert it" if self.skipped else "")
                + ")")


def describe_settings(settings: dict) -> str:
    rule = settings["balancing"]
    if rule == "percentile":
        rule = f"percentile {settings['percentile']:g}"
    grain = "per channel" if settings["channel_thresholds"] else "per layer"
    text = f"{rule} {grain}, shift {settings['shift']}"
    if settings.get("bias_calibration"):
        text += f", bias calibration ({settings['bias_calibration']} samples)"
    return text


def needs_choice(config: ConversionConfig) -> bool:
    """True for ``balancing="auto"``: on every kind of network, the rule is measured."""
    return config.balancing == "auto"


#: Settings of a rule that a caller may fix while ``auto`` chooses the rest.
PINNABLE = ("shift", "channel_thresholds")


def candidate_rules(graph: AnnGraph, config: ConversionConfig,
                    pinned: frozenset[str] = frozenset()) -> tuple[dict, ...]:
    """The rules ``auto`` measures on ``graph``: :data:`CLIPPED_CANDIDATES` when every
    hidden layer has a trained clip, else :data:`CANDIDATES` (on a layer with a clip,
    ``max`` and the percentiles read its clipped activations); without those starting at
    ``v0`` where the target has no initial potential (stock NetX). The settings of
    :data:`PINNABLE` named in ``pinned`` (those the caller gave) keep the config's value
    in every rule (rules that then coincide are measured once)."""
    clipped = all(layer.activation in ("clip", "qcfs") for layer in graph.layers[:-1])
    fixed = {k: getattr(config, k) for k in PINNABLE if k in pinned}
    rules = [{**s, **fixed} for s in (CLIPPED_CANDIDATES if clipped else CANDIDATES)]
    starts = target_rules(config.target).initial_potential
    return tuple(s for i, s in enumerate(rules)
                 if (starts or s["shift"] != "v0") and s not in rules[:i])


@dataclass(frozen=True)
class EvaluationPlan:
    """How many samples ``balancing="auto"`` spends: ``evaluate`` (the finalists and the
    calibrated candidates are measured on all of them), ``screen`` (every rule), ``fit``
    (bias calibration of the calibrated candidates), and how many families get a
    calibrated candidate (``families``)."""

    evaluate: int
    screen: int
    fit: int
    families: int


def evaluation_plan(per_sample: int, available: int) -> EvaluationPlan:
    """The sample counts for a network whose simulation costs ``per_sample``
    multiplications per sample (:func:`~lava_convert.sim.kernels.products_per_step` times
    T), with ``available`` samples to evaluate on: ``EVALUATION_SAMPLES``,
    ``SCREEN_SAMPLES``, ``AUTO_BIAS_CALIBRATION`` and ``CALIBRATED_FAMILIES`` while the
    evaluation fits ``AUTO_BUDGET``; for larger networks fewer samples (down to
    ``MIN_EVALUATION`` and ``MIN_SCREEN``) and one calibrated family (a calibrated
    candidate simulates its fit samples about ten times: it costs as much as several
    screened rules)."""
    per_sample = max(1, per_sample)
    fits = AUTO_BUDGET // per_sample >= EVALUATION_SAMPLES
    evaluate = min(available, max(MIN_EVALUATION, min(EVALUATION_SAMPLES,
                                                      AUTO_BUDGET // per_sample)))
    screen = min(evaluate, max(MIN_SCREEN, min(SCREEN_SAMPLES, evaluate // 8)))
    fit = max(MIN_SCREEN, min(AUTO_BIAS_CALIBRATION, AUTO_BUDGET // (4 * per_sample)))
    return EvaluationPlan(evaluate, screen, fit, CALIBRATED_FAMILIES if fits else 1)


C = TypeVar("C", bound=Converted)


def choose_balancing(graph: AnnGraph, x: np.ndarray, config: ConversionConfig,
                     convert: Callable[[ConversionConfig], C], progress: bool = False,
                     pinned: frozenset[str] = frozenset()
                     ) -> tuple[ConversionConfig, BalancingChoice, C]:
    """The best candidate for ``graph`` (see the module docstring): the config with its
    settings, the measurement, and the kept candidate's conversion (what ``convert``
    returned for it: the pipeline goes on from there). ``convert`` makes every
    candidate. Candidates the target cannot express (``v0`` where it has no initial
    potential: stock NetX) are left out, and settings the caller gave (``pinned``) are kept
    (:func:`candidate_rules`).

    Successive halving keeps the cost near a few fixed-point checks: every rule is
    screened on ``screen`` samples spread over the evaluation samples; the
    ``FINALISTS`` best, and bias calibration of the best rule of the
    ``CALIBRATED_FAMILIES`` best families (grain and shift), are measured on all of them.
    The multiplications one sample's simulation costs
    (:func:`~lava_convert.sim.kernels.products_per_step` times T) size the sample counts
    and the calibrated families (:func:`evaluation_plan`). Only the conversions that can
    still be kept are held (the best ``FINALISTS`` screened so far, then the ones measured
    on all samples).
    ``progress`` shows a bar naming the candidate."""
    from ..sim.kernels import products_per_step

    own = (config.bias_calibration, config.potential_calibration, config.readout_calibration)
    calibrates = any(n > 0 for n in own)
    rules = candidate_rules(graph, config, pinned)
    T = config.timesteps

    with shared_activations(graph, x), _quiet("lava_convert.quantize", "lava_convert.sim"), \
            tqdm(total=len(rules), desc="balancing auto", unit="candidate", leave=False,
                 disable=not progress) as bar:
        skipped: list[str] = []  # rules that cannot convert this network, and why

        def attempt(settings: dict) -> C | None:
            """``settings``' conversion, or ``None`` (recorded in ``skipped``) where
            per-channel maxima meet a layer silent on the calibration data; with one
            threshold per layer such a layer fails every rule, so the error stands."""
            try:
                return convert(config.replace(**settings))
            except CalibrationError as exc:
                if not settings["channel_thresholds"]:
                    raise
                skipped.append(f"{describe_settings(settings)}: {exc}")
                log.info("balancing auto: %s", skipped[-1])
                bar.update()
                return None

        start, first = 0, attempt(rules[0])  # the first rule that converts sizes the plan
        while first is None and start + 1 < len(rules):
            start += 1
            first = attempt(rules[start])
        if first is None:
            raise CalibrationError(f"balancing='auto': no rule converts this network "
                                   f"({'; '.join(skipped)})")
        plan = evaluation_plan(products_per_step(first.fixed) * config.timesteps, len(x))
        n_eval, n_screen, n_fit = plan.evaluate, plan.screen, plan.fit
        fitted = own if calibrates else (n_fit,)
        index = held_out(len(x), fitted, n_eval)
        separate = len(index) >= min(MIN_HELD_OUT, n_eval)
        if not separate:  # too few samples left over: evaluate on the calibration data
            index = spread(len(x), n_eval)
        samples = x[index]
        screen = spread(len(samples), n_screen)
        rest = np.setdiff1d(np.arange(len(samples)), screen)
        target = ann_predictions(graph, samples)
        kept: dict[int, C] = {}  # the conversions that can still be chosen
        # per candidate and evaluation sample: agrees with the ANN (-1: not measured), spikes
        hits: dict[int, np.ndarray] = {}
        spikes: dict[int, np.ndarray] = {}
        settings_of: list[dict] = []

        def run(k: int, which: np.ndarray) -> None:
            result = simulate_fixed(kept[k].fixed, samples[which], T)
            hits[k][which] = result.predictions == target[which]
            spikes[k][which] = np.sum([v.sum(axis=1) for v in result.spike_counts.values()],
                                      axis=0)

        def measure(settings: dict, which: np.ndarray, converted: C | None = None) -> None:
            bar.set_postfix_str(describe_settings(settings))
            network = converted if converted is not None else attempt(settings)
            if network is None:
                return
            k = len(settings_of)
            settings_of.append(settings)
            kept[k] = network
            hits[k], spikes[k] = np.full(len(samples), -1), np.full(len(samples), np.nan)
            run(k, which)
            log.info("balancing auto: %s agrees with the ANN on %.4f of %d samples (%.0f "
                     "spikes)", describe_settings(settings), _agreement(hits[k]),
                     int(np.sum(hits[k] >= 0)), float(np.nanmean(spikes[k])))
            bar.update()

        def ranked() -> list[int]:
            return sorted(range(len(settings_of)),
                          key=lambda k: (-_agreement(hits[k]), np.nanmean(spikes[k]), k))

        for i, settings in enumerate(rules[start:], start=start):  # screening
            measure(settings, screen, first if i == start else None)
            leaders = ranked()[:FINALISTS]
            kept = {k: kept[k] for k in leaders}  # the others are done with (memory)
        finalists = ranked()[:FINALISTS]
        bar.total += len(finalists)
        for k in finalists:  # the rest of the evaluation samples
            bar.set_postfix_str(describe_settings(settings_of[k]))
            if len(rest):
                run(k, rest)
            bar.update()
        if not calibrates:
            families = []
            for k in ranked():  # the best rule of each family, best families first
                family = {f: settings_of[k][f] for f in ("channel_thresholds", "shift")}
                if family not in [f for f, _ in families]:
                    families.append((family, k))
            families = families[:plan.families]
            bar.total += len(families)
            for _, k in families:
                measure({**settings_of[k], "bias_calibration": n_fit}, np.arange(len(samples)))
    complete = [k for k in range(len(settings_of)) if np.all(hits[k] >= 0)]
    top = max(complete, key=lambda k: (hits[k].sum(), -spikes[k].mean(), -k))
    measured = [Candidate(settings_of[k], _agreement(hits[k]), float(np.nanmean(spikes[k])),
                          tied=k in complete and within_noise(hits[k] == 1, hits[top] == 1),
                          samples=int(np.sum(hits[k] >= 0)))
                for k in range(len(settings_of))]
    chosen = min((k for k in range(len(measured)) if measured[k].tied),
                 key=lambda k: measured[k].spikes)
    choice = BalancingChoice(chosen=measured[chosen].settings, candidates=tuple(measured),
                             samples=len(samples), timesteps=T, held_out=separate,
                             screened=len(screen), skipped=tuple(skipped))
    log.info("%s", choice.describe())
    return config.replace(**choice.chosen), choice, kept[chosen]


def _agreement(hits: np.ndarray) -> float:
    """Share of the measured samples (``hits >= 0``) on which a candidate agrees."""
    return float(np.mean(hits[hits >= 0] == 1))


@contextmanager
def _quiet(*names: str) -> Iterator[None]:
    """Hold back the warnings of these loggers below errors: they would be about candidate
    networks that are not kept (the kept one's quantization warnings are in its
    :class:`~lava_convert.ir.LayerQuantization` records, and the pipeline logs them)."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
