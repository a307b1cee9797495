"""Writing files atomically: a temporary file in the same directory, renamed into place,
so an interrupted write never leaves a half-written file."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
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
    try:
        write(Path(tmp))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ExportError(f"{path}: writing failed ({exc.strerror or exc}); the previous file, "
                          "if any, is unchanged. Check free disk space and permissions") from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_json(path: str | os.PathLike, data) -> Path:
    """Write ``data`` as indented JSON at ``path`` (atomically)."""
    text = json.dumps(data, indent=2) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text))
