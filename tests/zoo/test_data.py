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


def test_a_missing_path_is_said_to_be_missing(tmp_path):
    for name in (str(tmp_path / "data.npz"), str(tmp_path / "folder")):
        with pytest.raises(lc.DatasetError, match=r"no such file or folder; give the path"):
            load_dataset(name)


def test_datasets_are_found_from_any_directory(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / "mnist").mkdir(parents=True)
    arrays = write_set(home / "mnist")
    monkeypatch.setenv("LAVA_CONVERT_DATA", str(home))
    monkeypatch.delenv("LAVA_CONVERT_MNIST", raising=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    d = load_dataset("mnist")
    np.testing.assert_array_equal(d.y_test, arrays["t10k-labels-idx1-ubyte"])


def test_a_missing_dataset_says_where_it_looked_and_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("LAVA_CONVERT_DATA", str(tmp_path / "empty"))
    monkeypatch.delenv("LAVA_CONVERT_FASHION_MNIST", raising=False)
    monkeypatch.chdir(tmp_path)
    from lava_convert.zoo import data

    monkeypatch.setitem(data.DEFAULT_DIRS, "fashion-mnist", str(tmp_path / "nowhere"))
    with pytest.raises(lc.DatasetError, match=r"not found; looked in .*empty.*make data"):
        load_dataset("fashion-mnist")


def test_a_path_to_idx_files_or_an_npz(tmp_path):
    (tmp_path / "idx").mkdir()
    write_set(tmp_path / "idx")
    assert load_dataset(str(tmp_path / "idx")).x_test.shape == (3, 1, 4, 4)
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "mine.npz", x=rng.random((50, 1, 4, 4)), y=rng.integers(0, 3, 50))
    d = load_dataset(str(tmp_path / "mine.npz"))
    assert (len(d.x_train), len(d.x_test)) == (40, 10) and d.x_train.shape[1:] == (1, 4, 4)


def test_an_npz_with_pickled_objects_is_refused(tmp_path):
    np.savez(tmp_path / "evil.npz", x=np.array([{"a": 1}] * 10, dtype=object),
             y=np.zeros(10, int))
    with pytest.raises(lc.DatasetError, match="cannot read the .npz"):
        load_dataset(str(tmp_path / "evil.npz"))


def test_calibration_sample_draws_distinct_training_images_reproducibly():
    d = load_digits()
    rows = {row.tobytes(): i for i, row in enumerate(d.x_train)}
    assert len(rows) > 200, "the check below needs mostly distinct training images"
    sample = d.calibration_sample(200, seed=3)
    indices = [rows.get(row.tobytes()) for row in sample]
    assert None not in indices                    # every image is one of the training images
    assert len(set(indices)) == len(sample) == 200  # drawn without replacement
    assert indices != sorted(indices)             # a random draw, not the first 200 in order
    np.testing.assert_array_equal(sample, d.calibration_sample(200, seed=3))
    assert not np.array_equal(sample, d.calibration_sample(200, seed=4))
    everything = d.calibration_sample(10 * len(d.x_train))
    assert len(everything) == len(d.x_train)
    assert {row.tobytes() for row in everything} == {row.tobytes() for row in d.x_train}
