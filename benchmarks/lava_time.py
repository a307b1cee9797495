"""Where Lava's time goes on a CNN: per-step cost of each synapse next to the whole step.

For an exported CNN (default ``netx_exports/mnist_cnn_qcfs.net``, written by
the ``cnn`` section), times Lava's own synapse arithmetic in isolation, per
layer and time step: ``lava.proc.conv.utils.conv`` (what Lava's ``PyConvModel``
calls each step, with NetX's flipped W,H,C kernel) and the dense matrix-vector
product, on inputs with the layer's measured spike density. The whole step is
measured on Lava itself: two runs of different length, so that compilation
and start-up cancel. What the synapses do not explain is neuron updates,
recording and the message passing between the layer processes.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

import lava_convert as lc
from lava_convert.lava.compat import ensure_lava
from lava_convert.sim.inputs import quantize_input
from lava_convert.zoo.data import load_dataset

NET = Path("netx_exports/mnist_cnn_qcfs.net")
REPEATS = 100


def _per_call_ms(fn, repeats: int = REPEATS) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return 1000 * (time.perf_counter() - start) / repeats


def synapse_ms(net, x) -> list[tuple[str, str, float]]:
    """(layer, description, ms per step) of each layer's synapse, as Lava computes it."""
    ensure_lava()
    from lava.proc.conv import utils

    from lava_convert.lava.procs.network import lava_conv_weight

    ref = lc.simulate(net, x, net.timesteps)
    payload = quantize_input(net, x[:1])[0].reshape(net.input_shape)
    inp = payload.astype(np.int32)  # graded input, the same every step
    rows, rng = [], np.random.default_rng(0)
    for layer in net.layers:
        if layer.kind == "conv":
            w = np.ascontiguousarray(lava_conv_weight(layer.synapse))
            whc, g = inp.transpose(2, 1, 0), layer.geometry
            ms = _per_call_ms(lambda w=w, whc=whc, g=g: utils.conv(
                whc, w, w.shape[1:3], g.stride[::-1], g.padding[::-1], g.dilation[::-1],
                g.groups))
            what = f"conv {inp.shape} -> {layer.shape} (scipy, {layer.shape[0]} x " \
                   f"{inp.shape[0] // g.groups} channel pairs)"
        else:
            w, v = layer.weight.astype(np.int32), inp.reshape(-1)
            ms = _per_call_ms(lambda w=w, v=v: w @ v)
            what = f"dense {v.size} -> {layer.shape[0]}"
        rows.append((layer.name, what, ms))
        # the next layer's input: spikes with this layer's measured density on step 1..T
        density = ref.spike_counts[layer.name].mean() / net.timesteps
        inp = (rng.random(layer.shape) < density).astype(np.int32)
    return rows


def step_ms(net, x, n_short: int = 4, n_long: int = 12) -> float:
    """Lava's milliseconds per time step after compilation (difference of two runs)."""
    T = net.timesteps
    short = lc.run_lava(net, x[:n_short], T, progress=False).wall_time_s
    long = lc.run_lava(net, x[:n_long], T, progress=False).wall_time_s
    return 1000 * (long - short) / ((n_long - n_short) * T)


def section(quick: bool = False) -> str:
    if not NET.is_file():
        return f"{NET} is missing: run the cnn section first.\n"
    net = lc.read_netx(NET)
    data = load_dataset("mnist")
    x = data.x_test[:64]
    rows = synapse_ms(net, x)
    whole = step_ms(net, x, 2, 4) if quick else step_ms(net, x)
    synapses = sum(ms for _, _, ms in rows)
    lines = [f"## Where Lava's time goes ({NET.name}, T={net.timesteps})", "",
             "| layer | synapse | ms per step |", "|---|---|---|"]
    lines += [f"| {name} | {what} | {ms:.2f} |" for name, what, ms in rows]
    lines += [f"| all | synapses together | {synapses:.2f} |",
              f"| all | one Lava time step (measured) | {whole:.2f} |", "",
              f"The synapse arithmetic is {100 * synapses / whole:.0f} % of a time step; the "
              f"rest ({whole - synapses:.1f} ms) is neuron updates, recording and the "
              f"messages between the {len(net.layers) + 1} processes. Lava's `PyConvModel` "
              "convolves with scipy one (output, input) channel pair at a time "
              "(`lava.proc.conv.utils`, torch disabled there) and computes every output "
              "position before striding, so the folded 6x6 stride-2 kernel of the pooled conv "
              "takes most of the synapse time.", ""]
    return "\n".join(lines)
