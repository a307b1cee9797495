"""Run a NetX file on a dataset with either backend and summarise the result."""

from __future__ import annotations

from pathlib import Path

from .data import load_dataset
from .netx_io import read_netx
from .results import RunResult


def evaluate(net_path: str | Path, dataset: str = "digits", *, backend: str = "lava",
             mode: str = "fixed", timesteps: int | None = None, limit: int | None = None,
             data_dir=None, progress: bool | None = None) -> tuple[RunResult, dict]:
    """Run ``net_path`` on the test split of ``dataset``; return the result and a summary.

    Args:
        backend: ``"lava"`` (Lava CPU simulator) or ``"reference"``.
        mode: Reference arithmetic, ``"fixed"`` (Lava-exact) or ``"float"``.
        timesteps: Time steps per sample (default: the file's).
        limit: Only the first ``limit`` test samples.
    """
    from .convert import simulate
    from .errors import ConfigError

    if backend not in ("lava", "reference"):
        raise ConfigError(f"backend={backend!r} is invalid: use 'lava' or 'reference'")
    net = read_netx(net_path)
    data = load_dataset(dataset, data_dir)
    n = len(data.x_test) if limit is None else max(1, min(int(limit), len(data.x_test)))
    x, y = data.x_test[:n], data.y_test[:n]
    T = timesteps if timesteps is not None else net.timesteps
    if backend == "lava":
        from .lava_runtime import run_lava

        result = run_lava(net, x, T, progress=progress)
    else:
        result = simulate(net, x, T, mode=mode)
    summary = {
        "network": str(net_path), "dataset": dataset, "backend": result.backend,
        "samples": n, "timesteps": result.timesteps, "accuracy": result.accuracy(y),
        "spikes_per_sample": result.spikes_per_sample(), "wall_time_s": result.wall_time_s,
    }
    return result, summary
