"""One process's share of a Lava run: the network built as Lava processes, run chunk by chunk.

Graph built per run::

    GradedSource --graded--> Network (lava_convert.netx.Network: NetX blocks with
                             SoftResetLIF neurons, shortcuts with their delay lines)

The network is the same hierarchical process users put into their own graphs
(:class:`~lava_convert.lava.procs.network.Network`), built with
``reset_interval=T`` and per-window recording: one way to build Lava graphs, not two.

Streaming: sample ``k`` is sent on steps ``kT+1 ... kT+T``. Each synapse adds
one step, so layer ``l`` (1-based) sees sample ``k`` on steps
``kT+1+l ... kT+T+l``; its neurons reset at the first of those steps (the
reset wave follows the data) and record spike counts per sample (and, for the
readout, the final membrane potential). Samples run in chunks; after each
chunk the recordings are read and handed on, so memory stays flat for long runs.
The runtime is stopped on every path, including errors and Ctrl-C.

:func:`record` is the whole of a run in this process; :mod:`.shards` runs it in
several processes and :mod:`.cluster` on Dask workers; :func:`.runtime.run_lava`
chooses and turns the recordings into a ``RunResult``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import LavaConvertError, LavaRunError
from ..ir import FixedNetwork, layer_depths
from .compat import ensure_lava
from .graph_io import port_layout
from .guard import guarded_run, stop_within

log = logging.getLogger(__name__)

#: ``on_chunk(first, count, counts, ends)``: the recordings of samples ``first ..
#: first+count-1``: spike counts by layer name ``(count, neurons)`` and the readout's
#: final potentials ``(count, classes)`` (Lava units).
ChunkHandler = Callable[[int, int, dict, np.ndarray], None]


@dataclass(frozen=True)
class RunSettings:
    """How every process of one Lava run streams its samples: ``timesteps`` per sample,
    ``chunk`` samples per compiled run segment, and the process-model set
    (:data:`~lava_convert.lava.run_config.LAVA_MODELS`)."""

    timesteps: int
    chunk: int
    models: str = "fast"


class LavaNetwork:
    """A FixedNetwork built as Lava processes for streaming samples ``x_int``.

    Use as a context manager (or call :meth:`stop`): Lava's runtime and its
    worker processes are stopped on exit, also after errors.
    """

    def __init__(self, net: FixedNetwork, x_int: np.ndarray, timesteps: int, chunk: int,
                 models: str = "fast") -> None:
        ensure_lava()
        from .procs.network import Network
        from .procs.process import GradedSource

        self.net, self.T, self.chunk, self.models = net, timesteps, chunk, models
        # When a chunk's last sample leaves the readout (at depth d), layer 1 is already
        # (d - 2) // T + 1 windows further: one slot each, or it resets a slot not yet read
        # (with d > T + 1 it once did, losing the first sample's layer-1 counts)
        depth = layer_depths(net.layers)[-1]
        self.ring = chunk + 1 + max(0, (depth - 2) // timesteps)
        self.network = Network(net, reset_interval=timesteps, reset_offset=1,
                               record_windows=self.ring)  # the source sends from step 1
        data = port_layout(net, x_int, net.layers[0].kind)
        self.source = GradedSource(data=data, window=timesteps, num_message_bits=net.input_bits)
        self.source.s_out.connect(self.network.inp)
        self.blocks = self.network.layers
        self._started, self._step = False, 0

    def run_until(self, step: int) -> None:
        """Advance the simulation to absolute time step ``step``."""
        from lava.magma.core.run_conditions import RunSteps

        from .run_config import lava_run_config

        if step > self._step:
            self._started = True  # from here on a runtime may exist and must be stopped
            self.source.run(condition=RunSteps(num_steps=step - self._step),
                            run_cfg=lava_run_config(self.models))
            self._step = step

    def read(self, first: int, count: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Spike counts per layer (C,H,W order, flattened) and readout state of some samples.

        Returns counts by layer name, and the last layer's ``v`` at the end of each
        sample (Lava units; zeros for a spiking readout, which records none).
        """
        slots = np.arange(first, first + count) % self.ring

        def chw(a: np.ndarray) -> np.ndarray:  # (count, W, H, C) -> (count, C*H*W)
            a = np.rint(a[slots]).astype(np.int64)
            return (a.transpose(0, 3, 2, 1) if a.ndim == 4 else a).reshape(count, -1)

        counts = {layer.name: chw(block.neuron.spike_counts.get())
                  for layer, block in zip(self.net.layers, self.blocks)}
        last, block = self.net.layers[-1], self.blocks[-1]
        if last.spiking:
            return counts, np.zeros_like(counts[last.name])
        return counts, chw(block.neuron.v_end.get())

    def stop(self) -> None:
        """Stop Lava's runtime and its worker processes (idempotent, never raises)."""
        if self._started:
            self._started = False
            try:
                stop_within(self.source)
            except Exception as exc:  # never mask the error that led here
                log.warning("stopping the Lava runtime failed: %s", exc)

    def __enter__(self) -> LavaNetwork:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def record(net: FixedNetwork, x_int: np.ndarray, settings: RunSettings,
           on_chunk: ChunkHandler, timeout_s: float | None = None) -> int:
    """Run quantized samples ``x_int`` through ``net`` as Lava processes in this process,
    handing each chunk's recordings to ``on_chunk``; return the number of steps run.

    Raises:
        LavaRunError: Lava failed (the runtime was stopped).
        LavaTimeoutError: ``timeout_s`` passed (the runtime was stopped).
        KeyboardInterrupt: Ctrl-C or SIGTERM (the runtime was stopped).
    """
    N, depth = len(x_int), layer_depths(net.layers)[-1]
    timesteps = settings.timesteps
    chunk = max(1, min(int(settings.chunk), N))
    try:
        with guarded_run(timeout_s) as guard:
            lava_net = LavaNetwork(net, x_int, timesteps, chunk, settings.models)
            try:
                with guard.watching(lava_net.source):
                    _run_chunks(lava_net, guard, N, chunk, timesteps, depth, on_chunk)
            finally:
                with guard.shielded():
                    lava_net.stop()
    except (KeyboardInterrupt, LavaConvertError):
        raise
    except Exception as exc:
        raise LavaRunError(f"Lava run failed ({type(exc).__name__}: {exc}); the runtime was "
                           "stopped") from exc
    return N * timesteps + depth


def _run_chunks(lava_net: LavaNetwork, guard, N: int, chunk: int, T: int, depth: int,
                on_chunk: ChunkHandler) -> None:
    """Run the samples chunk by chunk, reading each chunk's recordings."""
    for first in range(0, N, chunk):
        count = min(chunk, N - first)
        lava_net.run_until((first + count) * T + depth)
        guard.check()
        # reading Vars is a request/reply exchange with the workers: cut short, it leaves
        # them waiting forever and stop() waiting for them
        with guard.shielded():
            c, p = lava_net.read(first, count)
        on_chunk(first, count, c, p)


class Recordings:
    """Chunks of recordings, in any order, merged into sample order; a :data:`ChunkHandler`."""

    def __init__(self, n_samples: int) -> None:
        self.n_samples = n_samples
        self._chunks: dict[int, tuple[int, dict, np.ndarray]] = {}

    def __call__(self, first: int, count: int, counts: dict, ends: np.ndarray) -> None:
        self._chunks[first] = (count, counts, ends)

    def merged(self) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Spike counts by layer ``(samples, neurons)`` and readout potentials, in sample
        order. Raises :class:`LavaRunError` if a sample was not recorded exactly once."""
        order = sorted(self._chunks)
        expected = 0
        for first in order:
            if first != expected:
                break
            expected += self._chunks[first][0]
        total = sum(chunk[0] for chunk in self._chunks.values())
        if expected != self.n_samples or total != self.n_samples or not order:
            raise LavaRunError(f"the run recorded samples up to {expected} of "
                               f"{self.n_samples}: a chunk is missing or repeated; no result "
                               "is returned")
        names = self._chunks[order[0]][1]
        counts = {name: np.concatenate([self._chunks[f][1][name] for f in order])
                  for name in names}
        return counts, np.concatenate([self._chunks[f][2] for f in order])
