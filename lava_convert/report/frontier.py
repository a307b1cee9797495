"""The accuracy-latency-spikes frontier: operating points of conversion methods (one per
method and T), the ones no other point beats, and a figure of both."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .plots import _save, _subplots


@dataclass(frozen=True)
class OperatingPoint:
    """One method run at one T: its accuracy (0..1) and spikes per inference."""

    method: str
    timesteps: int
    accuracy: float
    spikes: float


def pareto_front(points: Sequence[OperatingPoint]) -> list[OperatingPoint]:
    """The points no other point dominates (at least as accurate with at most as many
    spikes and at most as many time steps, better in one), by increasing spikes."""
    def dominates(a: OperatingPoint, b: OperatingPoint) -> bool:
        no_worse = (a.accuracy >= b.accuracy and a.spikes <= b.spikes
                    and a.timesteps <= b.timesteps)
        return no_worse and (a.accuracy, -a.spikes, -a.timesteps) != (
            b.accuracy, -b.spikes, -b.timesteps)

    front = [p for p in points if not any(dominates(q, p) for q in points)]
    return sorted(front, key=lambda p: (p.spikes, -p.accuracy))


def frontier_figure(points: Sequence[OperatingPoint], path: Path, *, title: str,
                    ann_accuracy: float | None = None, floor: float | None = None) -> Path:
    """Accuracy against spikes per inference (log scale), one line per method through its
    T values (labelled), the Pareto front circled; points below ``floor`` (0..1) are
    left out so that the interesting range stays readable."""
    fig, ax = _subplots(figsize=(7.5, 4.8))
    shown = [p for p in points if floor is None or p.accuracy >= floor]
    methods = list(dict.fromkeys(p.method for p in points))
    for method in methods:
        line = sorted((p for p in shown if p.method == method), key=lambda p: p.timesteps)
        if not line:
            continue
        ax.plot([p.spikes for p in line], [100 * p.accuracy for p in line], marker="o", ms=4,
                label=method)
        for p in line:
            ax.annotate(f"{p.timesteps}", (p.spikes, 100 * p.accuracy), fontsize=6,
                        xytext=(2, 2), textcoords="offset points")
    front = [p for p in pareto_front(points) if p in shown]
    ax.scatter([p.spikes for p in front], [100 * p.accuracy for p in front], s=90,
               facecolors="none", edgecolors="k", lw=1, label="Pareto front", zorder=3)
    if ann_accuracy is not None:
        ax.axhline(100 * ann_accuracy, color="k", ls="--", lw=1, label="ANN")
    ax.set_xscale("log")
    ax.set_xlabel("spikes per inference (all spiking layers); labels: T")
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(title)
    return _save(fig, path)
