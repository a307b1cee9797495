"""CIFAR-10 and CIFAR-100 as users have them, read without running code.

Two layouts per dataset, as distributed by the University of Toronto and as torchvision
unpacks them:

* binary: ``cifar-10-batches-bin/`` with ``data_batch_1.bin`` .. ``data_batch_5.bin`` and
  ``test_batch.bin`` (records of 1 label byte and 3072 image bytes), and
  ``cifar-100-binary/`` with ``train.bin`` and ``test.bin`` (records of a coarse and a
  fine label byte, then 3072 image bytes);
* Python: ``cifar-10-batches-py/`` (``data_batch_1`` .. ``data_batch_5``, ``test_batch``)
  and ``cifar-100-python/`` (``train``, ``test``): pickled dicts holding a uint8 array
  ``data`` (N x 3072) and label lists. They are read by :class:`RestrictedUnpickler`,
  which admits only the numpy array and dtype constructors those files contain and
  refuses every other global with :class:`~lava_convert.errors.DatasetError`: reading
  them never runs code.

Images are C,H,W (3 x 32 x 32) with the red, green and blue planes in that order, as in
both layouts. CIFAR-100 is labelled with its 100 fine classes (``labels="fine"``) or its
20 coarse ones.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np

from ..errors import DatasetError

IMAGE_SHAPE = (3, 32, 32)
IMAGE_BYTES = 3 * 32 * 32
#: What the real files hold per dataset and split, in each layout.
BINARY = {
    "cifar10": ("cifar-10-batches-bin",
                {"train": [f"data_batch_{i}.bin" for i in range(1, 6)],
                 "test": ["test_batch.bin"]}, 1),
    "cifar100": ("cifar-100-binary", {"train": ["train.bin"], "test": ["test.bin"]}, 2),
}
PYTHON = {
    "cifar10": ("cifar-10-batches-py",
                {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}),
    "cifar100": ("cifar-100-python", {"train": ["train"], "test": ["test"]}),
}
#: Class count per dataset and labelling.
CLASSES = {("cifar10", "fine"): 10, ("cifar100", "fine"): 100, ("cifar100", "coarse"): 20}
ENV_VARS = {"cifar10": "LAVA_CONVERT_CIFAR10", "cifar100": "LAVA_CONVERT_CIFAR100"}
#: Largest file read (the real ones: 31 MB per CIFAR-10 batch, 155 MB for CIFAR-100's
#: training set); larger files are refused before reading.
MAX_FILE_BYTES = 256 * 2**20
#: Per-channel mean and standard deviation of each training set (the values the field
#: normalises with), for ``normalize="published"``.
PUBLISHED_STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
NORMALIZATIONS = ("none", "train", "published")
HOW_TO_GET = ("get the archive from the CIFAR page of the University of Toronto (binary or "
              "Python version; torchvision's datasets.CIFAR10(download=True) unpacks the Python "
              "one) on a machine with internet access, unpack it, and")

#: The globals the real Python-layout files reference: numpy's array reconstruction
#: (``numpy.core`` before numpy 2, ``numpy._core`` after).
ALLOWED_GLOBALS = frozenset({
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
})


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler for CIFAR's Python-layout files: dicts, lists, strings, numbers and
    numpy arrays only; any other global (a class or function the file asks to import, the
    way pickles run code) raises :class:`~lava_convert.errors.DatasetError`."""

    def __init__(self, file, source: Path) -> None:
        super().__init__(file, encoding="bytes")
        self._source = source

    def find_class(self, module: str, name: str):
        if (module, name) in ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise DatasetError(
            f"{self._source}: the pickle asks to import {module}.{name}, which CIFAR files do "
            "not contain; it was refused without running it (a pickle can run code). Use the "
            "original CIFAR files, or the binary version")

    def persistent_load(self, pid):
        raise DatasetError(f"{self._source}: the pickle holds a persistent reference, which "
                           "CIFAR files do not; refused")


def _read_bytes(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise DatasetError(f"{path}: {size} bytes, more than any CIFAR file "
                               f"({MAX_FILE_BYTES} at most); pass the original files")
        return path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc}); re-install the dataset") from exc


def read_binary_batch(path: Path, label_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    """One binary-layout file: (images uint8 (N, 3, 32, 32), labels uint8 (N, label_bytes))."""
    raw = _read_bytes(path)
    record = label_bytes + IMAGE_BYTES
    if not raw or len(raw) % record:
        raise DatasetError(f"{path}: {len(raw)} bytes is not a whole number of {record}-byte "
                           f"records ({label_bytes} label byte(s) + {IMAGE_BYTES} image bytes); "
                           "the file is truncated or of the other CIFAR dataset")
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(-1, record)
    return rows[:, label_bytes:].reshape(-1, *IMAGE_SHAPE), rows[:, :label_bytes]


def read_python_batch(path: Path) -> dict:
    """One Python-layout file as its dict, keys as ``str``, through the restricted
    unpickler (read whole first, so a hostile length field cannot allocate beyond the
    file's size)."""
    raw = _read_bytes(path)
    try:
        data = RestrictedUnpickler(io.BytesIO(raw), path).load()
    except DatasetError:
        raise
    except Exception as exc:  # noqa: BLE001 - a corrupt pickle raises many kinds
        raise DatasetError(f"{path}: not a readable CIFAR batch ({type(exc).__name__}: "
                           f"{exc}); re-install the dataset") from exc
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: holds a {type(data).__name__}, not a CIFAR batch dict")
    return {(k.decode("latin1") if isinstance(k, bytes) else str(k)): v for k, v in data.items()}


def _python_arrays(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    batch = read_python_batch(path)
    for key in ("data", label_key):
        if key not in batch:
            raise DatasetError(f"{path}: no {key!r} entry (keys {sorted(batch)[:8]}); is this "
                               "a file of the other CIFAR dataset?")
    x, y = batch["data"], batch[label_key]
    if not (isinstance(x, np.ndarray) and x.dtype == np.uint8 and x.ndim == 2
            and x.shape[1] == IMAGE_BYTES):
        raise DatasetError(f"{path}: 'data' is {getattr(x, 'dtype', type(x).__name__)} "
                           f"{getattr(x, 'shape', '')}, not uint8 (N, {IMAGE_BYTES})")
    if not (isinstance(y, (list, np.ndarray)) and len(y) == len(x)
            and all(isinstance(v, (int, np.integer)) and 0 <= v < 256 for v in y)):
        raise DatasetError(f"{path}: {label_key!r} is not {len(x)} class numbers")
    return x.reshape(-1, *IMAGE_SHAPE), np.asarray(y, dtype=np.int64)


def _locate(name: str, places: list[Path]) -> tuple[str, Path] | None:
    """(layout, folder) of the first place holding all of ``name``'s files in one layout,
    itself or in the archive's folder inside it."""
    for place in places:
        for layout, (sub, files) in (("binary", BINARY[name][:2]), ("python", PYTHON[name])):
            for folder in (place, place / sub):
                if all((folder / f).is_file() for f in files["test"] + files["train"]):
                    return layout, folder
    return None


def cifar_in(folder) -> str | None:
    """``"cifar10"`` or ``"cifar100"`` if ``folder`` holds that dataset's files (itself or
    its archive folder), else ``None``."""
    return next((name for name in BINARY if _locate(name, [Path(folder)]) is not None), None)


def find_cifar(name: str, directory, home: Path) -> tuple[str, Path]:
    """(layout ``"binary"`` or ``"python"``, folder) of ``name``'s files, looked for in
    ``directory`` (the folder itself or the one holding the archive's folder), else in
    ``$LAVA_CONVERT_CIFAR10`` / ``$LAVA_CONVERT_CIFAR100``, then ``home / name`` (the
    per-user data directory)."""
    if directory is not None:
        places = [Path(directory)]
    else:
        places = [Path(os.environ[ENV_VARS[name]])] if os.environ.get(ENV_VARS[name]) else []
        places.append(home / name)
    found = _locate(name, places)
    if found is not None:
        return found
    bin_dir, bin_files, _ = BINARY[name]
    py_dir, py_files = PYTHON[name]
    raise DatasetError(
        f"dataset {name!r} not found; looked in {', '.join(str(p) for p in places)} for "
        f"{bin_dir}/ ({', '.join(bin_files['train'] + bin_files['test'])}) or {py_dir}/ "
        f"({', '.join(py_files['train'] + py_files['test'])}). Nothing is downloaded: "
        f"{HOW_TO_GET} put the folder into {home / name} (or set {ENV_VARS[name]}, "
        "or pass --data-dir / --data PATH)")


def read_cifar(name: str, directory, home: Path, *, normalize: str = "none",
               labels: str = "fine") -> tuple[np.ndarray, ...]:
    """CIFAR-10 or CIFAR-100 (``name``: ``"cifar10"``, ``"cifar100"``) as
    ``(x_train, y_train, x_test, y_test)``, float32 images (N, 3, 32, 32) and int64
    labels, from ``directory`` or the places :func:`find_cifar` looks in.

    ``normalize``: ``"none"`` (values in [0, 1]), ``"train"`` (per channel, minus the
    training split's mean, divided by its standard deviation) or ``"published"`` (the
    same with the field's published statistics, :data:`PUBLISHED_STATS`). ``labels``:
    ``"fine"`` or, for CIFAR-100, ``"coarse"`` (its 20 superclasses).
    """
    if name not in BINARY:
        raise DatasetError(f"unknown CIFAR dataset {name!r}: use 'cifar10' or 'cifar100'")
    if normalize not in NORMALIZATIONS:
        raise DatasetError(f"normalize={normalize!r} is unknown: use one of {NORMALIZATIONS}")
    if (name, labels) not in CLASSES:
        raise DatasetError(f"labels={labels!r} does not fit {name}: CIFAR-10 has 'fine' labels "
                           "only, CIFAR-100 'fine' (100 classes) or 'coarse' (20)")
    layout, folder = find_cifar(name, directory, home)
    splits = {}
    for split in ("train", "test"):
        xs, ys = [], []
        if layout == "binary":
            _, files, label_bytes = BINARY[name]
            for f in files[split]:
                x, y = read_binary_batch(folder / f, label_bytes)
                xs.append(x)
                # CIFAR-100 records: coarse label, then fine label
                ys.append(y[:, 0 if labels == "coarse" else label_bytes - 1].astype(np.int64))
        else:
            key = "labels" if name == "cifar10" else f"{labels}_labels"
            for f in PYTHON[name][1][split]:
                x, y = _python_arrays(folder / f, key)
                xs.append(x)
                ys.append(y)
        x, y = np.concatenate(xs), np.concatenate(ys)
        classes = CLASSES[(name, labels)]
        if y.size and y.max() >= classes:
            raise DatasetError(f"{folder}: a {split} label is {int(y.max())}, but {name} "
                               f"({labels}) has {classes} classes; is this the other dataset?")
        splits[split] = (x.astype(np.float32) / 255.0, y)
    if normalize != "none":
        if normalize == "train":
            flat = splits["train"][0].transpose(1, 0, 2, 3).reshape(3, -1)
            mean, std = flat.mean(axis=1, dtype=np.float64), flat.std(axis=1, dtype=np.float64)
        else:
            mean, std = (np.asarray(v) for v in PUBLISHED_STATS[name])
        if np.any(std <= 0):
            raise DatasetError(f"{folder}: a colour channel of the training images is "
                               "constant; normalize='train' cannot divide by its spread")
        shift = np.asarray(mean, np.float32).reshape(1, 3, 1, 1)
        spread = np.asarray(std, np.float32).reshape(1, 3, 1, 1)
        splits = {k: ((x - shift) / spread, y) for k, (x, y) in splits.items()}
    return (*splits["train"], *splits["test"])
