"""PNG figures of a :class:`~lava_convert.report.summary.RunSummary`, with matplotlib.

Each function takes the summary and a path, draws one figure and returns the
path, or ``None`` when the summary lacks the data (e.g. Lava runs record no
per-step accuracy).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .summary import RunSummary


def _subplots(*args, **kwargs):
    """A standalone Figure and its axes: no pyplot state and no backend switch, so
    drawing files leaves an interactive session (a notebook's inline plots) alone."""
    from matplotlib.figure import Figure

    figsize = kwargs.pop("figsize", None)
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*args, **kwargs)


def _save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def accuracy_vs_t(summary: RunSummary, path: Path) -> Path | None:
    """Accuracy after each time step (or per T of a sweep), with the ANN as a line."""
    curve = summary.accuracy_per_step
    if not curve:
        return None
    fig, ax = _subplots(figsize=(6, 3.6))
    steps = np.arange(1, len(curve) + 1)
    ax.plot(steps, 100 * np.asarray(curve), marker="." if len(curve) <= 64 else None,
            label=f"SNN ({summary.backend})")
    if summary.ann_accuracy is not None:
        ax.axhline(100 * summary.ann_accuracy, color="k", ls="--", lw=1, label="ANN")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("time steps T")
    ax.set_ylabel("accuracy (%)")
    low = min(100 * min(curve[len(curve) // 4:] or curve),
              100 * (summary.ann_accuracy or 1.0)) - 2
    ax.set_ylim(max(0, low), 100.5)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(f"Accuracy vs time steps ({summary.samples} samples)")
    return _save(fig, path)


def firing_rates(summary: RunSummary, path: Path) -> Path | None:
    """Mean spikes per neuron per step, per spiking layer."""
    layers = [l for l in summary.layers if l.spiking]
    if not layers:
        return None
    fig, ax = _subplots(figsize=(6, 3.2))
    names = [l.name for l in layers]
    rates = [l.rate for l in layers]
    bars = ax.bar(names, rates, color="tab:blue")
    ax.bar_label(bars, fmt="%.3f")
    ax.set_ylabel("spikes / neuron / step")
    ax.set_xlabel("layer")
    ax.set_ylim(0, max(rates) * 1.25 or 1)
    ax.set_title(f"Firing rates (T={summary.timesteps})")
    return _save(fig, path)


def rate_scatter(summary: RunSummary, path: Path) -> Path | None:
    """Ideal (clipped-ReLU) rate vs measured SNN rate, one panel per spiking layer."""
    layers = [l for l in summary.layers if l.scatter is not None]
    if not layers:
        return None
    fig, axes = _subplots(1, len(layers), figsize=(3.2 * len(layers), 3.3), squeeze=False)
    for ax, layer in zip(axes[0], layers):
        ideal, snn = np.asarray(layer.scatter["ideal"]), np.asarray(layer.scatter["snn"])
        ax.plot([0, 1], [0, 1], color="k", lw=0.8, ls="--")
        ax.scatter(ideal, snn, s=4, alpha=0.3)
        r = layer.rate_correlation
        ax.set_title(f"layer {layer.name}: r = {r:.4f}" if r is not None
                     else f"layer {layer.name}")
        ax.set_xlabel("ANN activation / V_th")
        ax.set_xlim(-0.03, 1.03)
        ax.set_ylim(-0.03, 1.03)
        ax.set_aspect("equal")
    axes[0][0].set_ylabel("SNN rate (spikes/step)")
    return _save(fig, path)


def raster(summary: RunSummary, path: Path) -> Path | None:
    """Spike times of up to 40 active neurons per spiking layer, for the first sample."""
    trains = {k: v for k, v in summary.raster_first_sample.items() if v}
    if not trains:
        return None
    fig, axes = _subplots(len(trains), 1, figsize=(6, 1.6 + 1.1 * len(trains)),
                          squeeze=False, sharex=True)
    for ax, (name, spikes) in zip(axes[:, 0], trains.items()):
        ax.eventplot([np.asarray(t) + 1 for t in spikes], linelengths=0.8, colors="k")
        ax.set_ylabel(f"layer {name}\nneuron")
        ax.set_xlim(0.5, summary.timesteps + 0.5)
    axes[-1, 0].set_xlabel("time step")
    shown = max(len(spikes) for spikes in trains.values())
    axes[0, 0].set_title(f"Spike raster, first sample: up to {shown} active neurons per "
                         "layer, in index order")
    return _save(fig, path)


def quantization_error(summary: RunSummary, path: Path) -> Path | None:
    """Per layer, the mean spike-rate change quantization caused on calibration data."""
    layers = [l for l in summary.layers if l.rate_error_quantization is not None and l.spiking]
    if not layers:
        return None
    fig, ax = _subplots(figsize=(6, 3.2))
    bars = ax.bar([l.name for l in layers], [l.rate_error_quantization for l in layers],
                  color="tab:orange")
    ax.bar_label(bars, fmt="%.4f")
    ax.set_ylabel("|fixed - float| spikes/step")
    ax.set_xlabel("layer")
    ax.set_title("Quantization error per layer (calibration data)")
    ax.set_ylim(0, max(b.get_height() for b in bars) * 1.3 or 0.01)
    return _save(fig, path)


FIGURES = {
    "accuracy_vs_t": (accuracy_vs_t, "Accuracy vs time steps"),
    "firing_rates": (firing_rates, "Firing rates per layer"),
    "rate_scatter": (rate_scatter, "ANN activation vs SNN rate"),
    "raster": (raster, "Spike raster"),
    "quantization_error": (quantization_error, "Quantization error per layer"),
}
