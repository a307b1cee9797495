"""When the pipeline keeps what a step changed: the network must agree with the ANN's
predictions at least as often as without it.

Every "keep it only if" of the conversion is decided here, on one measure, agreement
with the ANN's predictions (the top logit) on calibration samples:

* a calibration pass (initial potentials in float, biases again on the fixed-point
  grid) is kept when its agreement is no lower than before (:func:`keep_if_agrees`);
* ``balancing="auto"`` keeps, of its candidates, those within the noise of the most
  agreeing one (:func:`within_noise`), then the one with the fewest spikes.

The readout calibration alone is judged by another measure, its leave-one-out logit
error (:class:`~lava_convert.passes.readout_calibration.ReadoutFit`): it fits logits,
not predictions, and the fit's own cross-validation is the fairer test of that.
"""

from __future__ import annotations

import logging

import numpy as np

from ..ir import AnnGraph
from ..sim.ann import logits

log = logging.getLogger(__name__)


def ann_predictions(graph: AnnGraph, samples: np.ndarray) -> np.ndarray:
    """The ANN's predicted class of each sample: what a converted network should say."""
    return np.argmax(logits(graph, samples), axis=1)


def agreement(predictions: np.ndarray, targets: np.ndarray) -> float:
    """How often ``predictions`` equal the ANN's ``targets``."""
    return float(np.mean(np.asarray(predictions) == np.asarray(targets)))


def keep_if_agrees(what: str, before: float, after: float) -> bool:
    """Whether to keep a step whose network agrees with the ANN ``after`` as often (the
    share) as the network without it did ``before``; logged either way."""
    kept = after >= before
    log.info("%s: agreement with the ANN %.4f -> %.4f (%s)", what, before, after,
             "kept" if kept else "dropped")
    return kept


def within_noise(hits: np.ndarray, best: np.ndarray) -> bool:
    """Whether a candidate that agrees with the ANN on the samples ``hits`` is as good as
    the one that agrees on ``best`` (same samples), as far as they tell: its shortfall is
    at most one standard error of the paired difference: ``sqrt(d)`` samples, for ``d``
    samples on which exactly one of the two agrees (McNemar's sign test at one sigma)."""
    d = int(np.sum(hits != best))
    return bool(int(best.sum()) - int(hits.sum()) <= np.sqrt(d))
