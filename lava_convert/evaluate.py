"""Run, sweep, compare and describe NetX files on datasets: the functions behind the CLI verbs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .data import load_dataset
from .errors import ConfigError
from .ir import FixedNetwork, skip_delays
from .netx_io import read_netx
from .results import RunResult


def load_test_split(dataset: str, limit: int | None = None,
                    data_dir=None) -> tuple[np.ndarray, np.ndarray]:
    """The first ``limit`` (default: all) test samples and labels of ``dataset``."""
    data = load_dataset(dataset, data_dir)
    if limit is not None and (isinstance(limit, bool) or int(limit) < 1):
        raise ConfigError(f"limit={limit!r} is invalid: use a positive number of samples")
    n = len(data.x_test) if limit is None else min(int(limit), len(data.x_test))
    return data.x_test[:n], data.y_test[:n]


def _sidecar_ann_accuracy(net_path: str | Path) -> float | None:
    """The ANN accuracy recorded in the file's sidecar (measured at export), if any."""
    sidecar = Path(net_path).with_suffix(".json")
    try:
        return float(json.loads(sidecar.read_text())["accuracy"]["ann"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def evaluate(net_path: str | Path, dataset: str = "digits", *, backend: str = "lava",
             mode: str = "fixed", timesteps: int | None = None, limit: int | None = None,
             data_dir=None, progress: bool | None = None,
             timeout_s: float | None = None) -> tuple[RunResult, dict]:
    """Run ``net_path`` on the test split of ``dataset``; return the result and its summary.

    The summary (:func:`lava_convert.analysis.run_summary`) holds accuracy,
    per-layer rates and their agreement with the ideal rates, a raster, costs
    and, for the reference backend, the accuracy after every time step.

    Args:
        backend: ``"lava"`` (Lava CPU simulator) or ``"reference"``.
        mode: Reference arithmetic, ``"fixed"`` (Lava-exact) or ``"float"``.
        timesteps: Time steps per sample (default: the file's).
        limit: Only the first ``limit`` test samples.
        timeout_s: Stop a Lava run after this many seconds.
    """
    from .analysis import run_summary
    from .convert import simulate

    if backend not in ("lava", "reference"):
        raise ConfigError(f"backend={backend!r} is invalid: use 'lava' or 'reference'")
    net = read_netx(net_path)
    x, y = load_test_split(dataset, limit, data_dir)
    T = timesteps if timesteps is not None else net.timesteps
    if backend == "lava":
        from .lava_runtime import run_lava

        result = run_lava(net, x, T, progress=progress, timeout_s=timeout_s)
    else:
        result = simulate(net, x, T, mode=mode)
    summary = {"network": str(net_path), "dataset": dataset,
               **run_summary(net, result, x, y, ann_accuracy=_sidecar_ann_accuracy(net_path))}
    return result, summary


def sweep(net_path: str | Path, dataset: str = "digits", *, timesteps: int = 128,
          limit: int | None = None, data_dir=None) -> dict:
    """Accuracy after every time step 1..``timesteps`` from one reference simulation.

    Returns the run summary; ``accuracy_per_step[t-1]`` is the accuracy at T=t.
    (A file converted with the ``bias`` shift is tuned for its own T; the
    ``v0`` shift does not depend on T.)
    """
    _, summary = evaluate(net_path, dataset, backend="reference", timesteps=timesteps,
                          limit=limit, data_dir=data_dir)
    return summary


def compare_backends(net: FixedNetwork | str | Path, x, timesteps: int | None = None, *,
                     timeout_s: float | None = None) -> dict:
    """Run Lava and the reference on the same samples; compare spike counts layer by layer.

    Returns per layer the number of neurons, samples with any difference, the
    largest count difference and the first differing (sample, neuron), plus
    whether predictions agree.
    """
    from .lava_runtime import run_lava
    from .reference import simulate_fixed

    if not isinstance(net, FixedNetwork):
        net = read_netx(net)
    T = net.timesteps if timesteps is None else timesteps
    lava = run_lava(net, x, T, progress=False, timeout_s=timeout_s)
    ref = simulate_fixed(net, x, T)
    layers = []
    for layer in net.layers:
        a, b = lava.spike_counts[layer.name], ref.spike_counts[layer.name]
        diff = np.abs(a.astype(np.int64) - b.astype(np.int64))
        where = np.argwhere(diff > 0)
        layers.append({"name": layer.name, "neurons": layer.size,
                       "samples_differing": int((diff.sum(axis=1) > 0).sum()),
                       "max_count_difference": int(diff.max()) if diff.size else 0,
                       "first_difference": where[0].tolist() if len(where) else None,
                       "lava_spikes_per_sample": float(a.sum(axis=1).mean()),
                       "reference_spikes_per_sample": float(b.sum(axis=1).mean())})
    return {"samples": len(lava.output), "timesteps": T, "layers": layers,
            "identical": all(l["samples_differing"] == 0 for l in layers),
            "predictions_agree": float(np.mean(lava.predictions == ref.predictions)),
            "lava_wall_time_s": lava.wall_time_s, "reference_wall_time_s": ref.wall_time_s}


def describe(net_path: str | Path | FixedNetwork) -> dict:
    """What a NetX file (or a FixedNetwork, then ``"file"`` is None) holds: layers, shapes,
    thresholds, exponents, counts, stock-NetX notes."""
    from .cost import macs
    from .netx_io import stock_netx_notes

    net = net_path if isinstance(net_path, FixedNetwork) else read_netx(net_path)
    layers, previous = [], tuple(net.input_shape)
    for layer, delays in zip(net.layers, skip_delays(net.layers)):
        synapses = macs(layer)
        w = None if layer.weight is None else np.asarray(layer.weight)
        layers.append({
            "name": layer.name, "kind": layer.kind, "input_shape": list(previous),
            "shape": list(layer.shape), "neurons": layer.size, "synapses": synapses,
            "vth": layer.vth, "reset": layer.reset, "spiking": layer.spiking,
            "v0": layer.v0, "du": layer.du, "dv": layer.dv, "bias_exp": layer.bias_exp,
            "weight_range": None if w is None else [int(w.min()), int(w.max())],
            "weight_exponent": None if w is None else _weight_exponent(w, layer.kind),
            **({"stride": list(layer.stride), "padding": list(layer.padding),
                "dilation": list(layer.dilation), "groups": layer.groups}
               if layer.kind == "conv" else {}),
            "shortcuts": [{"source": net.layers[k.source].name, "kind": k.kind, "delay": d,
                           "weight_range": [int(k.weight.min()), int(k.weight.max())]}
                          for k, d in zip(layer.skips, delays)],
        })
        previous = tuple(layer.shape)
    return {"file": None if net_path is net else str(net_path),
            "input_shape": list(net.input_shape), "input_bits": net.input_bits,
            "input_scale": net.input_scale,
            "timesteps": net.timesteps, "layers": layers,
            "neurons": sum(l["neurons"] for l in layers),
            "synapses": sum(l["synapses"] for l in layers),
            "stock_netx_loads": not net.is_residual, "stock_netx": stock_netx_notes(net)}


def _weight_exponent(weight: np.ndarray, kind: str) -> int | None:
    """The weight exponent NetX's ``optimize_weight_bits`` gives dense weights at load.

    Conv weights are passed to Lava unchanged (exponent 0). ``None`` when Lava
    is not installed.
    """
    if kind == "conv":
        return 0
    try:
        from .lava_compat import ensure_lava

        ensure_lava()
        from lava.lib.dl.netx.utils import optimize_weight_bits
    except ImportError:
        return None
    return int(optimize_weight_bits(weight)[2])
