"""Run a NetX file as Lava processes on Lava's CPU simulator (``fixed_pt``).

Graph built per run::

    GradedSource --graded--> netx Dense block [synapse -> SoftResetLIF] --> ... --> readout

The blocks are lava-dl's own ``netx.blocks.process.Dense`` with the weights
passed through NetX's ``optimize_weight_bits``, exactly as
``netx.hdf5.Network`` builds them; only the neuron process is ours
(:class:`~lava_convert.lava.procs.process.SoftResetLIF`), built from the
file's ``resetMode``.

Residual shortcuts (layers with ``skips``) are wired next to the blocks::

    source block --> [SpikeDelay(d)] --> Conv/Dense synapse --> target block's neurons

The target's neurons sum their main synapse and the shortcut (Lava adds every
connection into an InPort). Each synapse delays by one step, so a shortcut
across ``n`` synapses of the main path is held ``d = n - 1`` extra steps
(:func:`~lava_convert.ir.fixed.skip_delays`; no delay line when ``d = 0``) and both
paths carry the same sample step when they meet.

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
from ..ir import FixedNetwork, layer_depths, skip_delays
from ..netx.reader import read_netx
from ..sim import readout
from ..sim.inputs import check_input, check_timesteps, quantize_input
from ..sim.results import RunResult
from .compat import ensure_lava
from .guard import check_timeout, guarded_run, stop_runtime

log = logging.getLogger(__name__)

#: Runs expected to take longer than this many Lava steps show a progress bar.
PROGRESS_MIN_STEPS = 2000


def lava_conv_weight(synapse) -> np.ndarray:
    """A conv synapse's kernel as NetX hands it to Lava: the PyTorch kernel flipped for
    Lava's convolution, then ordered (C_out, W, H, C_in)."""
    return synapse.weight[:, :, ::-1, ::-1].transpose(0, 3, 2, 1)


class LavaNetwork:
    """A FixedNetwork built as Lava processes for streaming ``num_samples`` samples.

    Use as a context manager (or call :meth:`stop`): Lava's runtime and its
    worker processes are stopped on exit, also after errors.
    """

    def __init__(self, net: FixedNetwork, x_int: np.ndarray, timesteps: int, chunk: int) -> None:
        ensure_lava()
        from .procs.process import GradedSource

        self.net, self.T, self.chunk = net, timesteps, chunk
        self.ring = chunk + 1  # one spare slot: earlier layers run ahead into the next window
        data = x_int.reshape(len(x_int), *net.input_shape)
        if len(net.input_shape) == 3 and net.layers[0].kind != "dense":
            data = data.transpose(0, 3, 2, 1)  # C,H,W -> Lava's W,H,C
        else:
            data = data.reshape(len(data), -1)  # NetX flattens in C,H,W order
        self.source = GradedSource(data=data, window=timesteps, num_message_bits=net.input_bits)
        self.blocks = []
        shape = tuple(net.input_shape) if data.ndim == 4 else (data.shape[1],)
        upstream, message_bits = self.source.s_out, net.input_bits
        for layer, depth in zip(net.layers, layer_depths(net.layers)):
            block = self._block(layer, shape, message_bits, start=1 + depth)
            if layer.kind == "input":
                upstream.connect(block.neuron.a_in)  # NetX leaves Input.inp unconnected
            elif layer.kind == "dense" and len(shape) == 3:
                upstream.transpose([2, 1, 0]).flatten().connect(block.inp)  # as NetX wires it
            else:
                upstream.connect(block.inp)
            upstream, shape, message_bits = block.out, layer.shape, 0
            self.blocks.append(block)
        self.shortcuts = [self._shortcut(t, k, delay)
                          for t, delays in enumerate(skip_delays(net.layers))
                          for k, delay in enumerate(delays)]
        self._started, self._step = False, 0

    def _shortcut(self, t: int, k: int, delay: int) -> list:
        """Wire shortcut ``k`` of layer ``t``: source spikes -> SpikeDelay (if the paths
        differ by more than one synapse) -> synapse -> layer ``t``'s neurons, which add
        it to their main input."""
        from lava.lib.dl.netx.utils import optimize_weight_bits
        from lava.proc.conv.process import Conv
        from lava.proc.dense.process import Dense

        from .procs.process import SpikeDelay

        skip = self.net.layers[t].skips[k]
        source = self.net.layers[skip.source]
        upstream, procs = self.blocks[skip.source].out, []
        if delay:
            line = SpikeDelay(shape=tuple(reversed(source.shape)), delay=delay)
            upstream.connect(line.s_in)
            upstream, procs = line.s_out, [line]
        if skip.kind == "dense":
            weight, num_bits, exponent, _ = optimize_weight_bits(skip.weight)
            synapse = Dense(weights=weight, weight_exp=exponent, num_weight_bits=num_bits,
                            num_message_bits=0)
            if len(source.shape) == 3:
                upstream = upstream.transpose([2, 1, 0]).flatten()
        else:
            g = skip.geometry
            synapse = Conv(input_shape=tuple(reversed(source.shape)),
                           weight=lava_conv_weight(skip), stride=np.array(g.stride[::-1]),
                           padding=np.array(g.padding[::-1]),
                           dilation=np.array(g.dilation[::-1]), groups=g.groups,
                           num_message_bits=0)
        upstream.connect(synapse.s_in)
        synapse.a_out.connect(self.blocks[t].neuron.a_in)
        return procs + [synapse]

    def _block(self, layer, in_shape: tuple[int, ...], message_bits: int, start: int):
        """A lava-dl NetX block for ``layer`` with our neuron, built the way NetX builds it."""
        from lava.lib.dl.netx.blocks.process import Conv, Dense, Input
        from lava.lib.dl.netx.utils import optimize_weight_bits

        from .procs.process import SoftResetLIF

        neuron_params = dict(
            neuron_proc=SoftResetLIF, bias_key="bias_mant", vth=layer.vth, du=layer.du,
            dv=layer.dv, bias_exp=layer.bias_exp, reset_mode=layer.reset, window=self.T,
            start=start, v0=layer.v0, record_windows=self.ring, record_v=not layer.spiking,
            num_message_bits=0,
        )
        whc = tuple(reversed(layer.shape))
        bias = layer.full_bias()
        bias = bias.transpose(2, 1, 0) if bias.ndim == 3 else bias
        if layer.kind == "input":
            return Input(shape=whc, neuron_params=neuron_params, bias=bias)
        if layer.kind == "dense":
            weight, num_bits, exponent, _ = optimize_weight_bits(layer.weight)
            return Dense(shape=whc, neuron_params=neuron_params, weight=weight,
                         num_weight_bits=num_bits, weight_exponent=exponent,
                         input_message_bits=message_bits, bias=bias)
        g = layer.geometry
        return Conv(input_shape=tuple(reversed(in_shape)), shape=whc,
                    neuron_params=neuron_params, weight=lava_conv_weight(layer.synapse),
                    stride=np.array(g.stride[::-1]), padding=np.array(g.padding[::-1]),
                    dilation=np.array(g.dilation[::-1]), groups=g.groups,
                    input_message_bits=message_bits, bias=bias)

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
                stop_runtime(self.source)
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
    T = check_timesteps(net.timesteps if timesteps is None else timesteps)
    x = check_input(x, net.input_shape, "run_lava")
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
                for first in range(0, N, chunk):
                    count = min(chunk, N - first)
                    lava_net.run_until((first + count) * T + depth)
                    guard.check()
                    # reading Vars is a request/reply exchange with the workers: cut short, it
                    # leaves them waiting forever and stop() waiting for them
                    with guard.shielded():
                        c, p = lava_net.read(first, count)
                    for name, v in c.items():
                        counts[name].append(v)
                    ends.append(p)
                    if bar is not None:
                        bar.update(count)
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
