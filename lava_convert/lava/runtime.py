"""``run_lava``: run samples through a NetX network on Lava's CPU simulator (``fixed_pt``).

Where the run happens is chosen here: in this process (:func:`.simulate.record`),
in ``workers`` forked processes, one contiguous shard of samples each
(:mod:`.shards`), or as shards on a Dask cluster (:mod:`.cluster`). Every way
gives the same recordings; they become one :class:`~lava_convert.sim.results.RunResult`.
A sigma-delta network runs sample by sample in this process (:mod:`.sigma_delta`).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..hw.loihi import STATE_SHIFT
from ..ir import FixedNetwork
from ..netx.reader import read_netx
from ..sim import readout, sigma_delta
from ..sim.inputs import check_input, check_input_range, quantize_input, resolve_timesteps
from ..sim.kernels import check_run_size
from ..sim.results import RunResult
from .guard import check_timeout
from .run_config import check_models
from .shards import plan_shards, resolve_workers, run_shards
from .sigma_delta import record_sigma_delta
from .simulate import Recordings, RunSettings, record

#: Runs expected to take longer than this many Lava steps show a progress bar.
PROGRESS_MIN_STEPS = 2000


def run_lava(net: FixedNetwork | str | Path, x, timesteps: int | None = None, *,
             chunk: int = 256, progress: bool | None = None,
             timeout_s: float | None = None, workers: int | str | None = None,
             client=None, models: str = "fast") -> RunResult:
    """Run samples ``x`` through a NetX network on Lava's CPU simulator.

    Args:
        net: A ``.net`` file written by lava-convert, or a FixedNetwork.
        x: Samples ``(batch, *input_shape)`` (real-valued, as for the ANN).
        timesteps: Time steps per sample (default: the file's).
        chunk: Samples per compiled run segment (bounds recording memory).
        progress: Show a progress bar (default: for runs of more than
            ``PROGRESS_MIN_STEPS`` steps).
        timeout_s: Stop the run and raise :class:`LavaTimeoutError` after this
            many seconds (default: no limit).
        workers: Processes to split the samples over (contiguous shards, one Lava
            network each; ``"auto"``: one per available core; default 1). With
            ``client``: the number of shards (default: one per worker thread of the
            cluster).
        client: A ``dask.distributed.Client``: run the shards as Dask tasks (see
            :mod:`lava_convert.lava.cluster` for the worker settings Lava needs).
        models: Process models (:mod:`lava_convert.lava.run_config`): ``"fast"`` (our
            exact torch convolution in place of Lava's scipy one) or ``"stock"``
            (Lava's own models only). Both give the same spikes.

    The result is the same whatever ``workers``, ``client`` and ``models`` are; only
    ``wall_time_s`` and ``info`` (steps run, shards) describe how it was run.

    Raises:
        LavaRunError: Lava failed, or a shard did (named, with its samples); every
            runtime was stopped and no partial result is returned.
        LavaTimeoutError: ``timeout_s`` passed (every runtime was stopped).
        KeyboardInterrupt: Ctrl-C or SIGTERM (every runtime was stopped).
    """
    if not isinstance(net, FixedNetwork):
        net = read_netx(net)
    T = resolve_timesteps(timesteps, net)
    x = check_input(x, net.input_shape, "run_lava")
    check_run_size(net, T, len(x), "run_lava")
    check_input_range(net, x, "run_lava")
    check_timeout(timeout_s)
    settings = RunSettings(T, chunk, check_models(models))
    x_int = quantize_input(net, x)
    N = len(x_int)
    if net.neuron_model == "sdnn":
        return _run_sigma_delta(net, x_int, settings, progress, timeout_s, workers, client)
    if client is not None:
        from .cluster import cluster_threads

        count = cluster_threads(client) if workers is None else resolve_workers(workers)
    else:
        count = 1 if workers is None else resolve_workers(workers)
    shards = plan_shards(N, count)
    if progress is None:
        progress = N * T > PROGRESS_MIN_STEPS
    recordings = Recordings(N)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=N, desc="Lava", unit="sample")

    def on_chunk(first: int, count: int, counts: dict, ends: np.ndarray) -> None:
        recordings(first, count, counts, ends)
        if bar is not None:
            bar.update(count)

    start = time.perf_counter()
    try:
        if client is not None:
            from .cluster import run_on_dask

            steps = run_on_dask(client, net, x_int, settings, shards, on_chunk,
                                timeout_s=timeout_s)
        elif len(shards) > 1:
            steps = run_shards(net, x_int, settings, shards, on_chunk, timeout_s=timeout_s)
        else:
            steps = record(net, x_int, settings, on_chunk, timeout_s)
    finally:
        if bar is not None:
            bar.close()
    counts, ends = recordings.merged()
    last = net.layers[-1]
    output = readout.scores(counts[last.name].astype(np.float64), ends.astype(np.float64),
                            spiking=last.spiking, timesteps=T, vth=last.vth << STATE_SHIFT,
                            unit=readout.fixed_unit(last.scale))
    return RunResult(
        backend="lava", timesteps=T, output=output, spike_counts=counts,
        wall_time_s=time.perf_counter() - start,
        info={"steps": steps, "shards": [[s.first, s.stop] for s in shards],
              "scheduler": "dask" if client is not None else "local", "models": models},
    )


def _run_sigma_delta(net: FixedNetwork, x_int: np.ndarray, settings: RunSettings, progress,
                     timeout_s, workers, client) -> RunResult:
    """:func:`run_lava` for a sigma-delta network: each sample in a fresh network, in this
    process (:mod:`lava_convert.lava.sigma_delta`), read out as the reference reads it."""
    if client is not None or (workers is not None and resolve_workers(workers) > 1):
        raise ConfigError("a sigma-delta network runs on Lava sample by sample in this "
                          "process: leave out workers and client")
    T, N = settings.timesteps, len(x_int)
    counts = {layer.name: np.zeros((N, layer.size), np.int64) for layer in net.layers}
    last = np.zeros((N, T, net.layers[-1].size), np.int64)
    bar = None
    if progress or (progress is None and N * T > PROGRESS_MIN_STEPS):
        from tqdm.auto import tqdm

        bar = tqdm(total=N, desc="Lava", unit="sample")

    def on_sample(k: int, trains: dict[str, np.ndarray]) -> None:
        for name, train in trains.items():
            counts[name][k] = (train != 0).sum(axis=0)
        last[k] = trains[net.layers[-1].name]
        if bar is not None:
            bar.update()

    start = time.perf_counter()
    try:
        steps = record_sigma_delta(net, x_int, T, on_sample, models=settings.models,
                                   timeout_s=timeout_s)
    finally:
        if bar is not None:
            bar.close()
    output, per_step = sigma_delta.readout(net.layers[-1], last)
    return RunResult(backend="lava", timesteps=T, output=output, spike_counts=counts,
                     predictions_per_step=per_step, wall_time_s=time.perf_counter() - start,
                     info={"steps": steps, "shards": [[0, N]], "scheduler": "local",
                           "models": settings.models, "neurons": "sdnn"})
