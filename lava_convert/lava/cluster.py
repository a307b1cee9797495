"""Lava runs on a Dask cluster: each shard of samples is one Dask task.

Install with ``pip install lava-convert[dask]``. Lava forks its own processes
and needs the ``fork`` start method, so Dask workers that run it must be
non-daemonic and started with fork::

    distributed.worker.daemon: False
    distributed.worker.multiprocessing-method: fork

(as environment variables: ``DASK_DISTRIBUTED__WORKER__DAEMON=False`` and
``DASK_DISTRIBUTED__WORKER__MULTIPROCESSING_METHOD=fork``). Dask's defaults
(daemonic, spawn) cannot run Lava; :func:`local_cluster` sets both for the
clusters lava-convert starts, and a task on a worker of a cluster you bring
checks both first and fails with :class:`~lava_convert.errors.LavaRunError`
naming them.

Inside a task the shard runs in a process forked from the worker
(:func:`.shards.run_shards` with one shard), so the dead-worker watchdog, the
timeout and the clean stop hold there as on one machine, and a killed Dask
worker takes its shard's Lava processes with it. Cancelling the run (Ctrl-C, a
timeout, another shard failing) sets a Dask ``Event`` that every task polls;
each then stops its shard.
"""

from __future__ import annotations

import logging
import multiprocessing
import shutil
import tempfile
import time
import uuid
from contextlib import contextmanager

import numpy as np

from ..errors import ConfigError, LavaRunError, LavaTimeoutError, OptionalDependencyError
from ..ir import FixedNetwork
from .shards import POLL_S, Shard, coordinating, resolve_workers, run_shards
from .simulate import ChunkHandler, Recordings, RunSettings

#: The worker settings Lava needs (dask config keys and values).
LAVA_WORKER_SETTINGS = {"distributed.worker.daemon": False,
                        "distributed.worker.multiprocessing-method": "fork"}
#: The scheduler settings of a local cluster: a shard whose worker died is not run again
#: (its Lava processes died with the worker, and the run it belonged to fails at once,
#: naming it, instead of waiting on a re-run that cannot report back).
LOCAL_SCHEDULER_SETTINGS = {"distributed.scheduler.allowed-failures": 0}
SETTINGS_HINT = ("start the Dask workers with distributed.worker.daemon: False and "
                 "distributed.worker.multiprocessing-method: fork (environment: "
                 "DASK_DISTRIBUTED__WORKER__DAEMON=False and "
                 "DASK_DISTRIBUTED__WORKER__MULTIPROCESSING_METHOD=fork)")


def _distributed():
    try:
        import distributed
    except ImportError as exc:
        raise OptionalDependencyError(
            "running Lava on a Dask cluster needs dask.distributed: pip install "
            "'lava-convert[dask]'") from exc
    return distributed


def worker_problems() -> list[str]:
    """Why this process cannot fork Lava's processes (empty: it can)."""
    problems = []
    if multiprocessing.current_process().daemon:
        problems.append("the worker process is daemonic (distributed.worker.daemon is True), "
                        "and daemonic processes may not start processes")
    method = multiprocessing.get_start_method(allow_none=True)
    if method not in (None, "fork"):
        problems.append(f"the worker's multiprocessing start method is {method!r} "
                        "(distributed.worker.multiprocessing-method), and Lava needs 'fork'")
    return problems


def cluster_threads(client) -> int:
    """Worker threads of ``client``'s cluster (at least 1): the default number of shards."""
    threads = sum(client.nthreads().values())
    if threads < 1:
        raise LavaRunError("the Dask cluster has no workers: start some (dask worker "
                           "ADDRESS), or use --scheduler local:N")
    return threads


def _run_task(net: FixedNetwork, x_int: np.ndarray, settings: RunSettings, shard: Shard,
              timeout_s: float | None, stop_event: str) -> tuple[dict, np.ndarray, int]:
    """One shard (samples ``x_int``) as a Dask task: its recordings (counts, readout
    potentials) and the steps run."""
    distributed = _distributed()
    worker = distributed.get_worker()
    problems = worker_problems()
    if problems:
        raise LavaRunError(f"Dask worker {worker.address} cannot run Lava: "
                           + "; ".join(problems) + f". Fix: {SETTINGS_HINT}")
    event = distributed.Event(stop_event)
    recordings = Recordings(shard.size)

    def on_chunk(first: int, count: int, counts: dict, ends: np.ndarray) -> None:
        recordings(first - shard.first, count, counts, ends)

    steps = run_shards(net, x_int, settings, (shard,), on_chunk, timeout_s=timeout_s,
                       base=shard.first, should_stop=event.is_set)
    counts, ends = recordings.merged()
    return counts, ends, steps


def run_on_dask(client, net: FixedNetwork, x_int: np.ndarray, settings: RunSettings,
                shards: tuple[Shard, ...], on_chunk: ChunkHandler, *,
                timeout_s: float | None = None) -> int:
    """Run each shard as a task on ``client``'s cluster; hand each finished shard's
    recordings to ``on_chunk``; return the steps run. On any way out before every shard
    has finished, all tasks are told to stop and cancelled.

    Raises:
        LavaRunError: a shard failed (named, with its samples and the error), including
            a worker that cannot run Lava (with the two settings to change).
        LavaTimeoutError: ``timeout_s`` passed.
        KeyboardInterrupt: Ctrl-C or SIGTERM.
    """
    distributed = _distributed()
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    run_id = uuid.uuid4().hex[:12]
    event = distributed.Event(f"lava-convert-stop-{run_id}", client=client)
    futures = {}
    with coordinating() as stopping:  # SIGTERM as Ctrl-C: the tasks are stopped either way
        try:
            return _collect(client, distributed, net, x_int, settings, shards,
                            on_chunk, timeout_s, deadline, event, run_id, futures)
        finally:
            stopping.set()
            unfinished = [f for f in futures if not f.done()]
            if unfinished:
                event.set()  # running tasks stop their shards; queued ones are cancelled
                client.cancel(unfinished)


def _collect(client, distributed, net, x_int, settings, shards, on_chunk, timeout_s,
             deadline, event, run_id, futures) -> int:
    """Submit one task per shard (into ``futures``) and gather their recordings in the
    order they finish."""
    for shard in shards:
        future = client.submit(
            _run_task, net, x_int[shard.first:shard.stop], settings, shard,
            timeout_s, event.name, key=f"lava-convert-shard-{shard.index}-{run_id}",
            pure=False)
        futures[future] = shard
    pending, steps = set(futures), 0
    while pending:
        wait_s = POLL_S * 4
        if deadline is not None:
            wait_s = min(wait_s, max(0.0, deadline - time.monotonic()))
        done = set()
        if wait_s > 0:
            try:
                done, pending = distributed.wait(list(pending), timeout=wait_s,
                                                 return_when="FIRST_COMPLETED")
            except TimeoutError:  # nothing finished within wait_s
                pass
        for future in done:
            shard = futures[future]
            try:
                counts, ends, shard_steps = future.result()
            except LavaTimeoutError:
                raise
            except LavaRunError as exc:  # raised on the worker, naming the shard
                raise LavaRunError(f"on the Dask cluster: {exc}") from exc
            except distributed.KilledWorker as exc:
                raise LavaRunError(
                    f"{shard.describe()}: the Dask worker running it died (killed, or "
                    "often the out-of-memory killer); the other shards were stopped and no "
                    "result is returned. Check the workers' memory and run again") from exc
            except Exception as exc:
                raise LavaRunError(
                    f"{shard.describe()} failed on the Dask cluster "
                    f"({type(exc).__name__}: {exc}); the other shards were stopped and "
                    "no result is returned") from exc
            on_chunk(shard.first, shard.size, counts, ends)
            steps += shard_steps
        if pending and deadline is not None and time.monotonic() >= deadline:
            raise LavaTimeoutError(
                f"the Lava run exceeded timeout_s={timeout_s:g} s and was stopped: "
                "raise the timeout, or run fewer samples (limit) or time steps")
    return steps


@contextmanager
def local_cluster(n_workers: int, log_level: int | None = None):
    """A ``Client`` of a LocalCluster of ``n_workers`` processes (one thread each) set up
    to run Lava (:data:`LAVA_WORKER_SETTINGS`); closed on exit, and its scratch space (a
    temporary folder of its own, not Dask's shared ``dask-scratch-space``) removed.
    ``log_level``: of the ``distributed`` loggers (default: Dask's own)."""
    _distributed()
    import dask
    from distributed import Client, LocalCluster

    if log_level is not None:
        logging.getLogger("distributed").setLevel(log_level)
    scratch = tempfile.mkdtemp(prefix="lava-convert-dask-")  # Dask's scratch space: ours
    try:
        with dask.config.set({**LAVA_WORKER_SETTINGS, **LOCAL_SCHEDULER_SETTINGS,
                              "temporary-directory": scratch}):
            cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                   dashboard_address=":0", local_directory=scratch)
            try:
                client = Client(cluster)
                try:
                    yield client
                finally:
                    client.close()
            finally:
                cluster.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@contextmanager
def connect(scheduler: str, log_level: int | None = None):
    """A ``Client`` for ``--scheduler``: ``local:N`` (a LocalCluster of N workers, ``local``
    alone: one per available core) or a scheduler address (``tcp://host:8786``)."""
    if scheduler == "local" or scheduler.startswith("local:"):
        count = scheduler.partition(":")[2] or "auto"
        with local_cluster(resolve_workers(count), log_level) as client:
            yield client
        return
    if "://" not in scheduler and ":" not in scheduler:
        raise ConfigError(f"--scheduler {scheduler!r} is invalid: use local:N for a cluster on "
                          "this machine, or a scheduler address such as tcp://host:8786")
    distributed = _distributed()
    if log_level is not None:
        logging.getLogger("distributed").setLevel(log_level)
    try:
        client = distributed.Client(scheduler, timeout=30)
    except OSError as exc:
        raise LavaRunError(f"cannot reach the Dask scheduler at {scheduler} ({exc}); is it "
                           "running (dask scheduler), and is the address right?") from exc
    try:
        yield client
    finally:
        client.close()
