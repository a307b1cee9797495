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
    NetX and NIR files are both HDF5, and both are checked by this function."""
    total = 0

    def fail(key: str, problem: str, fix: str) -> Exception:
        return error(f"{path}: {key}: {problem}; {fix.replace('a .net file', what)}")

    def walk(group: h5py.Group) -> None:
        nonlocal total
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
            size = int(np.prod(obj.shape, dtype=np.float64) * obj.dtype.itemsize)
            total += size
            if size > max_bytes or total > max_bytes:
                raise fail(key, f"declares {size} bytes ({total} so far in the file), more "
                           f"than the limit of {max_bytes}", "for a genuinely large network "
                           f"pass max_bytes (read_netx, from_nir) or set {MAX_BYTES_ENV}")

    walk(f)
    if META_GROUP in f:  # attributes are read whole: bound them too
        attrs = f[META_GROUP].attrs
        for name in attrs:
            if attrs.get_id(name).get_storage_size() > MAX_META_CHARS:
                raise fail(f"/{META_GROUP}/{name}", f"an attribute of more than "
                           f"{MAX_META_CHARS} bytes", "the file is corrupt; re-export it")
