"""Typed access to the fields of an open NetX file, each error naming the file and key."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from ..errors import NetXFormatError

#: Largest layer the reader accepts (neurons); guards against corrupt shapes.
MAX_NEURONS = 2**24
class FieldReader:
    """Typed access to one file with errors that name the file and key."""

    def __init__(self, path: Path, f: h5py.File) -> None:
        self.path, self.f = path, f

    def fail(self, key: str, problem: str, fix: str) -> NetXFormatError:
        return NetXFormatError(f"{self.path}: {key}: {problem}; {fix}")

    def get(self, group: h5py.Group, key: str):
        full = f"{group.name.rstrip('/')}/{key}"
        if key not in group:
            raise self.fail(full, "missing", "the file is incomplete or not a NetX network; "
                            "re-export it")
        try:
            return group[key][()]
        except Exception as exc:  # h5py raises OSError/KeyError/... on corrupt data
            raise self.fail(full, f"unreadable ({exc})",
                            "the file is corrupt; re-export it") from exc

    def string(self, group: h5py.Group, key: str) -> str:
        value = self.get(group, key)
        value = value.reshape(-1)[0] if np.ndim(value) and np.size(value) else value
        try:
            return value.decode("ascii") if isinstance(value, bytes) else str(value)
        except UnicodeDecodeError as exc:
            raise self.fail(f"{group.name}/{key}", "not ASCII text",
                            "the file is corrupt; re-export it") from exc

    def integer(self, group: h5py.Group, key: str) -> int:
        value = np.asarray(self.get(group, key))
        if value.size != 1 or not np.issubdtype(value.dtype, np.number) \
                or not np.isfinite(value).all() or np.any(value != np.rint(value)):
            raise self.fail(f"{group.name}/{key}", f"expected one whole number, found "
                            f"{value!r}", "the file is corrupt; re-export it")
        return int(value.reshape(-1)[0])

    def shape(self, group: h5py.Group, key: str) -> tuple[int, ...]:
        """A layer shape: 1 to 3 positive sizes, at most ``MAX_NEURONS`` neurons in all."""
        value = np.asarray(self.get(group, key)).reshape(-1)
        if not np.issubdtype(value.dtype, np.number) or not 1 <= value.size <= 3 \
                or not np.all(np.isfinite(value)) or np.any(value != np.rint(value)) \
                or np.any(value < 1) or np.prod(value, dtype=np.float64) > MAX_NEURONS:
            raise self.fail(f"{group.name}/{key}", f"expected 1 to 3 positive sizes with at "
                            f"most {MAX_NEURONS} neurons, found {value!r}",
                            "the file is corrupt; re-export it")
        return tuple(int(v) for v in value)

    def ints(self, group: h5py.Group, key: str, shape: tuple[int, ...]) -> np.ndarray:
        value = np.asarray(self.get(group, key))
        if value.shape != shape or not np.issubdtype(value.dtype, np.number):
            raise self.fail(f"{group.name}/{key}", f"expected numbers of shape {shape}, found "
                            f"{value.dtype} {value.shape}", "the file is corrupt; re-export it")
        if not np.all(np.isfinite(value)) or np.any(value != np.rint(value)):
            raise self.fail(f"{group.name}/{key}", "non-integer values",
                            "NetX stores integers; re-export the file")
        if value.size and (float(value.max()) >= 2**63 or float(value.min()) < -2**63):
            raise self.fail(f"{group.name}/{key}", f"values up to {value.max()} do not fit "
                            "64-bit integers", "the file is corrupt; re-export it")
        return value.astype(np.int64)


def read_pair(r: FieldReader, g: h5py.Group, key: str, default: int, low: int) -> tuple[int, int]:
    """A conv (H, W) setting (one value for both, or two), each at least ``low``."""
    if key not in g:
        return (default, default)
    v = np.asarray(r.get(g, key)).reshape(-1)
    if v.size not in (1, 2) or not np.issubdtype(v.dtype, np.number) \
            or not np.all(np.isfinite(v)) or np.any(v != np.rint(v)) or np.any(v < low) \
            or np.any(v > 2**16):
        raise r.fail(f"{g.name}/{key}", f"expected one or two whole numbers >= {low}, found "
                     f"{v.tolist()}", "the file is corrupt; re-export it")
    return (int(v[0]), int(v[-1]))


def check_range(r: FieldReader, key: str, values, low: int, high: int, what: str) -> None:
    values = np.asarray(values)
    if values.size and (values.min() < low or values.max() > high):
        raise r.fail(key, f"{what} {values.min()}..{values.max()} lies outside "
                     f"{low}..{high}, which Lava cannot represent", "re-export the file")
