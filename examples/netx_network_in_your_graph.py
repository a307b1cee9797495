"""A lava-convert export inside your own Lava process graph, the way lava-dl's NetX
tutorials use ``netx.hdf5.Network``: Lava's own ring-buffer source and sinks (made by
``lc.lava_source`` / ``lc.lava_sinks``), your run loop and run configuration. Prints the
spike counts per layer and whether they equal the reference simulator's.

    python examples/netx_network_in_your_graph.py netx_exports/mnist_cnn_qcfs.net 3
"""

# ruff: noqa: I001  (lava_convert.netx first: it makes Lava importable on Python 3.11)
import sys

import numpy as np

import lava_convert as lc
from lava_convert.netx import Network

from lava.magma.core.run_conditions import RunSteps


def run_in_lava_graph(path: str, x: np.ndarray, network=Network, **options) -> dict:
    """Spike counts ``(samples, neurons)`` per layer (C,H,W order) of ``x`` on Lava.

    ``network`` is the NetX process class (``lava.lib.dl.netx.hdf5.Network`` runs files
    made with ``--target stock-netx``; it then needs ``input_message_bits`` in
    ``options``). Both take the same ``reset_offset``: 1, as the source sends from step 1."""
    file = lc.read_netx(path)
    net = network(net_config=path, reset_interval=file.timesteps, reset_offset=1, **options)
    source, steps = lc.lava_source(net, x)   # quantized, in net.inp's order, T steps each
    sinks = lc.lava_sinks(net, steps)        # one ring buffer per layer
    try:
        net.run(condition=RunSteps(num_steps=steps), run_cfg=lc.lava_run_config())
        return lc.lava_counts(net, sinks, len(x))
    finally:
        net.stop()


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
