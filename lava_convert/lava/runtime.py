"""Run a NetX file as Lava processes on Lava's CPU simulator (``fixed_pt``).

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
chunk the recordings are read, so memory stays flat for long runs. The runtime
is stopped on every path, including errors and Ctrl-C.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from ..errors import LavaConvertError, LavaRunError
from ..hw.loihi import STATE_SHIFT
from ..ir import FixedNetwork, layer_depths
from ..netx.reader import read_netx
from ..sim import readout
from ..sim.inputs import check_input, check_input_range, quantize_input, resolve_timesteps
from ..sim.results import RunResult
from .compat import ensure_lava
from .guard import check_timeout, guarded_run, stop_within

log = logging.getLogger(__name__)

#: Runs expected to take longer than this many Lava steps show a progress bar.
PROGRESS_MIN_STEPS = 2000


class LavaNetwork:
    """A FixedNetwork built as Lava processes for streaming samples ``x_int``.

    Use as a context manager (or call :meth:`stop`): Lava's runtime and its
    worker processes are stopped on exit, also after errors.
    """

    def __init__(self, net: FixedNetwork, x_int: np.ndarray, timesteps: int, chunk: int) -> None:
        ensure_lava()
        from .procs.network import Network
        from .procs.process import GradedSource

        self.net, self.T, self.chunk = net, timesteps, chunk
        self.ring = chunk + 1  # one spare slot: earlier layers run ahead into the next window
        self.network = Network(net, reset_interval=timesteps, record_windows=self.ring)
        data = x_int.reshape(len(x_int), *net.input_shape)
        if len(net.input_shape) == 3 and net.layers[0].kind != "dense":
            data = data.transpose(0, 3, 2, 1)  # C,H,W -> Lava's W,H,C
        else:
            data = data.reshape(len(data), -1)  # NetX flattens in C,H,W order
        self.source = GradedSource(data=data, window=timesteps, num_message_bits=net.input_bits)
        self.source.s_out.connect(self.network.inp)
        self.blocks = self.network.layers
        self._started, self._step = False, 0

    def run_until(self, step: int) -> None:
        """Advance the simulation to absolute time step ``step``."""
        from lava.magma.core.run_conditions import RunSteps
        from lava.magma.core.run_configs import Loihi2SimCfg

        if step > self._step:
            self._started = True  # from here on a runtime may exist and must be stopped
            self.source.run(condition=RunSteps(num_steps=step - self._step),
                            run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
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


def run_lava(net: FixedNetwork | str | Path, x, timesteps: int | None = None, *,
             chunk: int = 256, progress: bool | None = None,
             timeout_s: float | None = None) -> RunResult:
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

    Raises:
        LavaRunError: Lava failed (the runtime was stopped).
        LavaTimeoutError: ``timeout_s`` passed (the runtime was stopped).
        KeyboardInterrupt: Ctrl-C or SIGTERM (the runtime was stopped).
    """
    if not isinstance(net, FixedNetwork):
        net = read_netx(net)
    T = resolve_timesteps(timesteps, net)
    x = check_input(x, net.input_shape, "run_lava")
    check_input_range(net, x, "run_lava")
    check_timeout(timeout_s)
    x_int = quantize_input(net, x)
    N, depth = len(x_int), layer_depths(net.layers)[-1]
    chunk = max(1, min(int(chunk), N))
    if progress is None:
        progress = N * T > PROGRESS_MIN_STEPS
    start = time.perf_counter()
    counts = {layer.name: [] for layer in net.layers}
    ends = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=N, desc="Lava", unit="sample")
    try:
        with guarded_run(timeout_s) as guard:
            lava_net = LavaNetwork(net, x_int, T, chunk)
            try:
                with guard.watching(lava_net.source):
                    _run_chunks(lava_net, guard, N, chunk, T, depth, counts, ends, bar)
            finally:
                with guard.shielded():
                    lava_net.stop()
    except (KeyboardInterrupt, LavaConvertError):
        raise
    except Exception as exc:
        raise LavaRunError(f"Lava run failed ({type(exc).__name__}: {exc}); the runtime was "
                           "stopped") from exc
    finally:
        if bar is not None:
            bar.close()
    last = net.layers[-1]
    output = readout.scores(np.concatenate(counts[last.name]).astype(np.float64),
                            np.concatenate(ends).astype(np.float64), spiking=last.spiking,
                            timesteps=T, vth=last.vth << STATE_SHIFT,
                            unit=readout.fixed_unit(last.scale))
    return RunResult(
        backend="lava", timesteps=T, output=output,
        spike_counts={k: np.concatenate(v) for k, v in counts.items()},
        wall_time_s=time.perf_counter() - start, info={"steps": N * T + depth},
    )


def _run_chunks(lava_net: LavaNetwork, guard, N: int, chunk: int, T: int, depth: int,
                counts: dict, ends: list, bar) -> None:
    """Run the samples chunk by chunk, reading each chunk's recordings."""
    for first in range(0, N, chunk):
        count = min(chunk, N - first)
        lava_net.run_until((first + count) * T + depth)
        guard.check()
        # reading Vars is a request/reply exchange with the workers: cut short, it leaves
        # them waiting forever and stop() waiting for them
        with guard.shielded():
            c, p = lava_net.read(first, count)
        for name, v in c.items():
            counts[name].append(v)
        ends.append(p)
        if bar is not None:
            bar.update(count)
