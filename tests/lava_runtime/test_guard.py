"""Lava runs stop cleanly on Ctrl-C, SIGTERM, a timeout or a killed parent: no worker remains."""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import run_python

import lava_convert as lc

pytestmark = pytest.mark.lava

LONG_RUN = """
import sys
import numpy as np
import lava_convert as lc

if __name__ == "__main__":
    x = np.random.default_rng(0).random((100000, 1, 8, 8)) * 16
    print("running", flush=True)
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    lc.run_lava(sys.argv[1], x, timesteps=32, chunk=16, progress=False, workers=workers)
"""


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (from /proc)."""
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    kids = [int(k) for k in f.read().split()]
                found.update(kids)
                todo.extend(kids)
        except (FileNotFoundError, ProcessLookupError):
            pass
    return found


def session_members(sid: int) -> set[int]:
    """Every process of session ``sid`` (the long run starts a new session), orphans too."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[3]) == sid:  # fields after the name: state, ppid, pgrp, session
                found.add(int(entry))
    return found


def alive(pids: set[int]) -> list[int]:
    out = []
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                    out.append(p)
        except FileNotFoundError:
            pass
    return out


def start_long_run(tmp_path, net, early: bool = False,
                   shards: int = 1) -> tuple[subprocess.Popen, set[int]]:
    """Start a long Lava run (``workers=shards``) in a new session; return once its workers
    run (``early``: as soon as the first ones exist, while Lava is still forking the rest)."""
    script = tmp_path / "long_run.py"
    script.write_text(textwrap.dedent(LONG_RUN))
    log = open(tmp_path / "log.txt", "w+")
    proc = subprocess.Popen([sys.executable, str(script), str(net), str(shards)], stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    deadline, workers, least = time.monotonic() + 120, set(), 3 * shards
    # wait until the workers exist and the run is under way (their number stops growing)
    while time.monotonic() < deadline:
        time.sleep(0.01 if early else 1.0)
        now = descendants(proc.pid)
        if len(now) >= least and (early or now == workers):
            workers = now
            break
        workers = now
    assert proc.poll() is None and len(workers) >= least, open(tmp_path / "log.txt").read()
    return proc, workers


HOW = ["ctrl-c to the process group", "ctrl-c during start-up", "SIGINT", "SIGTERM", "SIGKILL"]
#: Sharded runs: every signal, the ones the coordinator handles alike under the slow marker.
KILLS = [(how, 1) for how in HOW] + [
    pytest.param(how, 2, marks=() if how in (HOW[0], HOW[3], HOW[4]) else pytest.mark.slow)
    for how in HOW]


@pytest.mark.parametrize("how,shards", KILLS)
def test_killed_run_leaves_no_lava_workers(tmp_path, digits_net, how, shards):
    # during start-up the signal lands while Lava forks its workers: it once interrupted
    # logging's at-fork hook, left the logging lock held and hung the parent. With two
    # shards the signal reaches the coordinator (and, from a terminal, the shards too).
    before = shm_segments()
    proc, workers = start_long_run(tmp_path, digits_net, early="start-up" in how,
                                   shards=shards)
    try:
        if how.startswith("ctrl-c"):
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(getattr(signal, how))
        proc.wait(timeout=60)
        workers |= session_members(proc.pid)
        deadline = time.monotonic() + 30
        while alive(workers) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert alive(workers) == [], open(tmp_path / "log.txt").read()[-3000:]
        if how != "SIGKILL":  # the parent stopped the runtime and reported the interruption
            assert "KeyboardInterrupt" in open(tmp_path / "log.txt").read()
            # a segment made just before the interrupt is unlinked by multiprocessing's
            # resource tracker once its process has ended: give it a moment
            deadline = time.monotonic() + 15
            while left_segments(before) and time.monotonic() < deadline:
                time.sleep(0.5)
            assert left_segments(before) == set()
    finally:
        for p in alive(workers | {proc.pid}):
            os.kill(p, signal.SIGKILL)


def test_timeout_stops_the_run(digits_net):
    x = np.random.default_rng(0).random((20000, 1, 8, 8)) * 16
    start = time.monotonic()
    with pytest.raises(lc.LavaTimeoutError, match=r"timeout_s=3 s.*fewer samples"):
        lc.run_lava(digits_net, x, chunk=16, progress=False, timeout_s=3)
    assert time.monotonic() - start < 60
    assert multiprocessing.active_children() == []
    with pytest.raises(lc.ConfigError, match="timeout_s"):
        lc.run_lava(digits_net, x[:2], timeout_s=0)


@pytest.mark.parametrize("stage", ["_build_message_infrastructure", "_build_processes",
                                   "_build_runtime_services", "_start_ports"])
def test_interrupt_while_lava_builds_its_runtime(digits_net, stage):
    # Lava's stop() only ends workers of a started run: interrupted earlier, it waited for
    # them forever. Ctrl-C is simulated in one build stage: before the first two run, after
    # the last two (whose workers then exist). A fresh interpreter: the patch must not
    # outlive the test, and a hang must not hang the suite.
    after = stage in ("_build_runtime_services", "_start_ports")
    result = run_python(f"""
        import multiprocessing
        import numpy as np
        import lava_convert as lc
        from lava_convert.lava.compat import ensure_lava
        ensure_lava()
        from lava.magma.runtime.runtime import Runtime

        original = Runtime.{stage}
        def interrupted(self, *args, **kwargs):
            if {after}:
                original(self, *args, **kwargs)  # workers exist; the next stage is cut
            raise KeyboardInterrupt("simulated Ctrl-C")
        Runtime.{stage} = interrupted

        if __name__ == "__main__":
            try:
                lc.run_lava({str(digits_net)!r}, np.zeros((4, 1, 8, 8)), progress=False)
            except KeyboardInterrupt as exc:
                print("interrupted:", exc)
            print("workers left:", len(multiprocessing.active_children()))
    """, timeout=120)
    assert "interrupted: simulated Ctrl-C" in result.stdout, result.stderr[-3000:]
    assert "workers left: 0" in result.stdout, result.stdout + result.stderr[-3000:]
    assert "stopping the Lava runtime failed" not in result.stderr, result.stderr[-3000:]


def test_ctrl_c_waits_until_the_recordings_are_read(digits_net):
    # reading Vars is a request/reply exchange with the workers; cut short, it left them
    # (and stop()) waiting forever. Ctrl-C arriving during a read takes effect after it.
    result = run_python(f"""
        import multiprocessing, os, signal, time
        import numpy as np
        import lava_convert as lc
        from lava_convert.lava.simulate import LavaNetwork

        original = LavaNetwork.read
        def read(self, first, count):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)  # unshielded, the KeyboardInterrupt lands here
            out = original(self, first, count)
            print("read completed", flush=True)
            return out
        LavaNetwork.read = read

        if __name__ == "__main__":
            try:
                lc.run_lava({str(digits_net)!r}, np.zeros((4, 1, 8, 8)), chunk=2, progress=False)
            except KeyboardInterrupt:
                print("interrupted")
            print("workers left:", len(multiprocessing.active_children()))
    """, timeout=120)
    assert result.stdout.split() == ["read", "completed", "interrupted", "workers", "left:", "0"], \
        result.stdout + result.stderr[-3000:]


def shm_segments() -> set[str]:
    return {name for name in os.listdir("/dev/shm") if name.startswith("psm_")}


def left_segments(before: set[str]) -> set[str]:
    """Shared-memory segments made since ``before`` that no running process maps: those a
    run left behind (other programs' runs on the machine, such as a second copy of this
    suite, map theirs)."""
    new = shm_segments() - before
    if not new:
        return new
    mapped = set()
    for maps in Path("/proc").glob("[0-9]*/maps"):
        try:
            mapped.update(re.findall(r"/dev/shm/(psm_\w+)", maps.read_text()))
        except OSError:  # the process ended meanwhile
            continue
    return new - mapped


@pytest.mark.parametrize("victim", ["a Lava worker", "a Lava worker of shard 1",
                                    "the process of shard 1"])
def test_a_dead_worker_fails_the_run_instead_of_hanging(tmp_path, digits_net, victim):
    """SIGKILL one Lava worker mid-run: the run must end within seconds with LavaRunError
    naming the dead process (and its shard, in a sharded run), every other worker stopped,
    no shared memory left (before the watchdog this hung in 20 of 20 tries)."""
    before = shm_segments()
    shards = 1 if victim == "a Lava worker" else 2
    proc, workers = start_long_run(tmp_path, digits_net, shards=shards)
    try:
        shard_procs = sorted(int(k) for k in
                             open(f"/proc/{proc.pid}/task/{proc.pid}/children").read().split())
        if victim == "the process of shard 1":
            os.kill(shard_procs[1], signal.SIGKILL)
        else:
            os.kill(sorted(descendants(shard_procs[-1]) if shards > 1 else workers)[-1],
                    signal.SIGKILL)
        start = time.monotonic()
        proc.wait(timeout=60)
        took = time.monotonic() - start
        log = open(tmp_path / "log.txt").read()
        assert "LavaRunError" in log, log[-3000:]
        if victim == "the process of shard 1":
            assert "shard 1 (samples 50000-99999) ended unexpectedly (exit code -9)" in log, \
                log[-3000:]
        else:
            assert "a Lava worker died" in log and "pid" in log, log[-3000:]
        if shards > 1:
            assert "shard 1 (samples 50000-99999)" in log, log[-3000:]
        assert took < 30
        workers |= session_members(proc.pid)
        deadline = time.monotonic() + 30
        while (alive(workers) or left_segments(before)) and time.monotonic() < deadline:
            time.sleep(0.5)  # the resource tracker unlinks a dead process's segments
        assert alive(workers) == []
        assert left_segments(before) == set()
    finally:
        for p in alive(workers | {proc.pid}):
            os.kill(p, signal.SIGKILL)


def test_a_killed_shard_whose_workers_linger_fails_the_run(tmp_path, digits_net):
    """Shard 1's Lava workers inherit its pipe to the coordinator: held stopped (SIGSTOP),
    they outlive the killed shard and keep the pipe open, so no EOF comes; the coordinator
    must notice the end on the shard process itself. Resumed, the lingering processes
    end by themselves (the kernel told them their shard died) and leave no shared memory."""
    before = shm_segments()
    proc, workers = start_long_run(tmp_path, digits_net, shards=2)
    stopped: set[int] = set()
    try:
        shard_procs = sorted(int(k) for k in
                             open(f"/proc/{proc.pid}/task/{proc.pid}/children").read().split())
        stopped = descendants(shard_procs[1])
        assert stopped
        for p in stopped:
            os.kill(p, signal.SIGSTOP)
        os.kill(shard_procs[1], signal.SIGKILL)
        proc.wait(timeout=60)
        log = open(tmp_path / "log.txt").read()
        assert "shard 1 (samples 50000-99999) ended unexpectedly (exit code -9)" in log, \
            log[-3000:]
        for p in alive(stopped):
            os.kill(p, signal.SIGCONT)
        deadline = time.monotonic() + 30
        while (alive(stopped) or left_segments(before)) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert alive(stopped) == []
        assert left_segments(before) == set()
    finally:
        for p in alive(stopped):
            os.kill(p, signal.SIGCONT)
        for p in alive(workers | stopped | {proc.pid}):
            os.kill(p, signal.SIGKILL)


def test_an_ignored_sigint_stays_ignored(tmp_path, digits_net):
    """A caller that ignores SIGINT (`trap '' INT`) keeps it ignored during a Lava run."""
    script = tmp_path / "ignored.py"
    script.write_text(textwrap.dedent("""
        import signal, sys, threading, os
        import numpy as np
        import lava_convert as lc

        if __name__ == "__main__":
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            threading.Timer(4.0, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
            x = np.random.default_rng(0).random((300, 1, 8, 8)) * 16
            out = lc.run_lava(sys.argv[1], x, timesteps=32, chunk=16, progress=False)
            print("finished", len(out.output), flush=True)
    """))
    result = subprocess.run([sys.executable, str(script), str(digits_net)], capture_output=True,
                            text=True, timeout=240)
    assert result.returncode == 0 and "finished 300" in result.stdout, result.stderr[-2000:]


def test_a_second_run_from_another_thread_is_refused_at_once(digits_net):
    import threading

    x = np.random.default_rng(0).random((400, 1, 8, 8)) * 16
    errors, started = [], threading.Event()

    def first():
        started.set()
        lc.run_lava(digits_net, x, chunk=16, progress=False)

    thread = threading.Thread(target=first)
    thread.start()
    started.wait()
    time.sleep(2.0)  # the first run is under way
    begin = time.monotonic()
    try:
        lc.run_lava(digits_net, x[:2], progress=False)
    except lc.LavaRunError as exc:
        errors.append(str(exc))
    assert time.monotonic() - begin < 5
    thread.join(timeout=240)
    assert not thread.is_alive()
    assert errors and "another Lava run is in progress" in errors[0]
    assert multiprocessing.active_children() == []


@pytest.mark.slow
def test_a_killed_parent_leaves_no_temp_folder(tmp_path, digits_net):
    """SIGKILL of the parent used to leave multiprocessing's pymp-* folder (13 of 20 tries):
    the workers, told by the kernel that the parent died, remove it. Passed 7 of 7 runs
    alone, but once in a loaded full-suite run the folder stayed: slow-marked (make
    test-all) until that case is understood."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    script = tmp_path / "long_run.py"
    script.write_text(textwrap.dedent(LONG_RUN))
    env = {**os.environ, "TMPDIR": str(tmp)}
    proc = subprocess.Popen([sys.executable, str(script), str(digits_net)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not list(tmp.glob("pymp-*")) or len(descendants(proc.pid)) < 3:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.5)
        time.sleep(2.0)  # the run is under way
        workers = descendants(proc.pid)
        proc.kill()
        proc.wait(timeout=30)
        deadline = time.monotonic() + 30
        while (alive(workers) or list(tmp.glob("pymp-*"))) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert alive(workers) == []
        assert list(tmp.glob("pymp-*")) == []
    finally:
        for p in alive(descendants(proc.pid) | session_members(proc.pid) | {proc.pid}):
            os.kill(p, signal.SIGKILL)


def test_a_stop_that_never_returns_is_bounded(digits_net):
    """Lava's stop() waiting for a worker that never answers: after STOP_LIMIT_S the
    workers are killed and the run returns (its results were already read)."""
    result = run_python(f"""
        import multiprocessing, time
        import numpy as np
        import lava_convert as lc
        from lava_convert.lava import guard
        from lava_convert.lava.compat import ensure_lava

        if __name__ == "__main__":
            import logging
            logging.basicConfig(level=logging.WARNING)
            ensure_lava()
            from lava.magma.runtime.runtime import Runtime
            Runtime.stop = lambda self: time.sleep(10**6)  # a stop that never returns
            guard.STOP_LIMIT_S = 3.0
            x = np.random.default_rng(0).random((20, 1, 8, 8))
            start = time.monotonic()
            out = lc.run_lava({str(digits_net)!r}, x, progress=False)
            print("returned", len(out.output), round(time.monotonic() - start))
            time.sleep(1)
            print("children", len(multiprocessing.active_children()))
    """, timeout=120)
    assert "returned 20" in result.stdout, result.stderr[-2000:]
    assert int(result.stdout.split("returned 20")[1].split()[0]) < 60  # seconds
    assert "children 0" in result.stdout, result.stdout
    assert "took longer than 3 s" in result.stderr


def test_a_dead_worker_found_while_lava_forks_is_raised_after_the_forks(monkeypatch):
    """The watchdog's wake-up arriving while a fork's at-fork hooks run (Lava still
    starting its workers) is held back, then delivered to the main thread once the forks
    are over: raised inside the hooks, Python swallowed it and the run hung for good."""
    from lava_convert.lava import guard

    run = guard.RunGuard(None)
    run._forced = lc.LavaRunError("a Lava worker died during the run")
    previous = signal.signal(guard.WAKE_SIGNAL, run._wake)
    monkeypatch.setattr(guard, "_forking", 1)
    try:
        os.kill(os.getpid(), guard.WAKE_SIGNAL)  # during the fork: held back
        time.sleep(0.05)
        assert guard._deferred == [guard.WAKE_SIGNAL]
        with pytest.raises(lc.LavaRunError, match="a Lava worker died"):
            guard._fork_finished()  # the forks are over: delivered to the main thread
            time.sleep(1.0)
    finally:
        signal.signal(guard.WAKE_SIGNAL, previous)
        guard._deferred.clear()


def test_an_interrupt_python_cannot_raise_is_kept_for_the_runs_next_check(capsys):
    """SIGTERM or Ctrl-C turned into KeyboardInterrupt inside a callback Python cannot
    raise from (Dask's garbage-collector callback, a ``__del__``) used to be printed as
    "Exception ignored ..." around the command line's one-line error, and lost; the
    guarded run now keeps it and raises it at its next check."""
    from lava_convert.lava.guard import guarded_run

    class Dropper:
        def __del__(self):
            raise KeyboardInterrupt("stopped by SIGTERM")

    with guarded_run() as guard:
        dropper = Dropper()
        del dropper  # raised inside __del__: Python reports it as unraisable
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            guard.check()
        guard.check()  # once
    assert "Exception ignored" not in capsys.readouterr().err
