"""Sharded Lava runs: over forked processes and over a Dask cluster, the same result as one run.

The kill, Ctrl-C and dead-worker tests of sharded runs are in test_guard.py (parametrized
over ``shards``).
"""

from __future__ import annotations

import multiprocessing
import os
import time

import numpy as np
import pytest
from helpers import ROOT, run_python

import lava_convert as lc
from lava_convert.lava.shards import Shard, plan_shards, resolve_workers

pytestmark = pytest.mark.lava


def test_shards_are_contiguous_and_balanced():
    # worked by hand: 10 samples over 3 -> 4, 3, 3 (the first shard takes the remainder)
    assert plan_shards(10, 3) == (Shard(0, 0, 4), Shard(1, 4, 7), Shard(2, 7, 10))
    assert plan_shards(2, 5) == (Shard(0, 0, 1), Shard(1, 1, 2))  # never an empty shard
    assert plan_shards(7, 1) == (Shard(0, 0, 7),)
    assert plan_shards(10, 3)[1].describe() == "shard 1 (samples 4-6)"


def test_worker_counts_are_checked():
    assert resolve_workers("auto") == len(os.sched_getaffinity(0))
    assert resolve_workers("3") == 3
    for bad in (0, -1, "two", 1.5, True, None):
        with pytest.raises(lc.ConfigError, match="workers=.*positive number"):
            resolve_workers(bad)


def assert_same_result(a: lc.RunResult, b: lc.RunResult) -> None:
    """Field by field; ``wall_time_s`` and ``info`` describe the run, not its result."""
    assert (a.backend, a.timesteps) == (b.backend, b.timesteps)
    assert np.array_equal(a.output, b.output)
    assert a.spike_counts.keys() == b.spike_counts.keys()
    for name in a.spike_counts:
        assert a.spike_counts[name].dtype == b.spike_counts[name].dtype
        assert np.array_equal(a.spike_counts[name], b.spike_counts[name]), name
    assert a.predictions_per_step is None and b.predictions_per_step is None
    assert a.spike_trains is None and b.spike_trains is None


@pytest.fixture(scope="module")
def inputs(digits):
    rng = np.random.default_rng(0)
    return {"dense": ("digits", None, digits.x_test[:23]),  # odd sizes: uneven shards
            "conv": ("mnist_cnn_qcfs", 6, rng.random((5, 1, 28, 28))),
            "residual": ("fashion_mnist_resnet_qcfs", 6, rng.random((5, 1, 28, 28)))}


@pytest.mark.parametrize("kind", ["dense", "conv", "residual"])
def test_two_workers_give_the_result_of_one(kind, inputs, digits_net):
    name, T, x = inputs[kind]
    path = digits_net if name == "digits" else ROOT / "netx_exports" / f"{name}.net"
    one = lc.run_lava(path, x, T, progress=False)
    # chunks smaller than a shard: each shard's chunks interleave with the other's
    two = lc.run_lava(path, x, T, workers=2, chunk=2, progress=False)
    assert_same_result(one, two)
    assert one.info["shards"] == [[0, len(x)]]
    assert two.info["shards"] == [[0, (len(x) + 1) // 2], [(len(x) + 1) // 2, len(x)]]
    # and the reference (an independent implementation) agrees with both
    ref = lc.simulate(path, x, T)
    for layer_name, counts in ref.spike_counts.items():
        assert np.array_equal(counts, two.spike_counts[layer_name]), layer_name
    assert multiprocessing.active_children() == []


def test_a_sharded_run_times_out_and_stops_every_shard(digits_net):
    x = np.random.default_rng(0).random((20000, 1, 8, 8))
    start = time.monotonic()
    with pytest.raises(lc.LavaTimeoutError, match=r"timeout_s=3 s"):
        lc.run_lava(digits_net, x, chunk=16, progress=False, timeout_s=3, workers=2)
    assert time.monotonic() - start < 60
    assert multiprocessing.active_children() == []


def test_finished_shards_leave_without_a_traceback(digits_net, digits, monkeypatch, capfd):
    """A shard that has sent its result exits at once: when multiprocessing's exit
    handlers were still running (slowed here) as the coordinator stopped it, the
    interrupted clean-up was printed as a KeyboardInterrupt traceback."""
    import multiprocessing.util

    monkeypatch.setattr(multiprocessing.util, "_exit_function", lambda *a, **k: time.sleep(5))
    result = lc.run_lava(digits_net, digits.x_test[:4], 3, workers=2, progress=False)
    assert result.output.shape[0] == 4
    err = capfd.readouterr().err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err


def test_one_progress_bar_counts_every_sample(digits_net, digits):
    result = run_python(f"""
        import numpy as np
        import lava_convert as lc
        from lava_convert.zoo.data import load_digits

        if __name__ == "__main__":
            x = load_digits().x_test[:40]
            lc.run_lava({str(digits_net)!r}, x, workers=2, chunk=8, progress=True)
    """, timeout=240)
    bars = [line for line in result.stderr.replace("\\r", "\\n").splitlines()
            if line.startswith("Lava:")]
    assert bars and "40/40" in bars[-1], result.stderr[-2000:]
    assert all("/40 " in line for line in bars)  # one bar over all 40 samples


# --- Dask ---------------------------------------------------------------------------------

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    from lava_convert.lava.cluster import local_cluster

    with local_cluster(2) as client:
        yield client


@pytest.mark.parametrize("kind", ["dense", pytest.param("residual", marks=pytest.mark.slow)])
def test_a_dask_cluster_gives_the_result_of_one_process(kind, cluster, inputs, digits_net):
    name, T, x = inputs[kind]
    path = digits_net if name == "digits" else ROOT / "netx_exports" / f"{name}.net"
    one = lc.run_lava(path, x, T, progress=False)
    on_dask = lc.run_lava(path, x, T, client=cluster, progress=False)
    assert_same_result(one, on_dask)
    assert on_dask.info["scheduler"] == "dask" and len(on_dask.info["shards"]) == 2
    # the workers ran the shards, each in a process of its own: none is left there
    left = cluster.run(lambda: len(multiprocessing.active_children()))
    assert set(left.values()) == {0}


POISON = """
import lava_convert.lava.shards as patched
if not hasattr(patched, "unpoisoned_record"):
    patched.unpoisoned_record = patched.record
    def record(net, x_int, *args, **kwargs):
        import lava_convert.lava.shards as module
        if x_int[0].min() > 0:  # the marker: no digit has every pixel lit
            raise ValueError("poisoned sample")
        return module.unpoisoned_record(net, x_int, *args, **kwargs)
    patched.record = record
"""


def test_a_shard_that_fails_on_dask_fails_the_run_and_names_it(cluster, digits_net, digits):
    """The workers' shard runner fails on a marked sample (patched on the workers only):
    the run fails naming the shard and its samples, and nothing is returned."""
    cluster.run(exec, POISON, {})
    try:
        x = digits.x_test[:6].copy()
        x[3] = 1.0  # the marker (every pixel lit), first sample of the last shard
        with pytest.raises(lc.LavaRunError,
                           match=r"on the Dask cluster: shard 1 \(samples 3-5\) failed "
                                 r"\(ValueError: poisoned sample\)"):
            lc.run_lava(digits_net, x, 8, client=cluster, progress=False)
    finally:
        cluster.run(exec, "import lava_convert.lava.shards as s\n"
                          "s.record = getattr(s, 'unpoisoned_record', s.record)", {})


def test_dask_defaults_are_refused_with_the_two_settings_to_change(digits_net):
    """Dask's default workers are daemonic (may not fork) and spawned (Lava needs fork): a
    task on such a worker fails, saying which two settings to change. Checked on a real
    cluster with daemonic workers, and in a spawned process for the start method."""
    import dask
    from distributed import Client, LocalCluster

    with dask.config.set({"distributed.worker.daemon": True,
                          "distributed.worker.multiprocessing-method": "fork"}):
        with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                          dashboard_address=":0") as daemonic, Client(daemonic) as client:
            with pytest.raises(lc.LavaRunError) as info:
                lc.run_lava(digits_net, np.zeros((2, 1, 8, 8)), 4, client=client,
                            progress=False)
    text = str(info.value)
    assert "daemonic" in text
    assert "distributed.worker.daemon: False" in text
    assert "distributed.worker.multiprocessing-method: fork" in text

    from lava_convert.lava.cluster import worker_problems

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        problems = pool.apply(worker_problems)
    assert any("'spawn'" in p and "multiprocessing-method" in p for p in problems), problems


def test_a_local_cluster_leaves_no_scratch_space(tmp_path, monkeypatch):
    """Dask's workers keep their scratch in a temporary folder of the cluster's own,
    removed with it (it was ``dask-scratch-space`` in the temporary directory, left for
    good)."""
    import tempfile

    from lava_convert.lava.cluster import local_cluster

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again
    monkeypatch.chdir(tmp_path)
    with local_cluster(1) as client:
        assert client.submit(sum, [1, 2]).result() == 3
        assert len(list(tmp_path.iterdir())) == 1  # its scratch folder, while it runs
    assert list(tmp_path.iterdir()) == []


def test_a_sharded_run_leaves_no_temporary_folders(tmp_path, digits_net):
    """Each shard's Lava makes a ``pymp-*`` folder; a shard leaves without Python's exit
    handlers (they would print tracebacks when the coordinator stops it), so it removes
    the folder itself. A fresh interpreter, so no folder is inherited."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(f"""
        import numpy as np
        import lava_convert as lc
        if __name__ == "__main__":
            run = lc.run_lava({str(digits_net)!r}, np.zeros((4, 1, 8, 8)), workers=2,
                              progress=False)
            print(len(run.predictions))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=240, env={**os.environ, "TMPDIR": str(tmp_path)})
    assert done.stdout.split() == ["4"], done.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_killed_dask_worker_fails_the_run_naming_its_shard(digits_net):
    """SIGKILL of one worker of a local cluster mid-run: the run fails at once with
    LavaRunError naming the shard (Dask used to re-run the shard on the restarted worker,
    where it could not report back: the run hung until its timeout)."""
    import signal
    import threading

    from lava_convert.lava.cluster import local_cluster

    x = np.random.default_rng(0).random((3000, 1, 8, 8))
    with local_cluster(2) as client:
        address, victim = min(client.run(os.getpid).items())
        done = threading.Event()
        killed = []

        def kill_when_running() -> None:  # once its shard runs there (a loaded machine too)
            while not done.is_set():
                if client.processing().get(address):
                    time.sleep(1.0)
                    os.kill(victim, signal.SIGKILL)
                    killed.append(time.monotonic())
                    return
                time.sleep(0.1)

        killer = threading.Thread(target=kill_when_running, daemon=True)
        killer.start()
        try:
            with pytest.raises(lc.LavaRunError, match=r"shard \d \(samples \d+-\d+\): the Dask "
                                                      r"worker running it died"):
                lc.run_lava(digits_net, x, client=client, progress=False, timeout_s=120)
        finally:
            done.set()
            killer.join()
        assert killed and time.monotonic() - killed[0] < 30
