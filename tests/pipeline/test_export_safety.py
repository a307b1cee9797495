"""Exports that cannot go wrong halfway. On a full disk: an ``ExportError`` that names
the space needed and free, the previous pair intact, no temporary left, and never a crash
(HDF5's own writer could kill the process when the disk filled mid-write; files are now
built in memory), on a real 48 KiB tmpfs where this machine lets the tests mount one, and
with the free space reported by a stand-in. Two writers on one path leave a matching
pair; a copied sidecar is named with what to do."""

from __future__ import annotations

import collections
import json
import shutil
import subprocess

import numpy as np
import pytest
import torch

import lava_convert as lc
from lava_convert.files import atomic_write
from lava_convert.zoo.models import mlp


@pytest.fixture
def tiny_disk(tmp_path):
    """A 48 KiB tmpfs, unmounted afterwards; skipped where mounting is not allowed."""
    where = tmp_path / "tiny"
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode})")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    x = np.random.default_rng(0).random((64, 1, 8, 8)).astype(np.float32)
    return lc.convert(mlp((1, 8, 8), (20,), 10, "relu"), calibration=x, timesteps=4,
                      balancing="max", progress=False)


def test_exporting_over_a_pair_on_a_full_disk_is_refused(tiny_disk, small):
    path = small.export(tiny_disk / "a.net")
    before = {p.name: p.read_bytes() for p in tiny_disk.iterdir()}
    with pytest.raises(lc.ExportError, match=r"a.net: needs [\d,]+ bytes .* has [\d,]+ free")\
            as refused:
        small.export(path)
    assert "\n" not in str(refused.value)
    assert {p.name: p.read_bytes() for p in tiny_disk.iterdir()} == before  # no .tmp either
    assert json.loads(path.with_suffix(".json").read_text())["netx_file"] == "a.net"


def test_a_write_that_runs_out_of_space_leaves_nothing(tiny_disk):
    with pytest.raises(lc.ExportError, match=r"big.bin: writing failed \(No space left") \
            as refused:
        atomic_write(tiny_disk / "big.bin", lambda tmp: tmp.write_bytes(b"x" * 100_000))
    assert "\n" not in str(refused.value)
    assert list(tiny_disk.iterdir()) == []


def test_free_space_is_measured_before_anything_is_written(small, tmp_path, monkeypatch):
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(10**6, 10**6 - 8192, 8192))
    with pytest.raises(lc.ExportError, match=r"has 8,192 free; free some space"):
        small.export(tmp_path / "a.net")
    with pytest.raises(lc.ExportError, match=r"has 8,192 free"):
        small.export_nir(tmp_path / "a.nir")
    assert list(tmp_path.iterdir()) == []


def _export_many(converted, path, times):
    for _ in range(times):
        converted.export(path)


def test_two_writers_on_one_path_never_mismatch_the_pair(small, tmp_path):
    """Two processes export different networks to one path, again and again: the .net and
    the .json are always written as a pair (both temporaries first, under a lock on the
    directory), so whatever pair is left belongs together."""
    import hashlib
    import multiprocessing

    torch.manual_seed(1)
    x = np.random.default_rng(1).random((64, 1, 8, 8)).astype(np.float32)
    other = lc.convert(mlp((1, 8, 8), (24,), 10, "relu"), calibration=x, timesteps=4,
                       balancing="max", progress=False)
    path = tmp_path / "a.net"
    ctx = multiprocessing.get_context("fork")
    writers = [ctx.Process(target=_export_many, args=(c, path, 15)) for c in (small, other)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(60)
    assert [w.exitcode for w in writers] == [0, 0]
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["netx_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "a.net"]


def test_a_copied_pair_says_to_remove_the_copied_sidecar(small, tmp_path):
    small.export(tmp_path / "a.net")
    (tmp_path / "b.json").write_bytes((tmp_path / "a.json").read_bytes())
    with pytest.raises(lc.ExportError, match=r"b.json belongs to a.net; .* if b.json was "
                                             r"copied along with a.net, remove it"):
        small.export(tmp_path / "b.net")
