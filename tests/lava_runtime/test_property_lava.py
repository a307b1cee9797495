"""Property tests: random small networks give identical spike trains on Lava and the reference.

CI runs a few examples; ``make test-all`` (LAVA_CONVERT_SLOW=1) runs many more.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from helpers import fixed_layer
from hypothesis import HealthCheck, given, settings, target
from hypothesis import strategies as st

from lava_convert.ir import FixedNetwork
from lava_convert.lava.compat import ensure_lava
from lava_convert.lava.run_config import LAVA_MODELS
from lava_convert.sim.inputs import quantize_input
from lava_convert.sim.reference import simulate_fixed

pytestmark = pytest.mark.lava

EXAMPLES = int(os.environ.get("LAVA_CONVERT_PROPERTY_EXAMPLES",
                              200 if os.environ.get("LAVA_CONVERT_SLOW") == "1" else 8))


def _conv_out(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


@st.composite
def networks(draw):
    conv = draw(st.booleans())
    if conv:
        shape = (draw(st.integers(1, 2)), draw(st.integers(3, 6)), draw(st.integers(3, 6)))
    else:
        shape = (draw(st.integers(1, 6)),)
    input_shape, layers = shape, []
    bits = draw(st.integers(1, 8))
    n_layers = draw(st.integers(1, 3))
    for i in range(n_layers):
        last = i == n_layers - 1
        ints = lambda lo, hi, size: np.array(  # noqa: E731
            draw(st.lists(st.integers(lo, hi), min_size=size, max_size=size)), dtype=np.int64)
        w_max = draw(st.sampled_from([1, 3, 20, 254]))
        b_max = min(4095, 2 * w_max)
        if len(shape) == 3 and draw(st.booleans()):
            c_in, h, w = shape
            k, s = draw(st.integers(1, min(3, h, w))), draw(st.integers(1, 2))
            p, groups = draw(st.integers(0, 1)), 1
            c_out = draw(st.integers(1, 3))
            if c_in == 2 and draw(st.booleans()):
                groups, c_out = 2, 2 * draw(st.integers(1, 2))
            out = (c_out, _conv_out(h, k, s, p, 1), _conv_out(w, k, s, p, 1))
            weight = ints(-w_max, w_max, c_out * (c_in // groups) * k * k).reshape(
                c_out, c_in // groups, k, k)
            fan_in = (c_in // groups) * k * k
            synapse = dict(kind="conv", shape=out, weight=weight, bias=ints(-b_max, b_max, c_out),
                           stride=(s, s), padding=(p, p), groups=groups)
        else:
            fan_in, n = int(np.prod(shape)), draw(st.integers(1, 5))
            weight = ints(-w_max, w_max, n * fan_in).reshape(n, fan_in)
            synapse = dict(kind="dense", shape=(n,), weight=weight, bias=ints(-b_max, b_max, n))
        # Thresholds on the scale of the layer's largest current, so that layers are partly
        # active and v often lands exactly on the threshold (tests the strict '>').
        largest = w_max * fan_in * (2**bits - 1 if i == 0 else 1)
        layer = fixed_layer(
            name=f"{synapse['kind']}{i}",
            vth=draw(st.integers(1, max(1, largest // 2)) | st.integers(1, 2**17 - 1)),
            du=draw(st.sampled_from([4095, 4095, 0]) | st.integers(0, 4095)),
            dv=draw(st.sampled_from([0, 0, 4095]) | st.integers(0, 4095)),
            reset=draw(st.sampled_from(["soft", "hard"])),
            spiking=not (last and draw(st.booleans())),
            **synapse,
        )
        if not np.any(layer.weight):  # NetX cannot load an all-zero weight matrix
            layer.weight.reshape(-1)[0] = 1
        layers.append(layer)
        shape = layer.shape
    net = FixedNetwork(input_shape=input_shape, input_scale=1.0, input_bits=bits,
                       input_signed=False, layers=tuple(layers), timesteps=1)
    samples = draw(st.integers(1, 3))
    x = np.array(draw(st.lists(st.integers(0, 2**bits - 1), min_size=samples * int(
        np.prod(input_shape)), max_size=samples * int(np.prod(input_shape))))).reshape(
        samples, *input_shape)
    return net, x.astype(np.float64), draw(st.integers(1, 6)), draw(st.sampled_from(LAVA_MODELS))


def lava_spike_trains(net: FixedNetwork, x: np.ndarray, T: int,
                      models: str = "fast") -> dict[str, np.ndarray]:
    """Per-step spikes of every layer on Lava (with the process models ``models``), as
    (samples, T, neurons) in C,H,W order."""
    ensure_lava()
    from lava.proc.io.sink import RingBuffer

    from lava_convert.lava.simulate import LavaNetwork

    depth = sum(l.has_synapse for l in net.layers)
    steps = len(x) * T + depth
    lava = LavaNetwork(net, quantize_input(net, x), T, chunk=len(x), models=models)
    sinks = []
    for block in lava.blocks:
        sink = RingBuffer(shape=block.out.shape, buffer=steps)
        block.out.connect(sink.a_in)
        sinks.append(sink)
    with lava:
        lava.run_until(steps)
        data = [sink.data.get() for sink in sinks]
    trains, start = {}, 1
    for layer, d in zip(net.layers, data):
        start += int(layer.has_synapse)
        d = d.transpose(3, 2, 1, 0) if d.ndim == 4 else d.T  # (steps, C, H, W) / (steps, n)
        d = d.reshape(steps, -1)
        trains[layer.name] = np.stack(
            [d[start - 1 + k * T: start - 1 + (k + 1) * T] for k in range(len(x))]).astype(bool)
    return trains


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(networks())
def test_random_networks_spike_for_spike(case):
    net, x, T, models = case
    ref = simulate_fixed(net, x, T, record_trains=True)
    rates = [t.mean() for t in ref.spike_trains.values()]
    target(float(sum(0 < r < 1 for r in rates)), label="partly active layers")
    lava = lava_spike_trains(net, x, T, models)
    for layer in net.layers:
        np.testing.assert_array_equal(lava[layer.name], ref.spike_trains[layer.name],
                                      err_msg=f"layer {layer.name} of {net} ({models} models)")
