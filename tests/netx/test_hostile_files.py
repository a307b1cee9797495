"""Hostile NetX files: nothing is read from outside the file, nothing is allocated before
its declared size is checked, integer types and T are bounded. Each file is made here
from a valid export, changed the way an attacker would."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

import lava_convert as lc
from lava_convert.netx import read_netx


@pytest.fixture()
def hostile(digits_net, tmp_path):
    """A fresh copy of a valid export to tamper with."""
    path = tmp_path / "hostile.net"
    path.write_bytes(digits_net.read_bytes())
    return path


def replace(path, key, make):
    with h5py.File(path, "r+") as f:
        del f[key]
        make(f, key)


def test_an_external_link_is_refused_not_followed(hostile, tmp_path):
    secret = tmp_path / "secret.h5"
    with h5py.File(secret, "w") as f:
        f["data"] = np.arange(128 * 64).reshape(128, 64)
    replace(hostile, "layer/3/weight", lambda f, k: f.__setitem__(
        k, h5py.ExternalLink(str(secret), "/data")))
    with pytest.raises(lc.NetXFormatError, match="/layer/3/weight: a ExternalLink to .*secret"):
        read_netx(hostile)


def test_a_link_to_a_fifo_does_not_block(hostile, tmp_path):
    import os

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    replace(hostile, "layer/3/weight", lambda f, k: f.__setitem__(
        k, h5py.ExternalLink(str(fifo), "/data")))
    with pytest.raises(lc.NetXFormatError, match="self-contained"):
        read_netx(hostile)


def test_soft_links_are_refused(hostile):
    replace(hostile, "layer/1/bias", lambda f, k: f.__setitem__(k, h5py.SoftLink("/layer/3/bias")))
    with pytest.raises(lc.NetXFormatError, match="/layer/1/bias: a SoftLink"):
        read_netx(hostile)


def test_external_raw_storage_is_refused(hostile, tmp_path):
    raw = tmp_path / "passwd"
    raw.write_bytes(bytes(range(256)) * 64)
    with h5py.File(hostile, "r") as f:
        shape = f["layer/3/weight"].shape
    replace(hostile, "layer/3/weight", lambda f, k: f.create_dataset(
        k, shape=shape, dtype="u1", external=[(str(raw), 0, int(np.prod(shape)))]))
    with pytest.raises(lc.NetXFormatError, match="/layer/3/weight: a dataset stored in external"):
        read_netx(hostile)


def test_virtual_datasets_are_refused(hostile, tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["w"] = np.ones((128, 64), dtype=np.int16)
    layout = h5py.VirtualLayout(shape=(128, 64), dtype=np.int16)
    layout[:] = h5py.VirtualSource(str(other), "w", shape=(128, 64))
    replace(hostile, "layer/3/weight", lambda f, k: f.create_virtual_dataset(k, layout))
    with pytest.raises(lc.NetXFormatError, match="/layer/3/weight: a virtual dataset"):
        read_netx(hostile)


def test_a_huge_declared_dataset_is_refused_before_it_is_read(hostile):
    # 2 GiB declared, gzip-compressed and never written: the file stays small
    replace(hostile, "layer/3/weight", lambda f, k: f.create_dataset(
        k, shape=(2**15, 2**13), dtype=np.int64, chunks=(256, 256), compression="gzip"))
    assert hostile.stat().st_size < 1_000_000
    with pytest.raises(lc.NetXFormatError, match=r"/layer/3/weight: declares 2147483648 bytes"):
        read_netx(hostile)
    # the limit can be raised for genuinely large networks (then the shape check speaks)
    with pytest.raises(lc.NetXFormatError, match="expected numbers of shape"):
        read_netx(hostile, max_bytes=2**32)


def test_unsigned_weights_beyond_int64_are_refused(hostile):
    with h5py.File(hostile, "r") as f:
        weight = f["layer/3/weight"][()].astype(np.uint64)
    weight[0, 0] = 2**64 - 1  # read as -1 by a plain cast
    replace(hostile, "layer/3/weight", lambda f, k: f.create_dataset(k, data=weight))
    with pytest.raises(lc.NetXFormatError, match="do not fit 64-bit integers"):
        read_netx(hostile)


def test_a_huge_t_in_a_file_needs_the_callers_word(hostile, digits):
    with h5py.File(hostile, "r+") as f:
        f["lava_convert"].attrs["timesteps"] = 2**31 - 1
    x = digits.x_test[:2]
    with pytest.raises(lc.ConfigError, match="T=2147483647.*pass timesteps explicitly"):
        lc.simulate(hostile, x)
    assert lc.simulate(hostile, x, timesteps=4).timesteps == 4


def test_the_cli_refuses_a_hostile_file_with_a_one_line_error(hostile, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    replace(hostile, "layer/1/bias", lambda f, k: f.__setitem__(k, h5py.SoftLink("/nowhere")))
    exe = Path(sys.executable).with_name("lava-convert")
    result = subprocess.run([str(exe), "inspect", str(hostile)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith("lava-convert: error:") and "Traceback" not in result.stderr


def test_a_long_variable_length_attribute_is_measured_by_its_characters(hostile):
    """A variable-length string declares 16 bytes whatever its length: its bound is the
    file's bytes beyond its datasets."""
    with h5py.File(hostile, "r+") as f:
        f["lava_convert"].attrs["meta_json"] = "{" + " " * (5 * 2**20) + "}"
    with pytest.raises(lc.NetXFormatError, match=r"/lava_convert/meta_json: an attribute of "
                                                 r"up to \d+ bytes, more than 4194304"):
        read_netx(hostile)


def test_conv_padding_beyond_the_kernel_is_refused(tmp_path):
    """Padding of 700 on a 3x3 conv (output shape made to agree): 16 million neurons that
    only ever see zeros, from a file of a few hundred KiB."""
    from pathlib import Path

    path = tmp_path / "padded.net"
    path.write_bytes((Path(__file__).parents[2] / "netx_exports" /
                      "fashion_mnist_cnn_qcfs.net").read_bytes())
    with h5py.File(path, "r+") as f:
        g = f["layer/2"]
        del g["padding"], g["shape"]
        g["padding"] = np.array([700, 700])
        g["shape"] = np.array([8, 28 + 2 * 699, 28 + 2 * 699])
    with pytest.raises(lc.NetXFormatError, match=r"/layer/2/padding: padding \(700, 700\) "
                                                 r"reaches beyond the kernel's extent \(3, 3\)"):
        read_netx(path)


@pytest.mark.parametrize("delay, refused", [(np.zeros(64, np.int64), False),
                                            (np.arange(64) % 3, True),
                                            (np.int64(2), True)])
def test_axonal_delays_are_refused_not_ignored(hostile, delay, refused):
    """SLAYER writes per-neuron axonal delays as ``delay`` beside a dense layer's weight
    (lava-dl's ntidigits.net); stock NetX builds them. Ignoring them would simulate other
    spikes: a non-zero delay is refused naming the key; all-zero delays change nothing."""
    before = lc.read_netx(hostile)
    with h5py.File(hostile, "r+") as f:
        f.create_dataset("layer/2/delay", data=delay)  # a plain dense layer
    if refused:
        with pytest.raises(lc.NetXFormatError, match=r"/layer/2/delay: axonal delays"):
            lc.read_netx(hostile)
    else:
        after = lc.read_netx(hostile)
        assert np.array_equal(after.layers[1].weight, before.layers[1].weight)
