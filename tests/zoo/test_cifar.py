"""CIFAR-10/100 in both real layouts, built small here byte for byte as distributed
(binary records; Python 2 pickles as ``cPickle.dump(d, f, 2)`` wrote them), and hostile
pickles refused without running code."""

from __future__ import annotations

import pickle
import struct

import numpy as np
import pytest

from lava_convert.errors import DatasetError
from lava_convert.zoo.data import load_cifar, load_dataset


def _images(rng, n: int) -> np.ndarray:
    return rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)


class _Py2Pickler(pickle._Pickler):
    """Protocol 2 as Python 2 wrote it: ``bytes`` (Python 2's ``str``) as BINSTRING
    opcodes, the way the real CIFAR files hold their keys and the arrays' raw data."""

    def save_bytes(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch = dict(pickle._Pickler.dispatch)
    dispatch[bytes] = save_bytes


def _py2_pickle(path, data: dict) -> None:
    with open(path, "wb") as f:
        _Py2Pickler(f, protocol=2).dump(data)


def _write_binary(folder, files, label_bytes, rng, per_file=7, classes=10):
    folder.mkdir(parents=True)
    truth = {}
    for name in files:
        x = _images(rng, per_file)
        labels = rng.integers(0, classes, (per_file, label_bytes), dtype=np.uint8)
        records = np.concatenate([labels, x.reshape(per_file, -1)], axis=1)
        (folder / name).write_bytes(records.tobytes())
        truth[name] = (x, labels)
    return truth


def test_cifar10_binary_layout(tmp_path):
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    truth = _write_binary(tmp_path / "cifar-10-batches-bin", names, 1, rng)
    d = load_dataset("cifar10", tmp_path)  # the folder holding the unpacked archive
    assert d.x_train.shape == (35, 3, 32, 32) and d.x_test.shape == (7, 3, 32, 32)
    x2, y2 = truth["data_batch_2.bin"]
    np.testing.assert_array_equal(d.x_train[7:14], x2 / np.float32(255))
    np.testing.assert_array_equal(d.y_train[7:14], y2[:, 0])
    # red plane first: byte 0 of the image is the top-left red pixel
    raw = (tmp_path / "cifar-10-batches-bin" / "test_batch.bin").read_bytes()
    assert d.x_test[0, 0, 0, 0] == np.float32(raw[1] / 255)
    assert d.x_test[0, 1, 0, 0] == np.float32(raw[1 + 1024] / 255)


def test_cifar100_binary_coarse_and_fine(tmp_path):
    rng = np.random.default_rng(1)
    truth = _write_binary(tmp_path / "cifar-100-binary", ["train.bin", "test.bin"], 2, rng,
                          classes=20)
    fine = load_dataset("cifar100", tmp_path / "cifar-100-binary")
    coarse = load_dataset("cifar100-coarse", tmp_path)
    _, labels = truth["test.bin"]
    np.testing.assert_array_equal(coarse.y_test, labels[:, 0])
    np.testing.assert_array_equal(fine.y_test, labels[:, 1])
    np.testing.assert_array_equal(fine.x_train, coarse.x_train)


def _write_python(folder, files, keys, rng, per_file=5, classes=10):
    folder.mkdir(parents=True)
    truth = {}
    for name in files:
        x = _images(rng, per_file)
        batch = {b"batch_label": b"training batch", b"data": x.reshape(per_file, -1),
                 b"filenames": [b"img_%d.png" % i for i in range(per_file)]}
        for key in keys:
            batch[key] = [int(v) for v in rng.integers(0, classes, per_file)]
        _py2_pickle(folder / name, batch)
        truth[name] = batch
    return truth


def test_cifar10_python_layout_as_torchvision_unpacks_it(tmp_path):
    rng = np.random.default_rng(2)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    truth = _write_python(tmp_path / "cifar-10-batches-py", names, [b"labels"], rng)
    raw = (tmp_path / "cifar-10-batches-py" / "test_batch").read_bytes()
    assert raw[:2] == b"\x80\x02" and b"numpy.core.multiarray" in raw  # as the real files
    d = load_cifar("cifar10", tmp_path)
    want = truth["test_batch"]
    np.testing.assert_array_equal(d.x_test * 255, want[b"data"].reshape(-1, 3, 32, 32))
    np.testing.assert_array_equal(d.y_test, want[b"labels"])


def test_cifar100_python_layout(tmp_path):
    rng = np.random.default_rng(3)
    truth = _write_python(tmp_path / "cifar-100-python", ["train", "test"],
                          [b"fine_labels", b"coarse_labels"], rng)
    fine = load_dataset("cifar100", tmp_path / "cifar-100-python")
    coarse = load_dataset("cifar100-coarse", tmp_path)
    np.testing.assert_array_equal(fine.y_train, truth["train"][b"fine_labels"])
    np.testing.assert_array_equal(coarse.y_train, truth["train"][b"coarse_labels"])
    assert fine.num_classes <= 100 and fine.name == "cifar100"


def test_normalisation_per_channel(tmp_path):
    rng = np.random.default_rng(4)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    _write_binary(tmp_path / "cifar-10-batches-bin", names, 1, rng)
    plain = load_dataset("cifar10", tmp_path)
    train = load_dataset("cifar10", tmp_path, normalize="train")
    by_path = load_dataset(str(tmp_path / "cifar-10-batches-bin"), normalize="train")
    np.testing.assert_array_equal(by_path.x_test, train.x_test)
    per_channel = train.x_train.transpose(1, 0, 2, 3).reshape(3, -1)
    np.testing.assert_allclose(per_channel.mean(axis=1), 0, atol=1e-5)
    np.testing.assert_allclose(per_channel.std(axis=1), 1, atol=1e-4)
    published = load_dataset("cifar10", tmp_path, normalize="published")
    np.testing.assert_allclose(published.x_test[:, 2], (plain.x_test[:, 2] - 0.4465) / 0.2616,
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(DatasetError, match="CIFAR datasets only"):
        load_dataset("digits", normalize="train")


def test_discovery_by_environment_variable_and_missing_files(tmp_path, monkeypatch):
    rng = np.random.default_rng(5)
    _write_binary(tmp_path / "cifar-100-binary", ["train.bin", "test.bin"], 2, rng)
    monkeypatch.setenv("LAVA_CONVERT_CIFAR100", str(tmp_path))
    assert load_dataset("cifar100").x_test.shape == (7, 3, 32, 32)
    monkeypatch.setenv("LAVA_CONVERT_DATA", str(tmp_path / "home"))
    monkeypatch.delenv("LAVA_CONVERT_CIFAR10", raising=False)
    with pytest.raises(DatasetError, match="cifar-10-batches-bin.*Nothing is downloaded"):
        load_dataset("cifar10")


def test_truncated_binary_file_is_refused(tmp_path):
    rng = np.random.default_rng(6)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    _write_binary(tmp_path / "b", names, 1, rng)
    path = tmp_path / "b" / "data_batch_3.bin"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(DatasetError, match="data_batch_3.bin.*records"):
        load_dataset("cifar10", tmp_path / "b")


class _RunsCode:
    def __reduce__(self):
        import os

        return (os.system, ("touch pwned",))


def test_hostile_pickle_is_refused_without_running_it(tmp_path, monkeypatch):
    rng = np.random.default_rng(7)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    _write_python(tmp_path / "cifar-10-batches-py", names, [b"labels"], rng)
    evil = {b"data": np.zeros((1, 3072), np.uint8), b"labels": [_RunsCode()]}
    _py2_pickle(tmp_path / "cifar-10-batches-py" / "data_batch_4", evil)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatasetError, match=r"data_batch_4.*(posix|os)\.system.*refused"):
        load_dataset("cifar10", tmp_path)
    assert not (tmp_path / "pwned").exists()


def test_pickle_with_a_huge_length_field_allocates_nothing(tmp_path):
    rng = np.random.default_rng(8)
    _write_python(tmp_path / "cifar-100-python", ["train", "test"],
                  [b"fine_labels", b"coarse_labels"], rng)
    # BINSTRING claiming 2 GiB, file of a few bytes: read from memory, fails at once
    (tmp_path / "cifar-100-python" / "test").write_bytes(
        b"\x80\x02" + pickle.BINSTRING + struct.pack("<i", 2**31 - 1) + b"abc")
    with pytest.raises(DatasetError, match="test: not a readable CIFAR batch"):
        load_dataset("cifar100", tmp_path)


def test_wrong_dataset_in_the_folder_is_named(tmp_path):
    rng = np.random.default_rng(9)
    _write_python(tmp_path / "cifar-10-batches-py",
                  [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"], [b"labels"], rng)
    with pytest.raises(DatasetError, match="cifar100.*not found"):
        load_dataset("cifar100", tmp_path)
