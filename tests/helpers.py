"""Test helpers (tests/ is on sys.path under pytest's default import mode)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run_python(code: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (import-time behaviour cannot be undone in-process)."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout)

#: The repository root (netx_exports/, tutorials/, README.md).
ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def fixed_layer(name: str, kind: str, shape, weight, bias, vth: int, *, stride=(1, 1),
                padding=(0, 0), dilation=(1, 1), groups: int = 1, skips=(), **neuron):
    """A FixedLayer from a weight array and conv settings (tests build many by hand)."""
    from lava_convert.ir import ConvGeometry, FixedLayer, Synapse

    synapse = None if weight is None else Synapse(
        kind, weight, geometry=ConvGeometry(tuple(stride), tuple(padding), tuple(dilation),
                                            groups))
    return FixedLayer(name=name, kind=kind, shape=tuple(shape), synapse=synapse, bias=bias,
                      vth=vth, skips=tuple(skips), **neuron)


def lava_messages(path, x, T: int, which: str) -> list:
    """Every layer's messages at every step of one sample ``x`` (C,H,W) run from rest in
    Lava, each ``(T, neurons)`` in C,H,W order: stock ``netx.hdf5.Network`` with Lava's
    models, or our ``Network`` with our fast convolution."""
    import numpy as np

    import lava_convert as lc
    from lava_convert.lava.compat import ensure_lava

    ensure_lava()
    from lava.lib.dl import netx
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc import io

    from lava_convert.netx import Network

    if which == "stock":
        net, config = netx.hdf5.Network(net_config=str(path)), Loihi2SimCfg(
            select_tag="fixed_pt")
    else:
        net, config = Network(net_config=str(path)), lc.lava_run_config()
    source = io.source.RingBuffer(data=x.transpose()[..., None].astype(np.int32))
    source.s_out.connect(net.in_layer.neuron.a_in)
    sinks = []
    for block in net.layers:
        sinks.append(io.sink.RingBuffer(shape=block.out.shape, buffer=T))
        block.out.connect(sinks[-1].a_in)
    try:
        net.run(condition=RunSteps(num_steps=T), run_cfg=config)
        data = [sink.data.get() for sink in sinks]
    finally:
        net.stop()
    return [(d.transpose(3, 2, 1, 0) if d.ndim == 4 else d.T).reshape(T, -1) for d in data]
