"""NetX files: round trip, stock NetX loading, and clear errors for bad files."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from helpers import ROOT, fixed_layer

import lava_convert as lc
from lava_convert.netx import read_netx, write_netx
from lava_convert.netx.format import stock_differences
from lava_convert.sim.results import assert_same_spikes


def test_round_trip_is_exact(digits_snn, tmp_path):
    path = write_netx(digits_snn.fixed, tmp_path / "n.net")
    back = read_netx(path)
    assert back.input_shape == digits_snn.fixed.input_shape
    assert back.input_scale == digits_snn.fixed.input_scale
    for a, b in zip(back.layers, digits_snn.fixed.layers):
        assert a.name == b.name and a.vth == b.vth and a.reset == b.reset
        assert a.spiking == b.spiking and a.scale == pytest.approx(b.scale)
        np.testing.assert_array_equal(a.weight, b.weight)
        np.testing.assert_array_equal(a.bias, b.bias)


def test_sidecar_records_the_export(digits_net, digits_snn):
    side = json.loads(digits_net.with_suffix(".json").read_text())
    assert side["version"] == lc.__version__
    assert side["config"]["timesteps"] == 32
    assert side["source_weights_sha256"] == digits_snn.source_hash
    assert [l["vth"] for l in side["layers"]] == [l.vth for l in digits_snn.fixed.layers]


@pytest.mark.lava
def test_missing_file(tmp_path):
    with pytest.raises(lc.NetXFormatError, match="no such file"):
        read_netx(tmp_path / "nope.net")


def test_a_network_instead_of_a_path(digits_snn, digits_net):
    with pytest.raises(lc.ConfigError, match="path of a .net file, not a FixedNetwork"):
        read_netx(digits_snn.fixed)
    from lava_convert.report.inspect import describe

    # describe takes either; only the file entry differs
    from_file, from_network = describe(digits_net), describe(read_netx(digits_net))
    assert from_file.pop("file") == str(digits_net) and from_network.pop("file") is None
    assert from_file == from_network


def test_truncated_file(digits_net, tmp_path):
    bad = tmp_path / "cut.net"
    bad.write_bytes(digits_net.read_bytes()[:1000])
    with pytest.raises(lc.NetXFormatError, match="cut.net.*(truncated|corrupt|unreadable)"):
        read_netx(bad)


def edited_copy(source, path, edit):
    """Copy the NetX file ``source`` to ``path`` and apply ``edit(h5py_file)`` to the copy."""
    path.write_bytes(source.read_bytes())
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


def retype_layer_2(f):
    del f["layer/2/type"]
    f["layer/2"].create_dataset("type", (1,), "S4", [b"pool"])


def test_foreign_empty_and_unsupported_files(digits_net, tmp_path):
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f.create_dataset("data", data=np.arange(3))
    with pytest.raises(lc.NetXFormatError, match="foreign.h5: /layer: missing.*not a NetX"):
        read_netx(foreign)
    empty = tmp_path / "empty.net"
    with h5py.File(empty, "w") as f:
        f.create_group("layer")
    with pytest.raises(lc.NetXFormatError, match="empty"):
        read_netx(empty)
    pool = edited_copy(digits_net, tmp_path / "pool.net", retype_layer_2)
    with pytest.raises(lc.NetXFormatError, match="/layer/2/type: layer type 'pool'"):
        read_netx(pool)


def test_newer_files(digits_net, tmp_path):
    newer = edited_copy(digits_net, tmp_path / "newer.net",
                        lambda f: f["lava_convert"].attrs.__setitem__("format_version", 99))
    with pytest.raises(lc.NetXFormatError, match="newer.*upgrade"):
        read_netx(newer)


def test_missing_key_is_named(digits_net, tmp_path):
    broken = edited_copy(digits_net, tmp_path / "broken.net",
                         lambda f: f.__delitem__("layer/2/weight"))
    with pytest.raises(lc.NetXFormatError, match="/layer/2/weight: missing"):
        read_netx(broken)


def test_failed_export_keeps_the_previous_file(digits_snn, tmp_path, monkeypatch):
    path = digits_snn.export(tmp_path / "keep.net")
    before = path.read_bytes()

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(h5py.Group, "create_dataset", explode)
    with pytest.raises(RuntimeError, match="disk full"):
        digits_snn.export(path)
    assert path.read_bytes() == before
    assert not list(tmp_path.glob(".*tmp"))


def small_cnn():
    from lava_convert.ir import FixedNetwork

    rng = np.random.default_rng(3)
    conv = fixed_layer(name="conv", kind="conv", shape=(2, 3, 1),
                       weight=rng.integers(-50, 50, (2, 1, 3, 3)), bias=np.array([3, -2]),
                       vth=90, stride=(2, 2), padding=(1, 0), dv=100, reset="hard")
    fc = fixed_layer(name="fc", kind="dense", shape=(3,), weight=rng.integers(-9, 9, (3, 6)),
                     bias=np.zeros(3, np.int64), vth=5000, reset="hard")
    return FixedNetwork(input_shape=(1, 5, 4), input_scale=10.0, input_bits=6,
                        input_signed=False, layers=(conv, fc), timesteps=8)


def test_conv_round_trip_and_flatten(tmp_path):
    net = small_cnn()
    back = read_netx(write_netx(net, tmp_path / "cnn.net"))
    with h5py.File(tmp_path / "cnn.net") as f:
        assert [f[f"layer/{i}/type"][0] for i in range(4)] == [b"input", b"conv", b"flatten",
                                                               b"dense"]
    for a, b in zip(back.layers, net.layers):
        assert (a.kind, a.shape, a.geometry, a.dv) == (b.kind, b.shape, b.geometry, b.dv)
        np.testing.assert_array_equal(a.weight, b.weight)
        np.testing.assert_array_equal(a.bias, b.bias)


def test_conv_geometry_is_checked(tmp_path):
    path = write_netx(small_cnn(), tmp_path / "cnn.net")
    with h5py.File(path, "r+") as f:
        del f["layer/1/stride"]
        f["layer/1"].create_dataset("stride", data=np.array([1, 1]))
    with pytest.raises(lc.NetXFormatError, match=r"/layer/1.*output \(2, 3, 1\).*\(2, 5, 2\)"):
        read_netx(path)


@pytest.mark.lava
def test_conv_file_loads_in_stock_netx_and_runs_spike_exact(tmp_path):
    from lava_convert.lava.compat import ensure_lava

    path = write_netx(small_cnn(), tmp_path / "cnn.net")
    ensure_lava()
    from lava.lib.dl.netx import hdf5

    net = hdf5.Network(net_config=str(path), input_message_bits=6)
    assert [type(b).__name__ for b in net.layers] == ["Conv", "Dense"]
    assert net.layers[0].neuron.v.shape == (1, 3, 2)  # W, H, C
    x = np.random.default_rng(0).random((4, 1, 5, 4))
    lava = lc.run_lava(path, x, progress=False)
    ref = lc.simulate(path, x)
    assert_same_spikes(lava, ref)
    assert ref.spike_counts["conv"].sum() > 0


@pytest.mark.parametrize("path", sorted(ROOT.glob("netx_exports/*.net")), ids=lambda p: p.name)
def test_shipped_exports_read_and_match_their_sidecars(path):
    net = lc.read_netx(path)
    side = json.loads(path.with_suffix(".json").read_text())
    assert [l["vth"] for l in side["layers"]] == [l.vth for l in net.layers]
    assert [l["name"] for l in side["layers"]] == net.layer_names
    assert [l["scale"] for l in side["layers"]] == [l.scale for l in net.layers]
    assert [l["threshold"] for l in side["layers"]] == [q.threshold for q in net.quantization]
    from lava_convert.pipeline import read_sidecar

    assert read_sidecar(path) == side and side["netx_file"] == path.name  # the pair matches
    with h5py.File(path) as f:
        version = int(f["lava_convert"].attrs["format_version"])
    # one version for the file and its sidecar; plain NetX (1) unless stock NetX would
    # build a different network (shortcuts, soft reset, v0), 3 with a v0 per neuron
    per_neuron = any(np.ndim(layer.v0) for layer in net.layers)
    assert side["format_version"] == version == (
        3 if per_neuron else 2 if stock_differences(net) else 1)


def test_export_refuses_a_path_whose_sidecar_is_the_file_itself(digits_snn, tmp_path):
    with pytest.raises(lc.ExportError, match="sidecar would overwrite the NetX file"):
        digits_snn.export(tmp_path / "model.json")
    assert not (tmp_path / "model.json").exists()


def test_two_exports_cannot_share_a_sidecar(digits_snn, tmp_path):
    digits_snn.export(tmp_path / "a.net")
    with pytest.raises(lc.ExportError, match="a.json belongs to a.net"):
        digits_snn.export(tmp_path / "a.h5")
    digits_snn.export(tmp_path / "a.net")  # the same export again is fine


def test_a_torn_pair_is_noticed_not_trusted(digits_snn, digits_model, digits, tmp_path, caplog):
    from lava_convert.pipeline import read_sidecar

    path = digits_snn.export(tmp_path / "n.net")
    assert read_sidecar(path)["netx_file"] == "n.net"
    # the .net replaced by another network while the old sidecar stays (an interrupted export)
    other = lc.convert(digits_model, calibration=digits.x_train, timesteps=8)
    write_netx(other.fixed, path)
    with caplog.at_level("WARNING"):
        assert read_sidecar(path) is None
    assert "SHA-256 differs" in caplog.text


def test_export_errors_are_typed(digits_snn, tmp_path):
    import os

    (tmp_path / "dir.net").mkdir()
    with pytest.raises(lc.ExportError, match="is a directory"):
        digits_snn.export(tmp_path / "dir.net")
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, 0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who may write anywhere (root)")
        with pytest.raises(lc.ExportError, match="cannot write there"):
            digits_snn.export(locked / "n.net")
    finally:
        os.chmod(locked, 0o700)


def test_stale_temporaries_of_killed_exports_are_removed(digits_snn, tmp_path):
    import os
    import time

    stale = tmp_path / ".n.net.abc123.tmp"
    stale.write_bytes(b"half")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    fresh = tmp_path / ".n.net.def456.tmp"  # may belong to a write in progress
    fresh.write_bytes(b"busy")
    digits_snn.export(tmp_path / "n.net")
    assert not stale.exists() and fresh.exists()


def cnn_with_starts_per_channel():
    """small_cnn with soft reset and an initial potential per conv channel and per dense
    neuron (Lava units: mantissa << 6)."""
    import dataclasses

    net = small_cnn()
    conv, fc = net.layers
    conv = dataclasses.replace(conv, reset="soft", dv=0, vth=300, bias=np.array([40, 40]),
                               v0=np.array([0, 250]) << 6)
    fc = dataclasses.replace(fc, reset="soft", vth=60, v0=np.array([5, 30, 59]) << 6)
    return dataclasses.replace(net, layers=(conv, fc))


def test_a_start_per_channel_round_trips_and_is_checked(tmp_path):
    net = cnn_with_starts_per_channel()
    path = write_netx(net, tmp_path / "v0.net")
    back = read_netx(path)
    for a, b in zip(back.layers, net.layers):
        np.testing.assert_array_equal(a.full_v0(), b.full_v0())
    assert back.layers[0].full_v0()[1].tolist() == [[250 << 6]] * 3  # channel 1, all positions
    assert back.extension_layers()["v0"] == ["conv", "fc"]
    with h5py.File(path) as f:  # readers before version 3 take one v0 per layer
        assert f["lava_convert"].attrs["format_version"] == 3

    def resize(f):
        del f["layer/1/neuron/v0"]
        f["layer/1/neuron"].create_dataset("v0", data=np.array([0, 64, 128]))

    wrong = edited_copy(path, tmp_path / "wrong.net", resize)
    with pytest.raises(lc.NetXFormatError, match=r"/layer/1/neuron/v0: expected numbers of "
                                                  r"shape \(2,\)"):
        read_netx(wrong)

    def too_high(f):
        del f["layer/3/neuron/v0"]
        f["layer/3/neuron"].create_dataset("v0", data=np.array([0, 2**24, 0]))

    high = edited_copy(path, tmp_path / "high.net", too_high)
    with pytest.raises(lc.NetXFormatError, match=r"/layer/3/neuron/v0: initial potential "
                                                 r"0\.\.16777216 lies outside"):
        read_netx(high)


def test_a_start_per_neuron_gives_the_counts_worked_by_hand():
    """Dense neurons with threshold 60 (<< 6) and a bias of 20 per step (<< 6), no input
    current, T=4, soft reset (a spike when v > 60 subtracts 60). Starting at 5: v = 25,
    45, 65 (spike, 5), 25: 1 spike. At 30: 50, 70 (spike, 10), 30, 50: 1 spike. At 59:
    79 (spike, 19), 39, 59, 79 (spike): 2 spikes. With bias 0 no start below 60 fires."""
    import dataclasses

    from lava_convert.ir import FixedNetwork

    fc = fixed_layer(name="fc", kind="dense", shape=(3,), weight=np.zeros((3, 1), np.int64),
                     bias=np.full(3, 20), vth=60, reset="soft", v0=np.array([5, 30, 59]) << 6)
    net = FixedNetwork(input_shape=(1,), input_scale=1.0, input_bits=6, input_signed=False,
                       layers=(fc,), timesteps=4)
    counts = lc.simulate(net, np.zeros((1, 1)), 4).spike_counts["fc"][0]
    assert counts.tolist() == [1, 1, 2]
    still = dataclasses.replace(fc, bias=np.zeros(3, np.int64))
    net = dataclasses.replace(net, layers=(still,))
    assert lc.simulate(net, np.zeros((1, 1)), 4).spike_counts["fc"][0].tolist() == [0, 0, 0]


@pytest.mark.lava
def test_starts_per_channel_run_spike_exact_on_lava(tmp_path):
    """Lava's neurons are laid out W, H, C: each channel must get its own start."""
    path = write_netx(cnn_with_starts_per_channel(), tmp_path / "v0.net")
    x = np.random.default_rng(1).random((4, 1, 5, 4))
    lava = lc.run_lava(path, x, progress=False)
    ref = lc.simulate(path, x)
    assert_same_spikes(lava, ref)
    # the starts matter: the same network from v0 = 0 spikes differently
    import dataclasses
    net = cnn_with_starts_per_channel()
    zero = dataclasses.replace(net, layers=tuple(dataclasses.replace(l, v0=0)
                                                 for l in net.layers))
    counts = lc.simulate(zero, x).spike_counts["conv"].reshape(len(x), 2, -1)
    ours = ref.spike_counts["conv"].reshape(len(x), 2, -1)
    np.testing.assert_array_equal(counts[:, 0], ours[:, 0])  # channel 0 starts at 0
    assert np.all(ours[:, 1] >= counts[:, 1]) and np.any(ours[:, 1] > counts[:, 1])


def test_a_conv_setting_that_differs_within_a_channel_is_refused_not_written(tmp_path):
    """A NetX conv layer keeps one bias (and v0) per channel, and the reader takes no
    other layout: writing one per position would leave a file nothing reads."""
    import dataclasses

    net = small_cnn()
    conv = net.layers[0]
    for field, values in (("bias", np.arange(6).reshape(2, 3, 1)),
                          ("v0", np.arange(6).reshape(2, 3, 1) << 6)):
        bad = dataclasses.replace(net, layers=(dataclasses.replace(conv, **{field: values}),
                                               net.layers[1]))
        with pytest.raises(lc.ExportError, match=rf"layer 'conv': its {field} differs between "
                                                 "the positions of a channel"):
            write_netx(bad, tmp_path / "bad.net")
        assert not (tmp_path / "bad.net").exists()
    # the same value at every position of a channel is one per channel
    even = dataclasses.replace(conv, bias=np.broadcast_to(np.array([4, -1])[:, None, None],
                                                          (2, 3, 1)))
    back = read_netx(write_netx(dataclasses.replace(net, layers=(even, net.layers[1])),
                                tmp_path / "even.net"))
    assert back.layers[0].bias.tolist() == [4, -1]
