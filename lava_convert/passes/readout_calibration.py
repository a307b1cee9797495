"""Readout calibration: refit the linear readout to the ANN's logits.

With ``readout="potential"`` the output layer only integrates: its potential after T
steps, divided by T, is ``W r + b`` for the spike rates ``r`` of the layers it reads. The
conversion errors of the hidden layers reach the classes through ``W``. Li et al. ("A
Free Lunch From ANN", ICML 2021) calibrate each layer's weights against the ANN on a few
hundred samples by gradient descent; for this linear readout the problem is least
squares and is solved exactly. The correction ``(dW, db)`` maps the SNN's rates on the
calibration samples to the difference between the ANN's logits and the SNN's output,
ridge-regularised towards ``dW = 0`` (the converted weights), the strength chosen among
:data:`RIDGE_STRENGTHS` by leave-one-out cross-validation (scikit-learn's ``RidgeCV``).
The correction is kept only when its leave-one-out error is below the uncorrected
error: with too few samples for the rates' width it would fit noise.

Only the readout's weights and bias change, so the result is as exact on Lava as any
converted network (NetX weights).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import RidgeCV

from ..errors import ConfigError
from ..ir import SnnNetwork
from ..sim.reference import simulate_float
from .layerwise import CALIBRATION_DTYPE

log = logging.getLogger(__name__)

#: Candidate ridge strengths, per calibration sample (rates are in [0, 1]).
RIDGE_STRENGTHS: tuple[float, ...] = tuple(10.0 ** k for k in range(-3, 4))


@dataclass(frozen=True)
class ReadoutFit:
    """What readout calibration measured.

    Attributes:
        error_before: Mean squared difference between the ANN's logits and the SNN's
            output on the calibration samples.
        error_after: The same after the correction, by leave-one-out cross-validation
            (each sample predicted by a fit without it).
        strength: The ridge strength chosen, per sample.
    """

    error_before: float
    error_after: float
    strength: float

    @property
    def kept(self) -> bool:
        """Whether the correction was applied: only when it predicts unseen samples
        better than the uncorrected readout."""
        return self.error_after < self.error_before

    def describe(self) -> str:
        """One line for people: what the fit did to the readout's error, and whether it
        was kept."""
        verdict = ("kept" if self.kept else
                   "dropped: it would not predict unseen samples better; the readout is "
                   "unchanged")
        return (f"readout calibration: mean squared logit error {self.error_before:.4g} -> "
                f"{self.error_after:.4g} (leave-one-out; ridge {self.strength:.3g} per "
                f"sample), {verdict}")


def check_readout(snn: SnnNetwork) -> None:
    """Refuse a readout that :func:`calibrate_readout` cannot refit, naming the layer."""
    last = snn.layers[-1]
    if last.spiking:
        raise ConfigError(f"readout calibration refits a potential readout; layer "
                          f"'{last.name}' spikes (readout='spikes'): use readout='potential' "
                          "or readout_calibration=0")
    if any(s.kind != "dense" for s in (last.synapse, *last.skips)):
        raise ConfigError(f"readout calibration refits a dense readout; layer '{last.name}' "
                          "reads its input through a convolution: end the network with a "
                          "Linear layer or use readout_calibration=0")
    if last.du != 1.0 or last.dv != 0.0:
        raise ConfigError(f"readout calibration needs an integrating readout; layer "
                          f"'{last.name}' leaks (du={last.du}, dv={last.dv}): use "
                          "readout_calibration=0")


def calibrate_readout(snn: SnnNetwork, x: np.ndarray,
                      target: np.ndarray) -> tuple[SnnNetwork, ReadoutFit]:
    """``snn`` with its readout's weights and bias refitted so that its output on the
    samples ``x`` comes close to ``target`` (the ANN's logits, ``(samples, classes)``; see
    the module docstring), and the measurement. The hidden layers are left as they are;
    the readout unchanged when the fit does not generalise.

    Raises:
        ConfigError: the readout spikes, leaks or reads through a convolution.
    """
    check_readout(snn)
    last = snn.layers[-1]
    run = simulate_float(snn, x, snn.timesteps, dtype=CALIBRATION_DTYPE)
    synapses = (last.synapse, *last.skips)
    rates = np.hstack([_rates(snn, run, s.source, x) for s in synapses])
    error = np.asarray(target, dtype=np.float64) - run.output
    before = float(np.mean(error ** 2))
    ridge = RidgeCV(alphas=[a * len(x) for a in RIDGE_STRENGTHS], alpha_per_target=False)
    ridge.fit(rates, error)
    after = float(-ridge.best_score_)
    fit = ReadoutFit(error_before=before, error_after=after,
                     strength=float(ridge.alpha_) / len(x))
    log.info("%s", fit.describe())
    if not fit.kept:
        return snn, fit
    ends = np.cumsum([s.weight.shape[1] for s in synapses])[:-1]
    weights = [s.weight + d for s, d in zip(synapses, np.split(ridge.coef_, ends, axis=1))]
    readout = dataclasses.replace(
        last, synapse=dataclasses.replace(last.synapse, weight=weights[0]),
        skips=tuple(dataclasses.replace(s, weight=w) for s, w in zip(last.skips, weights[1:])),
        bias=last.bias + np.reshape(ridge.intercept_, np.shape(last.bias)))
    return dataclasses.replace(snn, layers=(*snn.layers[:-1], readout)), fit


def _rates(snn: SnnNetwork, run, source: int, x: np.ndarray) -> np.ndarray:
    """What the readout reads from ``source`` per step on average, ``(samples, width)``:
    the input itself (-1; it is presented every step) or a layer's spikes per step."""
    if source < 0:
        return np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    return run.spike_counts[snn.layers[source].name] / snn.timesteps
