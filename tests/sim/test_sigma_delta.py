"""Sigma-delta (NetX ``SDNN``) networks: the reference against lava-dl's own ground truth
and against Lava's fixed-point Delta, SigmaDelta and Sigma models, message for message."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from helpers import lava_messages

import lava_convert as lc
from lava_convert.errors import ConfigError, NetXFormatError
from lava_convert.ir import ConvGeometry, FixedLayer, FixedNetwork, Synapse
from lava_convert.lava.compat import ensure_lava
from lava_convert.netx.writer import write_netx
from lava_convert.sim.reference import simulate_fixed
from lava_convert.sim.sigma_delta import dense_preshift


def _gts() -> Path:
    root = Path(metadata.distribution("lava-dl").locate_file(""))
    gts = root / "tests/lava/lib/dl/netx/gts/pilotnet_sdnn"
    if not gts.is_dir():
        pytest.skip("lava-dl's NetX test fixtures are not installed")
    return gts


def test_pilotnet_sdnn_equals_lava_dls_ground_truth():
    """lava-dl's PilotNet SDNN (4 conv and 4 dense sigma-delta layers, thresholds of 0 to
    23, a Sigma output) on its own input: the output of every step equals the array
    lava-dl recorded from Lava (its test_pilotnet_sdnn)."""
    gts = _gts()
    net = lc.read_netx(gts / "network.net")
    assert net.neuron_model == "sdnn"
    frame = np.load(gts / "input.npy")[..., 0]  # (x, y, f): NetX's order
    truth = np.load(gts / "output.npy")  # (1, steps)
    run = simulate_fixed(net, frame.transpose(2, 1, 0)[None], truth.shape[1],
                         record_trains=True)
    np.testing.assert_array_equal(run.spike_trains[net.layers[-1].name][0, :, 0], truth[0])


def test_dense_preshift_is_netx_optimize_weight_bits():
    """The shift NetX gives dense weights before Lava's int32 sum, against NetX itself, for
    mixed, one-signed, clipped and zero matrices."""
    ensure_lava()
    from lava.lib.dl.netx.utils import optimize_weight_bits

    rng = np.random.default_rng(0)
    cases = [rng.integers(lo, hi, (7, 5)) for lo, hi in
             [(-3, 4), (-128, 128), (0, 9), (1, 255), (-256, 0), (-40, -1), (-2, 1)]]
    cases += [np.array([[300, -5]]), np.array([[-300, 5]]), np.array([[1, 2], [0, 64]]),
              np.array([[-64, 0]])]  # (stock NetX fails on an all-zero matrix)
    for w in cases:
        assert dense_preshift(w) == -optimize_weight_bits(w)[2], w


def _sdnn_network() -> FixedNetwork:
    """A small sigma-delta network with every layer kind stock NetX builds: a Delta input
    with a threshold, convs (padding, stride 2, negative weights and biases, thresholds
    that leave residues), a flatten into dense layers and a Sigma output."""
    rng = np.random.default_rng(1)

    def conv(name, c_in, c_out, shape, stride, padding, vth):
        w = rng.integers(-20, 24, (c_out, c_in, 3, 3))
        return FixedLayer(name=name, kind="conv", shape=shape, vth=vth, neuron="sdnn",
                          synapse=Synapse("conv", w, geometry=ConvGeometry(
                              stride=stride, padding=padding)),
                          bias=rng.integers(-3, 4, c_out))

    def dense(name, n_in, n_out, vth, spiking=True):
        return FixedLayer(name=name, kind="dense", shape=(n_out,), vth=vth, neuron="sdnn",
                          synapse=Synapse("dense", rng.integers(-30, 30, (n_out, n_in))),
                          bias=rng.integers(-2, 3, n_out) if spiking else np.zeros(
                              n_out, np.int64), spiking=spiking)

    layers = (
        FixedLayer(name="in", kind="input", shape=(2, 7, 6), synapse=None, vth=1,
                   neuron="sdnn", bias=np.zeros((2, 7, 6), np.int64)),
        conv("c1", 2, 4, (4, 7, 6), (1, 1), (1, 1), vth=2),
        conv("c2", 4, 3, (3, 3, 2), (2, 2), (0, 0), vth=0),
        dense("d1", 18, 9, vth=5),
        dense("out", 9, 3, vth=0, spiking=False),
    )
    return FixedNetwork(input_shape=(2, 7, 6), input_scale=1.0, input_bits=8,
                        input_signed=True, layers=layers, timesteps=8)


def _wrapping_network() -> FixedNetwork:
    """A dense sigma-delta layer on large graded input, whose sums NetX's pre-shifted
    weights take past Lava's int32 accumulator (it wraps, then shifts back)."""
    rng = np.random.default_rng(4)
    layers = (
        FixedLayer(name="in", kind="input", shape=(24,), synapse=None, vth=0, neuron="sdnn",
                   bias=np.zeros(24, np.int64)),
        FixedLayer(name="d", kind="dense", shape=(4,), vth=0, neuron="sdnn",
                   synapse=Synapse("dense", rng.integers(-1, 4, (4, 24))),
                   bias=np.zeros(4, np.int64)),
        FixedLayer(name="out", kind="dense", shape=(2,), vth=0, neuron="sdnn", spiking=False,
                   synapse=Synapse("dense", rng.integers(-3, 4, (2, 4))),
                   bias=np.zeros(2, np.int64)),
    )
    return FixedNetwork(input_shape=(24,), input_scale=1.0, input_bits=16, input_signed=True,
                        layers=layers, timesteps=4)


def wrapping_input() -> np.ndarray:
    """A sample for :func:`_wrapping_network` on which its every layer sends."""
    return np.random.default_rng(2).integers(10000, 32000, (1, 24))


@pytest.mark.lava
@pytest.mark.parametrize("which", ["stock", "ours"])
def test_every_message_equals_lavas(tmp_path, which):
    """Every layer's message at every step of a run from rest, in Lava (stock
    ``netx.hdf5.Network`` with Lava's models, or our ``Network`` with our fast
    convolution) against the reference: the same graded values; also where a dense
    layer's int32 accumulator wraps."""
    small = np.random.default_rng(2).integers(-90, 120, (1, 2, 7, 6))
    for net, x, T in [(_sdnn_network(), small, 10), (_wrapping_network(), wrapping_input(), 4)]:
        path = write_netx(net, tmp_path / "sdnn.net")
        ref = simulate_fixed(lc.read_netx(path), x, T, record_trains=True)
        assert all(np.any(t) for t in ref.spike_trains.values())  # every layer sends
        assert not np.all(np.isin(ref.spike_trains[net.layers[1].name], (-1, 0, 1)))
        for layer, messages in zip(net.layers, lava_messages(path, x[0], T, which)):
            np.testing.assert_array_equal(messages, ref.spike_trains[layer.name][0],
                                          err_msg=f"layer {layer.name} ({which})")


def test_a_dense_layers_int32_sums_wrap():
    """The wrapping network's dense sums do pass 2**31 once NetX pre-shifts its weights
    (so the Lava test above covers the wrap)."""
    net, x = _wrapping_network(), wrapping_input()
    messages = (x.astype(np.int64) << 6)  # what the Delta input sends at step 1
    sums = messages @ net.layers[1].weight.T.astype(np.int64)
    assert np.abs(sums).max() * 2**dense_preshift(net.layers[1].weight) >= 2**31


def test_counts_and_output_follow_the_messages():
    """Counts are each neuron's non-zero messages; a Sigma output's score is its final sum
    in real units; predictions per step follow it; every sample starts from rest (a batch
    equals its samples run one by one)."""
    net = _sdnn_network()
    x = np.random.default_rng(3).integers(-90, 120, (4, *net.input_shape))
    run = simulate_fixed(net, x, 6, record_trains=True)
    for name, train in run.spike_trains.items():
        np.testing.assert_array_equal(run.spike_counts[name], (train != 0).sum(axis=1))
    np.testing.assert_array_equal(run.output, run.spike_trains["out"][:, -1] / 2.0**12)
    np.testing.assert_array_equal(run.predictions_per_step[-1], run.predictions)
    for k in range(len(x)):
        alone = simulate_fixed(net, x[k:k + 1], 6, record_trains=True)
        for name in run.spike_trains:
            np.testing.assert_array_equal(alone.spike_trains[name][0],
                                          run.spike_trains[name][k])


def test_what_sigma_delta_files_cannot_do_is_refused_by_name(tmp_path):
    """The float mode and a bias on a Sigma output are refused with what to do; a file
    mixing LIF and sigma-delta layers is refused naming the layer."""
    import h5py

    net = _sdnn_network()
    path = write_netx(net, tmp_path / "sdnn.net")
    x = np.zeros((1, *net.input_shape))
    with pytest.raises(ConfigError, match="mode='float'"):
        lc.simulate(path, x, 4, mode="float")
    with h5py.File(path, "r+") as f:
        f["layer/6"].create_dataset("bias", data=np.zeros(3, np.int64))
    with pytest.raises(NetXFormatError, match="Sigma cannot take"):
        lc.read_netx(path)
    path = write_netx(net, tmp_path / "mixed.net")
    with h5py.File(path, "r+") as f:
        del f["layer/5/neuron"]  # a dense layer without neurons: NetX's LIF integrator
    with pytest.raises(NetXFormatError, match="lif neurons after sdnn"):
        lc.read_netx(path)


def test_the_loihi2_check_holds_sigma_delta_layers_to_their_limits():
    """lava-dl's PilotNet SDNN fits every exact limit with stock models; a bias whose
    shift by 12 bits leaves the 24-bit state fails its limit, naming the layer; the
    message bound grows layer by layer from the input's width."""
    import dataclasses

    from lava_convert.report.loihi2 import loihi2_fit

    fit = loihi2_fit(_gts() / "network.net")
    assert fit.ok and fit.custom == ()
    net = _sdnn_network()
    bad = dataclasses.replace(net.layers[3], bias=np.full(9, 3000))
    fit = loihi2_fit(dataclasses.replace(net, layers=net.layers[:3] + (bad,) + net.layers[4:]))
    failed = [(layer.name, limit.name) for layer in fit.layers for limit in layer.limits
              if limit.exact and not limit.ok]
    assert failed == [("d1", "bias mantissa (bias << 12 in 24 bits)")]
    bounds = [int(limit.found) for layer in fit.layers for limit in layer.limits
              if limit.name.startswith("messages")]
    assert bounds[0] == 127 << 6  # the 8-bit signed input, with 6 fractional bits
