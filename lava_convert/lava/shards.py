"""Split a Lava run over worker processes: contiguous sample shards, one Lava network each.

Samples are independent (every neuron resets at the start of each sample's
window), so a run over ``N`` samples can be cut into contiguous shards that run
as separate Lava networks in separate processes; merged in sample order, their
recordings are exactly those of one run. Lava's per-step cost is what a run
spends its time on, so this is how a run gets faster.

Each shard is a process forked from the coordinator (the process that called
:func:`run_shards`). It runs :func:`.simulate.record` in its own main thread, so
everything a single-process run guarantees holds inside it (the dead-worker
watchdog, the bounded stop, the timeout), and sends each chunk's recordings
back through a pipe. The coordinator:

* turns Ctrl-C and SIGTERM into ``KeyboardInterrupt`` (shards ignore Ctrl-C sent to
  the whole process group; the coordinator stops them itself);
* stops every shard on every way out -- error, interrupt, timeout: SIGTERM, which
  a shard turns into a clean stop of its Lava runtime, then SIGKILL after
  ``STOP_LIMIT_S`` plus a grace period;
* fails the whole run when one shard fails, naming the shard and its samples;
  nothing partial is returned.

If the coordinator itself is killed outright, each shard gets SIGTERM from the
kernel (Linux ``PR_SET_PDEATHSIG``) and stops its Lava workers.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, LavaRunError, LavaTimeoutError
from ..ir import FixedNetwork
from . import guard
from .simulate import ChunkHandler, RunSettings, record

log = logging.getLogger(__name__)

#: Seconds a shard gets to stop its Lava runtime after SIGTERM before it is killed.
SHARD_STOP_S = guard.STOP_LIMIT_S + guard.TERMINATE_GRACE_S
#: How often the coordinator checks its deadline and ``should_stop`` (seconds).
POLL_S = 0.25


@dataclass(frozen=True)
class Shard:
    """Samples ``first .. stop-1`` of a run, run as one Lava network."""

    index: int
    first: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.first

    def describe(self) -> str:
        return f"shard {self.index} (samples {self.first}-{self.stop - 1})"


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def resolve_workers(workers) -> int:
    """``workers`` as a positive count: an int, a numeric string, or ``"auto"`` (the cores
    available to this process)."""
    if isinstance(workers, str):
        if workers == "auto":
            return available_cores()
        if workers.strip().isdigit():
            workers = int(workers)
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ConfigError(f"workers={workers!r} is invalid: use a positive number of worker "
                          "processes, or 'auto' for one per available core")
    return int(workers)


def plan_shards(n_samples: int, shards: int) -> tuple[Shard, ...]:
    """``n_samples`` cut into at most ``shards`` contiguous, non-empty shards whose sizes
    differ by at most one (earlier shards take the remainder)."""
    count = max(1, min(int(shards), int(n_samples)))
    base, extra = divmod(int(n_samples), count)
    out, first = [], 0
    for i in range(count):
        stop = first + base + (1 if i < extra else 0)
        out.append(Shard(i, first, stop))
        first = stop
    return tuple(out)


def run_shards(net: FixedNetwork, x_int: np.ndarray, settings: RunSettings,
               shards: tuple[Shard, ...], on_chunk: ChunkHandler, *,
               timeout_s: float | None = None, base: int = 0,
               should_stop: Callable[[], bool] | None = None) -> int:
    """Run each shard of ``x_int`` in its own forked process; hand every chunk's recordings
    to ``on_chunk`` (sample indices of the whole run; chunks of different shards arrive
    interleaved); return the steps run in all shards together. ``x_int[0]`` is sample
    ``base`` of the run (a Dask task holds only its shard's samples).

    ``should_stop`` is polled every ``POLL_S``: when it returns true the shards are stopped
    and ``KeyboardInterrupt`` raised (how a Dask task learns its run was cancelled).

    Raises:
        LavaRunError: a shard failed or ended unexpectedly (every shard was stopped).
        LavaTimeoutError: ``timeout_s`` passed (every shard was stopped).
        KeyboardInterrupt: Ctrl-C, SIGTERM or ``should_stop`` (every shard was stopped).
    """
    guard.check_timeout(timeout_s)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    context = multiprocessing.get_context("fork")
    running: list[tuple[Shard, multiprocessing.Process, object]] = []
    steps = 0
    with coordinating() as stopping:
        try:
            for shard in shards:
                receive, send = context.Pipe(duplex=False)
                process = context.Process(
                    target=_shard_main, name=f"lava-convert-shard-{shard.index}",
                    args=(send, net, x_int[shard.first - base:shard.stop - base], settings,
                          timeout_s, os.getpid()))
                process.start()
                send.close()  # the shard holds the only sending end: EOF when it ends
                running.append((shard, process, receive))
            pending = {receive: (shard, process) for shard, process, receive in running}

            def take(receive) -> bool:
                """Handle the next message of ``receive``'s shard; true once it is done."""
                nonlocal steps
                shard, process = pending[receive]
                message = _receive(receive, shard, process)
                if message[0] == "chunk":
                    _, first, count, counts, ends = message
                    on_chunk(shard.first + first, count, counts, ends)
                    return False
                steps += message[1]  # "done"
                return True

            while pending:
                if deadline is not None and time.monotonic() > deadline:
                    raise LavaTimeoutError(
                        f"the Lava run exceeded timeout_s={timeout_s:g} s and was stopped: "
                        "raise the timeout, or run fewer samples (limit) or time steps")
                if should_stop is not None and should_stop():
                    raise KeyboardInterrupt("the run was cancelled")
                for receive in multiprocessing.connection.wait(list(pending), POLL_S):
                    if take(receive):
                        del pending[receive]
                # a shard's end is also read off its exit status: its Lava workers inherit
                # the pipe's sending end (and the process sentinel), so a killed shard whose
                # workers linger sends no EOF
                for receive, (shard, process) in list(pending.items()):
                    if process.exitcode is not None:
                        done = False
                        while not done and receive.poll(0):  # what it sent before it ended
                            done = take(receive)
                        if not done:
                            raise _ended(shard, process)
                        del pending[receive]
        finally:
            stopping.set()
            _stop_shards(running)
    return steps


def _receive(receive, shard: Shard, process) -> tuple:
    """The next message of a shard; its failure or unexpected end as an error naming it."""
    try:
        message = receive.recv()
    except (EOFError, OSError):
        raise _ended(shard, process) from None
    if message[0] != "error":
        return message
    _, kind, text = message
    if kind == "LavaTimeoutError":
        raise LavaTimeoutError(f"{shard.describe()}: {text}")
    raise LavaRunError(f"{shard.describe()} failed ({kind}: {text}); the other shards were "
                       "stopped and no result is returned")


def _ended(shard: Shard, process) -> LavaRunError:
    """The error for a shard process that ended without sending its result."""
    process.join(SHARD_STOP_S)
    return LavaRunError(
        f"{shard.describe()} ended unexpectedly (exit code {process.exitcode}); the other "
        "shards were stopped and no result is returned. Check memory (a killed process is "
        "often the out-of-memory killer) and run again")


def _shard_main(send, net: FixedNetwork, x_int: np.ndarray, settings: RunSettings,
                timeout_s: float | None, parent_pid: int) -> None:
    """A shard process: run its samples, send each chunk, then ``("done", steps)`` or
    ``("error", type name, message)``."""
    guard.forget_inherited_runs()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the coordinator stops the shards
    guard.die_with_parent(parent_pid)
    inherited = multiprocessing.current_process()._config.get("tempdir")

    def leave(code: int) -> None:
        """End at once (multiprocessing's exit handlers would otherwise still be running
        when the coordinator, done, sends SIGTERM, and print the interrupted clean-up as a
        traceback), removing the temporary folder (``pymp-*``) this shard's Lava made,
        which those handlers would have removed."""
        made = multiprocessing.current_process()._config.get("tempdir")
        if made and made != inherited:
            shutil.rmtree(made, ignore_errors=True)
        os._exit(code)

    def on_chunk(first: int, count: int, counts: dict, ends: np.ndarray) -> None:
        send.send(("chunk", first, count, counts, ends))

    try:
        steps = record(net, x_int, settings, on_chunk, timeout_s)
        send.send(("done", steps))
        leave(0)  # Lava is stopped and the result sent
    except KeyboardInterrupt:
        leave(128 + signal.SIGTERM)  # stopped by the coordinator (or the parent died)
    except BaseException as exc:  # reported to the coordinator, which raises it
        try:
            send.send(("error", type(exc).__name__, str(exc)))
        except (OSError, ValueError):
            pass
        leave(1)


def _stop_shards(running: list) -> None:
    """End every shard process: SIGTERM (a clean stop of its Lava runtime), SIGKILL after
    ``SHARD_STOP_S``; close the pipes. Never raises."""
    for _, process, _ in running:
        if process.is_alive():
            try:
                process.terminate()
            except OSError:  # pragma: no cover - ended meanwhile
                pass
    limit = time.monotonic() + SHARD_STOP_S
    for shard, process, receive in running:
        process.join(max(0.0, limit - time.monotonic()))
        if process.is_alive():
            log.warning("%s did not stop within %g s; killed", shard.describe(), SHARD_STOP_S)
            process.kill()
            process.join()
        receive.close()


@contextmanager
def coordinating():
    """In the main thread: Ctrl-C and SIGTERM raise ``KeyboardInterrupt`` until the shards
    are being stopped (yielded event set); then they are held back, so a second signal
    cannot cut the stop short. A signal the caller ignores stays ignored."""
    stopping = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stopping
        return
    previous = {}

    def on_signal(signum, frame):
        if not stopping.is_set():
            raise KeyboardInterrupt() if signum == signal.SIGINT else \
                KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")

    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            previous[signum] = signal.signal(signum, on_signal)
    try:
        yield stopping
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
