"""Fuzzing: mutated NetX files and random small models either work or raise our errors.

For the reader: a valid export (dense or conv) gets one random mutation (a
key deleted, a dataset or attribute replaced by a random value, the file
truncated or bytes overwritten). ``read_netx`` must then either return a
network that simulates, or raise :class:`NetXFormatError`.

For the converter: random chains of layers (supported or not) with random
calibration data. ``convert`` must either raise a :class:`LavaConvertError`,
or give a network whose export reads back identically and simulates.

Any other exception, or an example slower than the deadline, fails the test.
CI runs a few dozen examples; ``make test-all`` runs many more. The model fuzzer
counts how many examples reach the round trip and fails if too few do (it prints
the tally with ``pytest -s``).
"""

from __future__ import annotations

import os
import shutil
from collections import Counter

import h5py
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from torch import nn

import lava_convert as lc
from lava_convert.netx import read_netx
from lava_convert.sim.reference import simulate_fixed

EXAMPLES = int(os.environ.get("LAVA_CONVERT_FUZZ_EXAMPLES",
                              500 if os.environ.get("LAVA_CONVERT_SLOW") == "1" else 40))
FUZZ = settings(max_examples=EXAMPLES, deadline=10_000,
                derandomize=os.environ.get("LAVA_CONVERT_SLOW") != "1",
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """A dense and a conv export to mutate."""
    d = tmp_path_factory.mktemp("fuzz_base")
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    dense = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))
    conv = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
                         nn.Conv2d(2, 2, 2, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(2, 2))
    return [lc.convert(dense, rng.random((16, 5)), timesteps=4).export(d / "dense.net"),
            lc.convert(conv, rng.random((16, 1, 6, 6)), timesteps=4).export(d / "conv.net")]


def _keys(f: h5py.File) -> tuple[list[str], list[tuple[str, str]]]:
    datasets, attrs = [], []
    f.visititems(lambda name, obj: datasets.append(name) if isinstance(obj, h5py.Dataset)
                 else None)
    for name in ["/"] + [n for n in f if isinstance(f[n], h5py.Group)]:
        attrs += [(name, a) for a in f[name].attrs]
    return sorted(datasets), sorted(attrs)


values = st.one_of(
    st.integers(-2**40, 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1, 2**17, 2**24, 4096, 4097]),
    st.text(st.characters(blacklist_characters="\x00"), max_size=6),
    st.lists(st.integers(-5, 300), min_size=0, max_size=5).map(np.asarray),
    st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=5).map(np.asarray),
    st.tuples(st.integers(1, 4), st.integers(1, 4)).map(lambda s: np.ones(s)),
)


@settings(FUZZ)
@given(data=st.data())
def test_mutated_netx_files_read_or_raise_our_error(exports, tmp_path, data):
    base = data.draw(st.sampled_from(exports), label="file")
    path = tmp_path / "mutated.net"
    shutil.copyfile(base, path)
    op = data.draw(st.sampled_from(["delete", "replace", "attr", "truncate", "overwrite"]),
                   label="op")
    if op in ("truncate", "overwrite"):
        raw = bytearray(path.read_bytes())
        at = data.draw(st.integers(0, len(raw) - 1), label="offset")
        if op == "truncate":
            raw = raw[:at]
        else:
            chunk = data.draw(st.binary(min_size=1, max_size=16), label="bytes")
            raw[at:at + len(chunk)] = chunk
        path.write_bytes(bytes(raw))
    else:
        with h5py.File(path, "r+") as f:
            datasets, attrs = _keys(f)
            if op == "attr":
                group, name = data.draw(st.sampled_from(attrs), label="attr")
                f[group].attrs[name] = data.draw(values, label="value")
            else:
                key = data.draw(st.sampled_from(datasets), label="key")
                del f[key]
                if op == "replace":
                    f[key] = data.draw(values, label="value")
    try:
        net = read_netx(path)
    except lc.NetXFormatError as exc:
        assert str(path) in str(exc)
        return
    x = np.random.default_rng(1).random((2, *net.input_shape))
    try:
        simulate_fixed(net, x, 4)  # not the file's T, which may be mutated to 2**30
    except lc.LavaConvertError:
        pass


@st.composite
def models(draw, supported_only: bool = False):
    """A random chain of modules for a random input shape (often unsupported on purpose,
    never with ``supported_only``)."""
    image = draw(st.booleans())
    if image:
        shape = (draw(st.integers(1, 3)), draw(st.integers(3, 8)), draw(st.integers(3, 8)))
    else:
        shape = (draw(st.integers(1, 6)),)
    layers, cur = [], shape
    if supported_only:  # blocks of a synapse, maybe batch norm, an activation, maybe a pool
        kinds = []
        for _ in range(draw(st.integers(1, 3))):
            synapse = draw(st.sampled_from(["conv", "conv", "linear"] if image else ["linear"]))
            image = image and synapse == "conv"
            kinds += [synapse] + (["bn"] if draw(st.booleans()) else []) + [draw(
                st.sampled_from(["relu", "threshold", "qcfs"]))]
            if image and draw(st.booleans()):
                kinds.append(draw(st.sampled_from(["avgpool", "adaptive"])))
    else:
        kinds = [draw(st.sampled_from(["linear", "relu", "threshold", "qcfs", "dropout",
                                       "identity", "bn", "sigmoid"]
                                      + (["conv", "conv", "avgpool", "maxpool", "flatten",
                                          "adaptive"] if image else [])))
                 for _ in range(draw(st.integers(1, 5)))]
    for kind in kinds:
        if kind in ("conv", "avgpool", "maxpool", "adaptive", "flatten") and len(cur) != 3:
            continue  # an image layer after the image was flattened
        if kind == "linear":
            if len(cur) == 3:
                layers.append(nn.Flatten())
            n = draw(st.integers(1, 6))
            layers.append(nn.Linear(int(np.prod(cur)), n))
            cur = (n,)
        elif kind == "conv":
            k = draw(st.integers(1, 3))
            pad = draw(st.integers(0, 1))
            stride = draw(st.integers(1, 2))
            cin = cur[0]
            groups = draw(st.sampled_from([g for g in (1, 2, 3) if cin % g == 0]))
            cout = groups * draw(st.integers(1, 2))
            if min(cur[1:]) + 2 * pad < k:
                continue
            layers.append(nn.Conv2d(cin, cout, k, stride=stride, padding=pad, groups=groups))
            cur = (cout,) + tuple((s + 2 * pad - k) // stride + 1 for s in cur[1:])
        elif kind in ("avgpool", "maxpool"):
            if min(cur[1:]) < 2:
                continue
            layers.append(nn.AvgPool2d(2) if kind == "avgpool" else nn.MaxPool2d(2))
            cur = (cur[0],) + tuple(s // 2 for s in cur[1:])
        elif kind == "adaptive":
            layers.append(nn.AdaptiveAvgPool2d(1))
            cur = (cur[0], 1, 1)
        elif kind == "flatten":
            layers.append(nn.Flatten())
            cur = (int(np.prod(cur)),)
        elif kind == "bn":
            layers.append(nn.BatchNorm2d(cur[0]) if len(cur) == 3 else nn.BatchNorm1d(cur[0]))
        else:
            layers.append({"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "dropout": nn.Dropout,
                           "identity": nn.Identity}.get(kind, nn.ReLU)()
                          if kind not in ("threshold", "qcfs")
                          else lc.ThresholdReLU(draw(st.floats(0.1, 4.0))) if kind == "threshold"
                          else lc.QCFS(draw(st.integers(1, 8)), draw(st.floats(0.1, 4.0))))
    if len(cur) == 3:
        layers.append(nn.Flatten())
    layers.append(nn.Linear(int(np.prod(cur)), draw(st.integers(1, 4))))
    return nn.Sequential(*layers), shape


#: Share of random models that must convert and reach the round-trip assertions (the rest
#: are refused with one of our errors); below it the fuzzer mostly tests refusals.
MIN_ROUND_TRIPS = 0.4


def test_random_models_convert_and_round_trip_or_raise_our_error(tmp_path_factory):
    outcomes: Counter[str] = Counter()

    @FUZZ
    @given(data=st.data(), clean=st.sampled_from([True, True, False]),
           seed=st.integers(0, 2**16), T=st.integers(1, 16))
    def example(data, clean, seed, T):
        # two in three examples are supported models with good calibration data, so that
        # most reach the round trip; the rest may be anything
        spec = data.draw(models(supported_only=clean))
        n = data.draw(st.integers(8, 16) if clean else st.integers(0, 12))
        corrupt = "none" if clean else data.draw(
            st.sampled_from(["none", "nan", "shape", "scale"]))
        outcomes[_convert_and_round_trip(tmp_path_factory.mktemp("fuzz"), spec, seed, n,
                                         corrupt, T)] += 1

    example()
    total = sum(outcomes.values())
    print(f"random models: {dict(outcomes)} of {total}")
    assert outcomes["round trip"] >= MIN_ROUND_TRIPS * total, dict(outcomes)


def _convert_and_round_trip(tmp_path, spec, seed, n, corrupt, T) -> str:
    """Convert, export, read back and simulate; return ``"round trip"`` or the name of
    the error that refused the model."""
    model, shape = spec
    torch.manual_seed(seed)
    for m in model.modules():  # give BatchNorm non-trivial statistics
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    model.eval()
    rng = np.random.default_rng(seed)
    x = rng.random((n, *shape))
    if corrupt == "nan" and x.size:
        x.flat[0] = np.nan
    elif corrupt == "shape":
        x = x.reshape(n, -1)[:, : max(1, x[0].size - 1)] if n else x
    elif corrupt == "scale":
        x = x * 1e6
    try:
        converted = lc.convert(model, x, timesteps=T)
    except lc.LavaConvertError as exc:
        event(f"refused: {type(exc).__name__}")
        return f"refused: {type(exc).__name__}"
    path = converted.export(tmp_path / "model.net")
    back = read_netx(path)
    assert back.layer_names == converted.fixed.layer_names
    for a, b in zip(back.layers, converted.fixed.layers):
        assert (a.vth, a.reset, a.v0, a.spiking, a.shape) == (b.vth, b.reset, b.v0, b.spiking,
                                                              b.shape)
        np.testing.assert_array_equal(a.full_bias(), b.full_bias())
        if b.weight is not None:
            np.testing.assert_array_equal(a.weight, b.weight)
    sample = x[:2]
    np.testing.assert_array_equal(simulate_fixed(back, sample, T).output,
                                  converted.simulate(sample, T).output)
    event("round trip")
    return "round trip"
