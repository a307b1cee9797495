"""Writing files atomically: a temporary file in the same directory, renamed into place,
so an interrupted write never leaves a half-written file. HDF5 files are built in memory
(:func:`hdf5_bytes`) and written as plain bytes (:func:`write_bytes`) after a check of the
free space: HDF5's own writer can crash the process when the disk fills mid-write."""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from .errors import ExportError

#: Temporaries of interrupted writes older than this (seconds) are removed by the next write.
STALE_TMP_S = 600


def _remove_stale_temporaries(path: Path) -> None:
    """Remove ``.{name}.*.tmp`` files an interrupted (killed) earlier write left beside
    ``path``; recent ones may belong to a write in progress and stay."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            if time.time() - tmp.stat().st_mtime > STALE_TMP_S:
                tmp.unlink()
        except OSError:
            pass


def atomic_write(path: str | os.PathLike, write) -> Path:
    """Call ``write(tmp_path)`` and rename the result onto ``path`` (same directory).

    Raises:
        ExportError: the directory cannot be made or written (read-only, full disk, a
            path that is a directory), naming the path; the previous file stays intact.
    """
    path = Path(path)
    tmp = _temporary(path)
    _fill(path, tmp, write)
    try:
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _write_failed(path, exc) from None
    return path


def _temporary(path: Path) -> Path:
    """A new empty temporary beside ``path`` (stale ones of killed writes removed)."""
    if path.is_dir():
        raise ExportError(f"{path}: is a directory; give a file name (e.g. {path / 'net.net'})")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise ExportError(f"{path}: cannot write there ({exc.strerror or exc}); choose a "
                          "writable directory") from exc
    os.close(fd)
    return Path(tmp)


def _fill(path: Path, tmp: Path, write) -> None:
    """``write(tmp)`` with the usual permissions; the temporary removed if it fails."""
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions
    except (OSError, RuntimeError) as exc:  # RuntimeError: HDF5's, for some write errors
        tmp.unlink(missing_ok=True)
        raise _write_failed(path, exc) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_failed(path: Path, exc: BaseException) -> ExportError:
    reason = getattr(exc, "strerror", None) or " ".join(str(exc).split())[:200]
    return ExportError(f"{path}: writing failed ({reason}); the previous file, if any, is "
                       "unchanged. Check free disk space and permissions")


#: File-system block: a file takes whole blocks, and one more is kept free for metadata.
BLOCK = 4 * 1024


def check_free_space(path: str | os.PathLike, *sizes: int) -> None:
    """Refuse to start writing files of ``sizes`` bytes beside ``path`` when the disk has
    not that much free (in whole :data:`BLOCK` s, plus one), naming both figures."""
    path = Path(path)
    directory = next((p for p in (path.parent, *path.parent.parents) if p.is_dir()), Path("."))
    try:
        free = shutil.disk_usage(directory).free
    except OSError:
        return  # not measurable here: the write itself will tell
    needed = sum(-(-size // BLOCK) * BLOCK for size in sizes) + BLOCK
    if needed > free:
        raise ExportError(f"{path}: needs {sum(sizes):,} bytes ({needed:,} in whole blocks) "
                          f"but {directory} has {free:,} free; free some space or write "
                          "elsewhere (nothing was written; the previous file, if any, is "
                          "unchanged)")


def hdf5_bytes(write: Callable[[io.BytesIO], None]) -> bytes:
    """The bytes of the HDF5 file ``write(target)`` writes (it opens ``h5py.File(target,
    "w")``, as it would a path), built in memory."""
    buffer = io.BytesIO()
    write(buffer)
    return buffer.getvalue()


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` at ``path`` atomically, after :func:`check_free_space`."""
    check_free_space(path, len(data))
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


@contextmanager
def directory_lock(directory: str | os.PathLike):
    """Hold an exclusive lock on ``directory`` (``flock`` on the directory itself: no lock
    file is left behind) while the block runs: writers of one directory take turns."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        yield  # not lockable here (another file system): unlocked, as before
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def write_together(files: dict[Path, bytes]) -> None:
    """Write several files as one: under :func:`directory_lock` of their directory, after a
    free-space check for all of them, every temporary is written before any is renamed
    into place (so a failure, or two writers, never leaves a mix of old and new files;
    only a kill between the renames, microseconds apart, could)."""
    paths = list(files)
    directory = paths[0].parent
    directory.mkdir(parents=True, exist_ok=True)
    with directory_lock(directory):
        check_free_space(paths[0], *(len(data) for data in files.values()))
        temporaries: list[Path] = []
        try:
            for path, data in files.items():
                temporaries.append(_temporary(path))
                _fill(path, temporaries[-1], lambda tmp, data=data: tmp.write_bytes(data))
            for path, tmp in zip(paths, temporaries):
                try:
                    os.replace(tmp, path)
                except OSError as exc:
                    raise _write_failed(path, exc) from None
        finally:
            for tmp in temporaries:
                tmp.unlink(missing_ok=True)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_json(path: str | os.PathLike, data) -> Path:
    """Write ``data`` as indented JSON at ``path`` (atomically)."""
    return write_bytes(path, json_bytes(data))


def json_bytes(data) -> bytes:
    """``data`` as indented JSON, UTF-8."""
    return (json.dumps(data, indent=2) + "\n").encode()
