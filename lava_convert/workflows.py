"""The jobs the CLI, the demo, the benchmarks and the tutorials run: convert and export a
model, import a NIR file, run a file on a dataset, sweep T, compare Lava with the
reference."""

from __future__ import annotations

import logging
import sys
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from torch import nn

from .config import ConversionConfig
from .errors import ConfigError
from .ir import FixedNetwork
from .lava.runtime import run_lava
from .netx.reader import read_netx
from .pipeline import ConvertedNetwork, convert, from_nir, read_sidecar, simulate
from .report.analysis import run_summary
from .report.summary import RunSummary
from .sim.inputs import resolve_timesteps
from .sim.reference import simulate_fixed, simulate_float
from .sim.results import RunResult
from .zoo.data import Dataset, load_dataset
from .zoo.train import accuracy

log = logging.getLogger(__name__)

#: Training samples used for calibration by :func:`convert_and_export` (default).
CALIBRATION_SAMPLES = 2000


def load_test_split(dataset: str, limit: int | None = None,
                    data_dir=None) -> tuple[np.ndarray, np.ndarray]:
    """The first ``limit`` (default: all) test samples and labels of ``dataset``."""
    data = load_dataset(dataset, data_dir)
    if limit is not None and (isinstance(limit, bool) or int(limit) < 1):
        raise ConfigError(f"limit={limit!r} is invalid: use a positive number of samples")
    n = len(data.x_test) if limit is None else min(int(limit), len(data.x_test))
    if limit is not None and int(limit) > n:
        log.warning("limit=%d is more than the %d test samples of %s: using all %d",
                    int(limit), n, dataset, n)
    return data.x_test[:n], data.y_test[:n]


def _sidecar_ann_accuracy(net_path: str | Path) -> tuple[float | None, int | None]:
    """The ANN accuracy recorded in the file's own sidecar (measured at export) and the
    number of test samples it was measured on, if known."""
    sidecar = read_sidecar(net_path)
    try:
        accuracy = sidecar["accuracy"]
        samples = accuracy.get("test_samples")
        return float(accuracy["ann"]), None if samples is None else int(samples)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None, None


def convert_and_export(model: nn.Module, data: Dataset, out: str | Path, *,
                       config: ConversionConfig | None = None,
                       calibration: int = CALIBRATION_SAMPLES, seed: int = 0,
                       progress: bool | None = None) -> tuple[ConvertedNetwork, Path]:
    """Convert ``model`` with ``calibration`` random training samples of ``data``, measure
    ANN and reference-SNN accuracy on the test split, and export NetX + sidecar to ``out``.

    The accuracies are in ``converted.accuracy`` (and the sidecar)."""
    converted = convert(model, calibration=data.calibration_sample(calibration, seed),
                        config=config, progress=progress)
    ref = simulate_fixed(converted.fixed, data.x_test, converted.config.timesteps,
                         progress=sys.stderr.isatty() if progress is None else progress)
    converted.accuracy.update(ann=accuracy(model, data.x_test, data.y_test),
                              snn_reference=ref.accuracy(data.y_test),
                              test_samples=len(data.x_test))
    return converted, converted.export(out)


def import_nir_and_export(source, data: Dataset, out: str | Path, *, dt: float | None = None,
                          reset: str | None = None, timesteps: int | None = None,
                          calibration: int = CALIBRATION_SAMPLES, seed: int = 0,
                          progress: bool | None = None,
                          cuba_bias: str = "refuse") -> tuple[ConvertedNetwork, Path]:
    """Read a NIR graph or file (:func:`~lava_convert.pipeline.from_nir`, calibrated on
    ``calibration`` random training samples of ``data``), measure its float and Lava-exact
    accuracy on the test split, and export NetX + sidecar to ``out``."""
    imported = from_nir(source, data.calibration_sample(calibration, seed), timesteps=timesteps,
                        dt=dt, reset=reset, progress=progress, cuba_bias=cuba_bias)
    T = imported.config.timesteps
    imported.accuracy.update(
        snn_float=simulate_float(imported.snn, data.x_test, T).accuracy(data.y_test),
        snn_reference=simulate_fixed(imported.fixed, data.x_test, T).accuracy(data.y_test),
        test_samples=len(data.x_test))
    return imported, imported.export(out)


def evaluate(net_path: str | Path, dataset: str = "digits", *, backend: str = "lava",
             mode: str = "fixed", timesteps: int | None = None, limit: int | None = None,
             data_dir=None, progress: bool | None = None, timeout_s: float | None = None,
             workers: int | str | None = None, client=None,
             models: str = "fast") -> tuple[RunResult, RunSummary]:
    """Run ``net_path`` on the test split of ``dataset``; return the result and its summary.

    The summary (:func:`lava_convert.report.analysis.run_summary`) holds accuracy,
    per-layer rates and their agreement with the ideal rates, a raster, costs
    and, for the reference backend, the accuracy after every time step.

    Args:
        backend: ``"lava"`` (Lava CPU simulator) or ``"reference"``.
        mode: Reference arithmetic, ``"fixed"`` (Lava-exact) or ``"float"``.
        timesteps: Time steps per sample (default: the file's).
        limit: Only the first ``limit`` test samples.
        timeout_s: Stop a Lava run after this many seconds.
        workers, client, models: Where a Lava run runs, and with which process models
            (see :func:`~lava_convert.run_lava`).
    """
    if backend not in ("lava", "reference"):
        raise ConfigError(f"backend={backend!r} is invalid: use 'lava' or 'reference'")
    if backend == "reference" and (workers not in (None, 1, "1") or client is not None):
        raise ConfigError("workers and a Dask scheduler split Lava runs; the reference "
                          "backend runs in this process: drop --workers/--scheduler, or "
                          "use --backend lava")
    net = read_netx(net_path)
    x, y = load_test_split(dataset, limit, data_dir)
    T = resolve_timesteps(timesteps, net)
    if backend == "lava":
        result = run_lava(net, x, T, progress=progress, timeout_s=timeout_s,
                          workers=workers, client=client, models=models)
    else:
        result = simulate(net, x, T, mode=mode)
    ann, ann_samples = _sidecar_ann_accuracy(net_path)
    summary = run_summary(net, result, x, y, ann_accuracy=ann, ann_samples=ann_samples,
                          network=str(net_path), dataset=dataset)
    return result, summary


def sweep(net_path: str | Path, dataset: str = "digits", *, timesteps: int = 128,
          limit: int | None = None, data_dir=None) -> RunSummary:
    """Accuracy after every time step 1..``timesteps`` from one reference simulation.

    Returns the run summary; ``accuracy_per_step[t-1]`` is the accuracy at T=t.
    (A file converted with the ``bias`` shift is tuned for its own T; the
    ``v0`` shift does not depend on T.)
    """
    _, summary = evaluate(net_path, dataset, backend="reference", timesteps=timesteps,
                          limit=limit, data_dir=data_dir)
    return summary


class _KeyAccess:
    """``record["key"]``, as the dict a record replaced was read, with a
    ``DeprecationWarning`` naming the attribute to use instead."""

    def __getitem__(self, key: str):
        if not isinstance(key, str) or key.startswith("_") or not hasattr(self, key):
            raise KeyError(key)
        warnings.warn(f"{type(self).__name__}[{key!r}] is deprecated and will be removed: "
                      f"use .{key}", DeprecationWarning, stacklevel=2)
        return getattr(self, key)


@dataclass(frozen=True)
class LayerComparison(_KeyAccess):
    """One layer's spike counts, Lava against the reference: samples with any difference,
    the largest count difference and the first differing ``(sample, neuron)``
    (``None``: none), and the spikes per sample of each."""

    name: str
    neurons: int
    samples_differing: int
    max_count_difference: int
    first_difference: tuple[int, int] | None
    lava_spikes_per_sample: float
    reference_spikes_per_sample: float


@dataclass(frozen=True)
class BackendComparison(_KeyAccess):
    """What :func:`compare_backends` measured; ``to_dict`` is the CLI's JSON (reading it
    as the dict it used to be, ``result["identical"]``, still works and warns)."""

    samples: int
    timesteps: int
    layers: tuple[LayerComparison, ...]
    predictions_agree: float
    lava_wall_time_s: float
    reference_wall_time_s: float

    @property
    def identical(self) -> bool:
        """Every layer's spike counts equal on every sample."""
        return all(layer.samples_differing == 0 for layer in self.layers)

    def to_dict(self) -> dict:
        return {**asdict(self), "identical": self.identical}


def compare_backends(net: FixedNetwork | str | Path, x, timesteps: int | None = None, *,
                     timeout_s: float | None = None, workers: int | str | None = None,
                     client=None, models: str = "fast") -> BackendComparison:
    """Run Lava and the reference on the same samples; compare spike counts layer by layer
    (:class:`BackendComparison`). ``workers``, ``client`` and ``models`` say where the Lava
    run runs and with which process models (see :func:`~lava_convert.run_lava`).
    """
    if not isinstance(net, FixedNetwork):
        net = read_netx(net)
    T = resolve_timesteps(timesteps, net)
    lava = run_lava(net, x, T, progress=False, timeout_s=timeout_s, workers=workers,
                    client=client, models=models)
    ref = simulate_fixed(net, x, T)
    layers = []
    for layer in net.layers:
        a, b = lava.spike_counts[layer.name], ref.spike_counts[layer.name]
        diff = np.abs(a.astype(np.int64) - b.astype(np.int64))
        where = np.argwhere(diff > 0)
        layers.append(LayerComparison(
            name=layer.name, neurons=layer.size,
            samples_differing=int((diff.sum(axis=1) > 0).sum()),
            max_count_difference=int(diff.max()) if diff.size else 0,
            first_difference=tuple(int(v) for v in where[0]) if len(where) else None,
            lava_spikes_per_sample=float(a.sum(axis=1).mean()),
            reference_spikes_per_sample=float(b.sum(axis=1).mean())))
    return BackendComparison(
        samples=len(lava.output), timesteps=T, layers=tuple(layers),
        predictions_agree=float(np.mean(lava.predictions == ref.predictions)),
        lava_wall_time_s=lava.wall_time_s, reference_wall_time_s=ref.wall_time_s)
