"""A lava-convert export inside your own Lava process graph, the way lava-dl's NetX
tutorials use ``netx.hdf5.Network``: Lava's own ring-buffer source and sinks, your run
loop, ``Loihi2SimCfg(select_tag="fixed_pt")``. Prints the spike counts per layer and
whether they equal the reference simulator's.

    python examples/netx_network_in_your_graph.py netx_exports/mnist_cnn_qcfs.net 3
"""

# ruff: noqa: I001  (lava_convert.netx first: it makes Lava importable on Python 3.11)
import sys

import numpy as np

import lava_convert as lc
from lava_convert.netx import Network

from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc import io


def run_in_lava_graph(path: str, x: np.ndarray, network=Network, **options) -> dict:
    """Spike counts ``(samples, neurons)`` per layer (C,H,W order) of ``x`` on Lava.

    ``network`` is the NetX process class (``lava.lib.dl.netx.hdf5.Network`` runs files
    made with ``--target stock-netx``; it then needs ``input_message_bits`` in
    ``options``). Both take the same ``reset_offset``: 1, as the source sends from step 1."""
    file = lc.read_netx(path)
    T = file.timesteps
    net = network(net_config=path, reset_interval=T, reset_offset=1, **options)  # per sample
    # graded input spikes, each sample held for T steps, in the (x, y, f) order of net.inp
    payload = lc.quantize_input(file, x).reshape(len(x), *file.input_shape)
    if payload.ndim == 4 and net.inp.shape != (int(np.prod(file.input_shape)),):
        payload = payload.transpose(0, 3, 2, 1)
    payload = payload.reshape(len(x), *net.inp.shape)
    steps = len(x) * T + len(net.layers)  # every layer's synapse delays by one step
    data = np.zeros((*net.inp.shape, steps))
    for k, sample in enumerate(payload):
        data[..., k * T:(k + 1) * T] = sample[..., None]
    source = io.source.RingBuffer(data=data)
    source.s_out.connect(net.inp)
    sinks = [io.sink.RingBuffer(shape=layer.out.shape, buffer=steps) for layer in net.layers]
    for layer, sink in zip(net.layers, sinks):
        layer.out.connect(sink.a_in)
    try:
        net.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        trains = [sink.data.get() for sink in sinks]
    finally:
        net.stop()
    counts = {}
    for depth, (layer, train) in enumerate(zip(file.layers, trains), start=1):
        per_sample = [train[..., k * T + depth:(k + 1) * T + depth].sum(axis=-1)
                      for k in range(len(x))]  # layer l sees sample k from step kT + l + 1
        counts[layer.name] = np.stack([c.transpose(2, 1, 0) if c.ndim == 3 else c
                                       for c in per_sample]).reshape(len(x), -1)
    return counts


if __name__ == "__main__":
    path, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 3
    x = np.random.default_rng(0).random((n, *lc.read_netx(path).input_shape))
    lava = run_in_lava_graph(path, x)
    reference = lc.simulate(path, x).spike_counts
    for name, counts in lava.items():
        print(f"layer {name}: {counts.sum(axis=1).tolist()} spikes per sample")
    same = all(np.array_equal(lava[k], reference[k]) for k in reference)
    print("equal to lc.simulate:", same)
    sys.exit(0 if same else 1)
