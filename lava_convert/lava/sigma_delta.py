"""A sigma-delta network (NetX ``SDNN``) on Lava, sample by sample.

Stock NetX builds sigma-delta neurons without a reset, and Lava's fixed-point
``SigmaDelta`` drops the low bits of every message it sends (``>> 6``) without carrying
them, so a stream of samples drifts: each sample runs in a network of its own, from rest
(:class:`~lava_convert.lava.procs.network.Network`, built as stock NetX builds such a
file), as the reference simulates it (:mod:`lava_convert.sim.sigma_delta`). Every
layer's messages are recorded for the sample's ``T`` steps; the runtime is stopped on
every path (errors, Ctrl-C, timeouts) under :func:`~lava_convert.lava.guard.guarded_run`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import LavaConvertError, LavaRunError
from ..ir import FixedNetwork
from .compat import ensure_lava
from .graph_io import port_layout
from .guard import guarded_run, stop_within

#: ``on_sample(k, trains)``: sample ``k``'s messages by layer name, ``(T, neurons)`` in
#: C,H,W order.
SampleHandler = Callable[[int, dict[str, np.ndarray]], None]


def record_sigma_delta(net: FixedNetwork, x_int: np.ndarray, timesteps: int,
                       on_sample: SampleHandler, *, models: str = "fast",
                       timeout_s: float | None = None) -> int:
    """Run each quantized sample of ``x_int`` for ``timesteps`` steps in a fresh Lava
    network of ``net``, handing its messages to ``on_sample``; return the steps run.

    Raises:
        LavaRunError: Lava failed (the runtime was stopped).
        LavaTimeoutError: ``timeout_s`` passed (the runtime was stopped).
        KeyboardInterrupt: Ctrl-C or SIGTERM (the runtime was stopped).
    """
    ensure_lava()
    from lava.magma.core.run_conditions import RunSteps
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    from .procs.network import Network
    from .run_config import lava_run_config

    data = port_layout(net, x_int, net.layers[0].kind)
    try:
        with guarded_run(timeout_s) as guard:
            for k, sample in enumerate(data):
                network = Network(net)
                source = Source(data=sample[..., None].astype(np.int32))
                source.s_out.connect(network.inp)
                sinks = []
                for block in network.layers:
                    sinks.append(Sink(shape=block.out.shape, buffer=timesteps))
                    block.out.connect(sinks[-1].a_in)
                try:
                    with guard.watching(source):
                        source.run(condition=RunSteps(num_steps=timesteps),
                                   run_cfg=lava_run_config(models))
                        guard.check()
                        with guard.shielded():  # a request/reply exchange: not cut short
                            recorded = [sink.data.get() for sink in sinks]
                finally:
                    with guard.shielded():
                        stop_within(source)
                on_sample(k, {layer.name: _chw(d, timesteps)
                              for layer, d in zip(net.layers, recorded)})
    except (KeyboardInterrupt, LavaConvertError):
        raise
    except Exception as exc:
        raise LavaRunError(f"Lava run failed ({type(exc).__name__}: {exc}); the runtime was "
                           "stopped") from exc
    return len(data) * timesteps


def _chw(recorded: np.ndarray, timesteps: int) -> np.ndarray:
    """A sink's ``(W, H, C, T)`` or ``(n, T)`` recording as ``(T, neurons)`` in C,H,W order."""
    recorded = np.rint(recorded).astype(np.int64)
    moved = recorded.transpose(3, 2, 1, 0) if recorded.ndim == 4 else recorded.T
    return moved.reshape(timesteps, -1)
