"""Our torch convolution model against Lava's own scipy one: the arithmetic alone, then both
as Lava processes in the same graph, step for step."""

from __future__ import annotations

import numpy as np
import pytest

from lava_convert.errors import ConfigError
from lava_convert.lava.compat import ensure_lava

GEOMETRIES = [  # (C_in, W, H, C_out, (kW, kH), stride, padding, dilation, groups), Lava order
    (1, 7, 5, 3, (3, 3), (1, 1), (0, 0), (1, 1), 1),
    (2, 9, 6, 4, (3, 3), (2, 2), (1, 1), (1, 1), 2),
    (3, 5, 5, 3, (1, 1), (1, 1), (0, 0), (1, 1), 3),
    (2, 8, 7, 2, (3, 2), (2, 1), (1, 0), (1, 1), 1),
    (1, 9, 9, 2, (3, 3), (1, 1), (2, 2), (2, 2), 1),
    (4, 12, 12, 5, (6, 6), (2, 2), (2, 2), (1, 1), 1),  # a pooled conv's folded kernel
]
#: Largest input magnitude: binary, graded within float32's exact range, beyond it (the
#: model must then compute in float64), and beyond int32 (Lava's own arithmetic).
INPUT_RANGES = [1, 60, 2**18, 2**27]


def _case(geometry, largest, seed=0):
    c_in, w, h, c_out, k, s, p, d, g = geometry
    rng = np.random.default_rng(seed)
    weight = rng.integers(-127, 128, (c_out, *k, c_in // g)).astype(np.int32)
    s_in = rng.integers(-largest, largest + 1, (w, h, c_in)).astype(np.int32)
    s_in[rng.random(s_in.shape) < 0.3] = 0
    return s_in, weight, np.array(s), np.array(p), np.array(d), g


@pytest.mark.filterwarnings("ignore:invalid value encountered in cast")  # stock, past int32
@pytest.mark.parametrize("largest", INPUT_RANGES)
@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_torch_convolution_equals_lavas_scipy_convolution(geometry, largest):
    ensure_lava()
    from lava.proc.conv import utils

    from lava_convert.lava.procs.conv_model import lava_conv

    s_in, weight, s, p, d, g = _case(geometry, largest)
    want = utils.conv(s_in, weight, weight.shape[1:3], s, p, d, g)
    got = lava_conv(s_in, weight, s, p, d, g)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(utils.signed_clamp(got, bits=24),
                                  utils.signed_clamp(want, bits=24))
    silent = lava_conv(np.zeros_like(s_in), weight, s, p, d, g)
    np.testing.assert_array_equal(silent, np.zeros_like(want))


def _conv_graph(weight, data, geometry, message_bits):
    """RingBuffer source -> Lava Conv -> RingBuffer sink."""
    from lava.proc.conv.process import Conv
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    _, s, p, d, g = geometry
    source = Source(data=data)
    conv = Conv(weight=weight, input_shape=data.shape[:3], stride=s, padding=p, dilation=d,
                groups=g, num_message_bits=message_bits)
    sink = Sink(shape=conv.a_out.shape, buffer=data.shape[-1])
    source.s_out.connect(conv.s_in)
    conv.a_out.connect(sink.a_in)
    return source, conv, sink


@pytest.mark.lava
@pytest.mark.parametrize("message_bits", [0, 24])
def test_fast_model_runs_step_for_step_as_lavas_own_in_a_lava_graph(message_bits):
    """Binary messages (any nonzero payload is a spike), graded ones large enough to wrap
    Lava's 24-bit accumulator, and weights set between two runs: the sink's every step is
    the same with our model and Lava's."""
    ensure_lava()
    from lava.magma.core.run_conditions import RunSteps

    from lava_convert.lava.procs.conv_model import PyTorchConvModelFixed
    from lava_convert.lava.run_config import lava_run_config

    geometry = GEOMETRIES[1]
    s_in, weight, s, p, d, g = _case(geometry, 2**20)
    steps = 6
    rng = np.random.default_rng(3)
    data = rng.integers(-2**20, 2**20, (*s_in.shape, 2 * steps)).astype(np.int32)
    data[rng.random(data.shape) < 0.5] = 0
    data[..., 1] = 2  # binary: a payload of 2 is one spike
    changed = np.flip(weight, axis=0).copy()
    received, used = {}, {}
    for models in ("stock", "fast"):
        source, conv, sink = _conv_graph(weight, data, (None, s, p, d, g), message_bits)
        try:
            source.run(condition=RunSteps(num_steps=steps), run_cfg=lava_run_config(models))
            conv.weight.set(changed)
            source.run(condition=RunSteps(num_steps=steps), run_cfg=lava_run_config(models))
            received[models] = sink.data.get()
            used[models] = conv.model_class
        finally:
            source.stop()
    assert used["fast"] is PyTorchConvModelFixed and used["stock"] is not PyTorchConvModelFixed
    assert np.any(received["stock"][..., steps + 1:] != received["stock"][..., 1:steps])
    if message_bits:  # the graded sums reach past 2**23 and wrap
        assert np.abs(received["stock"]).max() > 2**22
    np.testing.assert_array_equal(received["fast"], received["stock"])


def test_an_unknown_model_set_is_refused_by_name():
    from lava_convert.lava.run_config import lava_run_config

    with pytest.raises(ConfigError, match="'scipy'.*fast, stock"):
        lava_run_config("scipy")
