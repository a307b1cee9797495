"""The pass order, declared in one place: the :class:`Stage` the passes hand on, each pass
as a named function with a log line (and an entry in the sidecar's ``passes``), and
:data:`PASSES` / :data:`IMPORT_PASSES`, the orders :func:`run_passes` follows (the
picture is in :mod:`lava_convert.pipeline`).
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from ..config import ConversionConfig
from ..ir import AnnGraph, FixedNetwork, SnnNetwork
from ..passes.acceptance import agreement, ann_predictions, keep_if_agrees
from ..passes.auto_balancing import BalancingChoice, choose_balancing, needs_choice
from ..passes.balance import balance
from ..passes.bias_calibration import calibrate_biases
from ..passes.calibration_data import spread
from ..passes.potential_calibration import calibrate_potentials
from ..passes.readout_calibration import ReadoutFit, calibrate_readout
from ..passes.target import check_target
from ..quantize.check import check_fixed_point
from ..quantize.scale import on_grid, quantize
from ..quantize.sigma_delta import quantize_sigma_delta
from ..sim.ann import logits
from ..sim.reference import simulate_fixed, simulate_float
from ..targets import target_rules

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stage:
    """What the passes hand on: the traced graph, the calibration samples, the settings,
    and the networks made so far (``snn``: float; ``fixed``: Loihi integers)."""

    graph: AnnGraph | None
    x: np.ndarray
    config: ConversionConfig
    snn: SnnNetwork | None = None
    fixed: FixedNetwork | None = None
    progress: bool = False
    balancing_choice: BalancingChoice | None = None
    readout_fit: ReadoutFit | None = None
    #: Settings the caller gave explicitly: ``balancing="auto"`` keeps them
    #: (:data:`~lava_convert.passes.auto_balancing.PINNABLE`).
    given: frozenset[str] = frozenset()
    #: Passes whose results the stage already holds (``balancing="auto"`` hands on the
    #: kept candidate's conversion): :func:`run_passes` records them without running them.
    converted: tuple[str, ...] = ()

    def calibration_samples(self, n: int | None = None) -> np.ndarray:
        """``n`` (default ``config.bias_calibration``) samples spread evenly over the
        calibration data."""
        return self.x[spread(len(self.x), self.config.bias_calibration if n is None else n)]


def _target(stage: Stage) -> Stage:
    """Refuse what ``config.target`` cannot express (stock NetX: residual shortcuts;
    :func:`~lava_convert.passes.target.check_target`)."""
    check_target(stage.graph, stage.config)
    return stage


def _auto_balancing(stage: Stage) -> Stage:
    """For ``balancing="auto"``: convert with each candidate rule (through
    :data:`CANDIDATE_PASSES`, some with bias calibration), measure agreement with the ANN
    at T, keep the one with the fewest spikes among those as good as the best (its
    settings replace the config's;
    :func:`~lava_convert.passes.auto_balancing.choose_balancing`). The kept candidate's
    conversion is the stage handed on: the passes it ran are not run again, and its
    quantization warnings, held back while candidates were measured, are logged."""
    def convert(config: ConversionConfig) -> Stage:
        candidate = dataclasses.replace(stage, config=config, progress=False)
        result, ran = run_passes(candidate, CANDIDATE_PASSES, progress=False)
        return dataclasses.replace(result, converted=ran)

    config, choice, kept = choose_balancing(stage.graph, stage.x, stage.config, convert,
                                            progress=stage.progress, pinned=stage.given)
    for record in kept.fixed.quantization:
        for warning in record.warnings:
            log.warning("%s", warning)
    return dataclasses.replace(kept, config=config, balancing_choice=choice,
                               progress=stage.progress)


def _sigma_delta(stage: Stage) -> Stage:
    """For ``target="sdnn"``: the ANN straight to sigma-delta integers, its scales set on
    the calibration samples (:func:`~lava_convert.quantize.sigma_delta.quantize_sigma_delta`);
    no float SNN, no thresholds to balance."""
    return dataclasses.replace(stage, fixed=quantize_sigma_delta(stage.graph, stage.x,
                                                                 stage.config))


def _balance(stage: Stage) -> Stage:
    """Thresholds per layer, soft/hard reset, the shift and the readout: ANN -> float SNN
    (:func:`~lava_convert.passes.balance.balance`; refuses calibration data that does
    not fit and layers that never activate)."""
    return dataclasses.replace(stage, snn=balance(stage.graph, stage.x, stage.config))


def _potential_calibration(stage: Stage) -> Stage:
    """Choose each spiking layer's initial potential against the ANN, in float
    (:func:`~lava_convert.passes.potential_calibration.calibrate_potentials`); keep the
    result only if its predictions agree with the ANN's on the calibration samples at
    least as often as before (the per-layer error it minimises is not the readout's)."""
    samples = stage.calibration_samples(stage.config.potential_calibration)
    snn = calibrate_potentials(stage.graph, stage.snn, samples, stage.progress,
                               stage.config.potential_scope)
    targets, T = ann_predictions(stage.graph, samples), stage.config.timesteps
    before, after = (agreement(simulate_float(net, samples, T).predictions, targets)
                     for net in (stage.snn, snn))
    kept = keep_if_agrees("potential calibration", before, after)
    return dataclasses.replace(stage, snn=snn) if kept else stage


def _bias_calibration(stage: Stage) -> Stage:
    """Correct each spiking layer's bias for its mean conversion error, in float
    (:func:`~lava_convert.passes.bias_calibration.calibrate_biases`)."""
    snn = calibrate_biases(stage.graph, stage.snn, stage.calibration_samples(), stage.progress)
    return dataclasses.replace(stage, snn=snn)


def _readout_calibration(stage: Stage) -> Stage:
    """Refit the readout's weights and bias to the ANN's logits, in float
    (:func:`~lava_convert.passes.readout_calibration.calibrate_readout`; kept only if its
    leave-one-out error is below the uncorrected one)."""
    samples = stage.calibration_samples(stage.config.readout_calibration)
    snn, fit = calibrate_readout(stage.snn, samples, logits(stage.graph, samples))
    return dataclasses.replace(stage, snn=snn, readout_fit=fit)


def _quantize(stage: Stage) -> Stage:
    """Scale weights, biases and thresholds into Loihi's integer ranges
    (:func:`~lava_convert.quantize.scale.quantize`; refuses layers whose weights vanish
    or whose threshold does not fit 17 bits)."""
    return dataclasses.replace(stage, fixed=quantize(stage.snn, stage.x, stage.config))


def _bias_calibration_on_grid(stage: Stage) -> Stage:
    """Calibrate the biases again with the quantized weights and thresholds
    (:func:`~lava_convert.quantize.scale.on_grid`), so they also absorb the rounding of
    the weights, and requantize with the same scales; keep the result only if its
    fixed-point predictions agree with the ANN's on the calibration samples at least as
    often as before (at T=4 the second pass cost the MNIST CNN 1.1 points)."""
    samples = stage.calibration_samples()
    grid = calibrate_biases(stage.graph, on_grid(stage.snn, stage.fixed), samples,
                            stage.progress)
    candidate = quantize(grid, stage.x, stage.config, stage.fixed)
    targets, T = ann_predictions(stage.graph, samples), stage.config.timesteps
    before, after = (agreement(simulate_fixed(net, samples, T).predictions, targets)
                     for net in (stage.fixed, candidate))
    kept = keep_if_agrees("bias calibration on the grid", before, after)
    return dataclasses.replace(stage, fixed=candidate) if kept else stage


def _check(stage: Stage) -> Stage:
    """Compare fixed and float point on calibration samples and attach the result
    (:func:`~lava_convert.quantize.check.check_fixed_point`; warns, never refuses)."""
    result = check_fixed_point(stage.fixed, stage.snn, stage.x, stage.config.rate_tolerance)
    return dataclasses.replace(stage, fixed=dataclasses.replace(stage.fixed, check=result))


def _spiking(stage: Stage) -> bool:
    """Whether the target's neurons spike (LIF), rather than send sigma-delta messages."""
    return target_rules(stage.config.target).neuron == "lif"


@dataclass(frozen=True)
class Pass:
    """A named pass of the pipeline and the settings under which it runs."""

    name: str
    run: Callable[[Stage], Stage]
    applies: Callable[[Stage], bool] = lambda stage: True


#: The passes after reading a NIR graph (already spiking: nothing to balance or calibrate).
IMPORT_PASSES: tuple[Pass, ...] = (Pass("quantize", _quantize), Pass("check", _check))

#: The passes after tracing, in the order they run; whether one applies is decided when
#: its turn comes (a pass may change the config the later ones read).
PASSES: tuple[Pass, ...] = (
    Pass("target", _target, lambda s: s.config.target != "lava-convert"),
    Pass("sigma_delta", _sigma_delta, lambda s: not _spiking(s)),
    Pass("auto_balancing", _auto_balancing, lambda s: needs_choice(s.config)),
    Pass("balance", _balance, _spiking),
    Pass("potential_calibration", _potential_calibration,
         lambda s: s.config.potential_calibration > 0),
    Pass("bias_calibration", _bias_calibration, lambda s: s.config.bias_calibration > 0),
    Pass("readout_calibration", _readout_calibration,
         lambda s: s.config.readout_calibration > 0),
    Pass("quantize", _quantize, _spiking),
    Pass("bias_calibration_on_grid", _bias_calibration_on_grid,
         lambda s: s.config.bias_calibration > 0),
    Pass("check", _check, _spiking),
)

#: What converts one candidate of ``balancing="auto"``: the passes after it, but the check.
CANDIDATE_PASSES: tuple[Pass, ...] = tuple(
    p for p in PASSES if p.name not in ("target", "sigma_delta", "auto_balancing", "check"))


def run_passes(stage: Stage, passes: tuple[Pass, ...] = PASSES,
               progress: bool | None = None) -> tuple[Stage, tuple[str, ...]]:
    """Run, in order, the passes that apply when their turn comes; return the result and
    the names of those that ran (those the stage already holds, :attr:`Stage.converted`,
    are recorded without running). ``progress`` shows a bar over the passes (default:
    when stderr is a terminal)."""
    show = sys.stderr.isatty() if progress is None else progress
    stage = dataclasses.replace(stage, progress=show)
    ran = []
    with tqdm(total=len(passes), desc="converting", unit="pass", disable=not show,
              leave=False) as bar:
        for p in passes:
            if p.name in stage.converted:
                ran.append(p.name)
            elif p.applies(stage):
                bar.set_postfix_str(p.name)
                log.info("pass %s", p.name)
                stage = p.run(stage)
                ran.append(p.name)
            bar.update()
    return stage, tuple(ran)
