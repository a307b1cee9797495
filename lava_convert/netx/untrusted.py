"""A .net file is untrusted: before anything is read, it must be self-contained (no links,
no external storage, no virtual datasets) and declare sizes within a limit."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from ..errors import ConfigError, NetXFormatError
from .format import META_GROUP

#: Largest dataset (bytes, as declared) and all datasets together that the reader reads by
#: default; ``read_netx(path, max_bytes=...)`` or the environment variable
#: ``LAVA_CONVERT_NETX_MAX_BYTES`` raise the limit for genuinely large networks.
MAX_BYTES = 256 * 2**20
MAX_BYTES_ENV = "LAVA_CONVERT_NETX_MAX_BYTES"
#: Largest ``meta_json`` attribute (characters).
MAX_META_CHARS = 4 * 2**20
#: Dataset element types a NetX file may hold: integers, floats, booleans, strings.
DTYPE_KINDS = "iufbSO"


def max_bytes_limit(max_bytes: int | None) -> int:
    if max_bytes is not None:
        return int(max_bytes)
    env = os.environ.get(MAX_BYTES_ENV)
    if env is None:
        return MAX_BYTES
    try:
        return int(env)
    except ValueError as exc:
        raise ConfigError(f"{MAX_BYTES_ENV}={env!r} is not a number of bytes") from exc


def check_self_contained(path: Path, f: h5py.File, max_bytes: int, *,
                         what: str = "a .net file", error=NetXFormatError) -> None:
    """Refuse, before reading any data, what could make reading leave the file or take
    unbounded memory: soft and external links, datasets stored outside the file
    (external raw storage, virtual datasets), element types other than numbers and
    strings, and declared sizes beyond ``max_bytes`` (one dataset, or all together).
    ``what`` names the kind of file in messages; ``error`` is the exception raised.
    NetX and NIR files are both HDF5, and both are checked by this function.

    A variable-length string declares only its pointer's size, but its characters lie in
    the file: where there are such strings, the bytes of the file beyond its fixed-size
    datasets (:func:`_beyond_datasets`) are their bound, counted with the rest (and, for
    ``/lava_convert``'s attributes, against :data:`MAX_META_CHARS`)."""
    total = 0
    stored = 0  # bytes the fixed-size datasets take in the file
    variable = []  # keys of variable-length datasets

    def fail(key: str, problem: str, fix: str) -> Exception:
        return error(f"{path}: {key}: {problem}; {fix.replace('a .net file', what)}")

    def walk(group: h5py.Group) -> None:
        nonlocal total, stored
        for name in group:
            key = f"{group.name.rstrip('/')}/{name}"
            link = group.get(name, getlink=True)
            if isinstance(link, (h5py.SoftLink, h5py.ExternalLink)):
                target = (f"{link.filename}:{link.path}" if isinstance(link, h5py.ExternalLink)
                          else link.path)
                raise fail(key, f"a {type(link).__name__} to {target!r}", "a .net file must be "
                           "self-contained (lava-convert never writes links); re-export it")
            obj = group[name]
            if isinstance(obj, h5py.Group):
                walk(obj)
                continue
            if not isinstance(obj, h5py.Dataset):
                raise fail(key, f"an object of type {type(obj).__name__}", "re-export the file")
            plist = obj.id.get_create_plist()
            if plist.get_layout() == h5py.h5d.VIRTUAL:
                raise fail(key, "a virtual dataset (its data lives in other files)",
                           "a .net file must be self-contained; re-export it")
            if plist.get_external_count():
                raise fail(key, "a dataset stored in external files",
                           "a .net file must be self-contained; re-export it")
            if obj.dtype.kind not in DTYPE_KINDS or obj.dtype.itemsize > 8 \
                    and obj.dtype.kind != "S":
                raise fail(key, f"element type {obj.dtype}", "NetX stores integers, floats "
                           "and strings; re-export the file")
            if _variable_length(obj.dtype):
                variable.append(key)
                size = 0  # bounded after the walk, by the file's other bytes
            else:
                size = int(np.prod(obj.shape, dtype=np.float64) * obj.dtype.itemsize)
                stored += obj.id.get_storage_size()
            total += size
            if size > max_bytes or total > max_bytes:
                raise fail(key, f"declares {size} bytes ({total} so far in the file), more "
                           f"than the limit of {max_bytes}", "for a genuinely large network "
                           f"pass max_bytes (read_netx, from_nir) or set {MAX_BYTES_ENV}")

    walk(f)
    beyond = _beyond_datasets(path, stored)
    if variable and total + beyond > max_bytes:
        raise fail(variable[0], f"variable-length strings of up to {beyond} bytes (the file's "
                   f"bytes beyond its datasets) with {total} bytes of datasets, more than the "
                   f"limit of {max_bytes}", "for a genuinely large network pass max_bytes "
                   f"(read_netx, from_nir) or set {MAX_BYTES_ENV}")
    if META_GROUP in f:  # attributes are read whole: bound them too
        attrs = f[META_GROUP].attrs
        for name in attrs:
            attr = attrs.get_id(name)
            size = attr.get_storage_size()
            if _variable_length(attr.dtype):
                size = max(size, beyond)  # its characters lie beyond the datasets
            if size > MAX_META_CHARS:
                raise fail(f"/{META_GROUP}/{name}", f"an attribute of up to {size} bytes, more "
                           f"than {MAX_META_CHARS}", "the file is corrupt; re-export it")


def _variable_length(dtype) -> bool:
    """Whether elements of ``dtype`` are variable-length (their size is not declared)."""
    return h5py.check_vlen_dtype(dtype) is not None or dtype.kind == "O"


def _beyond_datasets(path: Path, stored: int) -> int:
    """The bytes of the file at ``path`` beyond the ``stored`` bytes of its fixed-size
    datasets: a bound on whatever variable-length data it holds (structure included)."""
    try:
        return max(0, os.path.getsize(path) - stored)
    except OSError:
        return 0
