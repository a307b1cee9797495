"""``RunResult``: what every runtime (reference or Lava) returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError


@dataclass
class RunResult:
    """Outputs of one run over a batch of samples.

    Attributes:
        backend: ``"reference-fixed"``, ``"reference-float"`` or ``"lava"``.
        timesteps: Time steps per sample.
        output: ``(samples, classes)`` accumulated readout potential divided by
            ``T``, in real units: comparable to the ANN's logits.
        spike_counts: Layer name -> ``(samples, neurons)`` spikes per sample.
        predictions_per_step: ``(T, samples)`` class after each time step, when
            the runtime records it (reference simulator), else ``None``.
        wall_time_s: Seconds spent running (excluding file loading).
        spike_trains: Layer name -> ``(samples, T, neurons)`` bool spikes, when
            asked for (``record_trains=True``), else ``None``.
    """

    backend: str
    timesteps: int
    output: np.ndarray
    spike_counts: dict[str, np.ndarray]
    predictions_per_step: np.ndarray | None = None
    wall_time_s: float = 0.0
    spike_trains: dict[str, np.ndarray] | None = None
    info: dict = field(default_factory=dict)

    @property
    def predictions(self) -> np.ndarray:
        return np.argmax(self.output, axis=1)

    @property
    def num_samples(self) -> int:
        return int(self.output.shape[0])

    def _labels(self, labels) -> np.ndarray:
        labels = np.asarray(labels).reshape(-1)
        if len(labels) != self.num_samples:
            raise InputError(f"{len(labels)} labels for {self.num_samples} samples")
        return labels

    def accuracy(self, labels) -> float:
        """Fraction of samples whose prediction equals ``labels``."""
        return float(np.mean(self.predictions == self._labels(labels)))

    def accuracy_curve(self, labels) -> np.ndarray:
        """Accuracy after each time step 1..T (needs ``predictions_per_step``)."""
        if self.predictions_per_step is None:
            raise InputError(f"the {self.backend} backend does not record per-step predictions")
        return np.mean(self.predictions_per_step == self._labels(labels)[None, :], axis=1)

    def spikes_per_sample(self) -> dict[str, float]:
        """Mean number of spikes per sample, per layer."""
        return {k: float(v.sum(axis=1).mean()) for k, v in self.spike_counts.items()}


class BatchRecordings:
    """What a batched reference run keeps batch by batch, joined into one
    :class:`RunResult` at the end: per batch the scores, the predictions after each step,
    and per layer (``names``) the counts and, with ``record_trains``, every step's
    output."""

    def __init__(self, names: list[str], record_trains: bool) -> None:
        self.names, self.record_trains = list(names), record_trains
        self.outputs: list[np.ndarray] = []
        self.steps: list[np.ndarray] = []
        self.counts: dict[str, list[np.ndarray]] = {n: [] for n in self.names}
        self.trains: dict[str, list[np.ndarray]] = {n: [] for n in self.names}

    def add(self, output: np.ndarray, steps: np.ndarray, counts, trains) -> None:
        """One batch: ``output`` ``(B, classes)``, ``steps`` ``(T, B)``, per layer its
        ``counts`` ``(B, neurons)`` and its ``trains`` (one ``(B, neurons)`` per step;
        ignored unless recording)."""
        self.outputs.append(output)
        self.steps.append(steps)
        for name, count, train in zip(self.names, counts, trains):
            self.counts[name].append(count)
            if self.record_trains:
                self.trains[name].append(np.stack(train, axis=1))

    def result(self, backend: str, timesteps: int, wall_time_s: float,
               info: dict) -> RunResult:
        return RunResult(
            backend=backend, timesteps=timesteps, output=np.concatenate(self.outputs),
            spike_counts={k: np.concatenate(v) for k, v in self.counts.items()},
            predictions_per_step=np.concatenate(self.steps, axis=1),
            wall_time_s=wall_time_s, info=info,
            spike_trains={k: np.concatenate(v) for k, v in self.trains.items()}
            if self.record_trains else None)


def spike_differences(a: RunResult, b: RunResult) -> list[str]:
    """What differs between two runs of one network on the same samples (Lava and the
    reference, or two ways of running either): per layer the spike counts, then the
    readout (within float rounding) and the predictions. Empty: the runs agree spike for
    spike."""
    problems = []
    if list(a.spike_counts) != list(b.spike_counts):
        problems.append(f"layers {list(a.spike_counts)} against {list(b.spike_counts)}")
    for name in (n for n in a.spike_counts if n in b.spike_counts):
        x, y = np.asarray(a.spike_counts[name]), np.asarray(b.spike_counts[name])
        if x.shape != y.shape:
            problems.append(f"layer {name}: counts of shape {x.shape} against {y.shape}")
        elif not np.array_equal(x, y):
            where = np.argwhere(x != y)
            s, n = (int(v) for v in where[0])
            problems.append(f"layer {name}: {len(np.unique(where[:, 0]))} of {len(x)} samples "
                            f"differ (first: sample {s}, neuron {n}: {x[s, n]} against "
                            f"{y[s, n]} spikes)")
    if a.output.shape != b.output.shape or not np.allclose(a.output, b.output, rtol=1e-7,
                                                           atol=0):
        problems.append("the readout differs")
    elif not np.array_equal(a.predictions, b.predictions):
        problems.append("the predictions differ")
    return problems


def assert_same_spikes(a: RunResult, b: RunResult) -> None:
    """Raise ``AssertionError`` naming every difference :func:`spike_differences` finds:
    the one assertion that two runs are the same network's spikes (as NIR's
    ``assert_equivalence`` is for graphs)."""
    problems = spike_differences(a, b)
    if problems:
        raise AssertionError(f"{a.backend} and {b.backend} differ: " + "; ".join(problems))
