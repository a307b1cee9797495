"""Dataset loading: the embedded digits and IDX files (tested on small files written here)."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

import lava_convert as lc
from lava_convert.zoo.data import load_dataset, load_digits, load_idx_dataset, read_idx


def idx_bytes(a: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, a.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in a.shape)
    return header + a.astype(np.uint8).tobytes()


def write_set(directory, n_train=5, n_test=3, gz=False):
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 4, 4)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 4, 4)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test),
    }
    for name, a in arrays.items():
        data = idx_bytes(a)
        if gz:
            (directory / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (directory / name).write_bytes(data)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, gz):
    arrays = write_set(tmp_path, gz=gz)
    d = load_idx_dataset("mnist", tmp_path)
    assert d.x_train.shape == (5, 1, 4, 4) and d.x_test.shape == (3, 1, 4, 4)
    np.testing.assert_allclose(d.x_train[:, 0] * 255, arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(d.y_test, arrays["t10k-labels-idx1-ubyte"])


def test_missing_files_name_the_fix(tmp_path):
    write_set(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(lc.DatasetError, match="t10k-labels-idx1-ubyte.*make data"):
        load_idx_dataset("fashion-mnist", tmp_path)


def test_corrupt_and_truncated_files(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(lc.DatasetError, match="bad magic"):
        read_idx(bad)
    cut = tmp_path / "cut"
    cut.write_bytes(idx_bytes(np.zeros((10, 4, 4)))[:-7])
    with pytest.raises(lc.DatasetError, match="cut: .*truncated"):
        read_idx(cut)
    broken_gz = tmp_path / "x.gz"
    broken_gz.write_bytes(gzip.compress(idx_bytes(np.zeros((2, 2))))[:-5])
    with pytest.raises(lc.DatasetError, match="x.gz"):
        read_idx(broken_gz)


def test_mismatched_labels(tmp_path):
    write_set(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(4)))
    with pytest.raises(lc.DatasetError, match="do not match"):
        load_idx_dataset("mnist", tmp_path)


def test_digits_and_unknown_names():
    d = load_digits()
    assert d.x_train.shape[1:] == (1, 8, 8) and 0 <= d.x_train.min() and d.x_train.max() <= 1
    assert len(d.x_test) == 360 and d.num_classes == 10
    with pytest.raises(lc.DatasetError, match="unknown dataset 'cifar'"):
        load_dataset("cifar")
