"""Keep Lava's worker processes under control: Ctrl-C, SIGTERM, timeouts, a killed parent.

Lava's CPU simulator runs every process (and a shared-memory manager) as a
forked OS process. Left alone, three things go wrong:

* Ctrl-C in a terminal sends SIGINT to the whole process group; the workers
  die mid-step and the parent's ``stop()`` then waits for them forever;
* SIGTERM kills the parent without running ``stop()``, orphaning the workers;
* if the parent is killed outright (SIGKILL, out of memory), the workers keep
  waiting for messages that never come.

:func:`guarded_run` fixes all three for the duration of a run: workers forked
inside it ignore SIGINT (the parent handles it and stops them cleanly) and get
SIGTERM from the kernel when the parent dies (Linux ``PR_SET_PDEATHSIG``); the
parent turns SIGTERM into ``KeyboardInterrupt`` and an expired ``timeout_s``
into :class:`~lava_convert.errors.LavaTimeoutError`, both raised in the main
thread so the caller's ``finally`` stops the runtime. Signal handlers can only
be installed from the main thread; elsewhere the timeout is checked by the
caller between chunks (:meth:`RunGuard.check`). Stopping the runtime runs
inside :meth:`RunGuard.shielded`, so a second signal cannot cut it short, and
so does reading recorded Vars: a request/reply exchange with the workers that,
cut short, leaves them and then ``stop()`` waiting forever.

Ctrl-C, SIGTERM, the timeout's alarm and the watchdog's wake-up are held back while Lava
forks its workers: an exception raised inside Python's at-fork hooks is swallowed there
(a worker killed while Lava started the others hung the run for good) and can leave the
``logging`` lock held, after which the parent hangs at its next log call. A signal that
arrives during a fork is delivered again once the forks are over (``FORK_QUIET_S``
later).

:func:`stop_runtime` stops a Lava runtime in every state it can be left in.
Lava's ``Runtime.stop()`` tells the workers to end only if the run had begun;
a runtime interrupted while it was still being built has workers waiting for
their first command, and ``stop()`` would then wait for them forever. Those
workers are terminated first.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import multiprocessing.util
import os
import shutil
import signal
import sys
import threading
import time
from contextlib import contextmanager

from ..errors import ConfigError, LavaRunError, LavaTimeoutError

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
_active = 0  # number of guarded runs in progress (forks inside them are Lava workers)
_parent_pid = 0  # the process that runs them
#: Seconds a terminated worker of a never-started runtime gets before SIGKILL.
TERMINATE_GRACE_S = 5.0
#: Seconds after a fork during which Ctrl-C and SIGTERM stay deferred.
FORK_QUIET_S = 0.05
_forking = 0  # forks (of the guarded parent) whose at-fork hooks may still be running
_deferred: list[int] = []  # signals that arrived during a fork, to deliver again
_parent_tempdir: str | None = None  # the guarded parent's multiprocessing temp folder


def _before_fork() -> None:
    global _forking
    if _active and os.getpid() == _parent_pid:
        _forking += 1


def _after_fork_in_parent() -> None:
    if _active and os.getpid() == _parent_pid and _forking:
        # later at-fork hooks still run after this one: end the quiet window from a timer
        timer = threading.Timer(FORK_QUIET_S, _fork_finished)
        timer.daemon = True
        timer.start()


def _fork_finished() -> None:
    global _forking
    _forking = max(0, _forking - 1)
    if not _forking and _deferred:
        pending = list(dict.fromkeys(_deferred))  # each signal once, in arrival order
        _deferred.clear()
        for signum in pending:  # to the main thread: its blocking call must be interrupted
            signal.pthread_kill(threading.main_thread().ident, signum)


def _deferred_by_fork(signum: int) -> bool:
    """Whether a fork's at-fork hooks may be running: then ``signum`` is delivered again
    once they are over (an exception raised inside them is swallowed by Python)."""
    if _forking:
        _deferred.append(signum)
        return True
    return False


def _on_sigterm_in_worker(signum: int) -> None:
    """A worker's SIGTERM: end now. If it came because the parent died (PR_SET_PDEATHSIG),
    first remove the parent's multiprocessing temp folder (``pymp-*``), which the parent's
    exit handlers would have removed had it not been killed outright."""
    if os.getppid() != _parent_pid and _parent_tempdir:
        for _ in range(20):  # other workers may be removing it too, or still writing to it
            shutil.rmtree(_parent_tempdir, ignore_errors=True)
            if not os.path.exists(_parent_tempdir):
                break
            time.sleep(0.05)
    os._exit(128 + signum)


def _end_on_sigterm() -> None:
    """A worker's SIGTERM watcher thread: wait for the signal, then end the process."""
    _on_sigterm_in_worker(signal.sigwait({signal.SIGTERM}))


def _after_fork_in_child() -> None:
    """Runs in every forked child: only children forked during a guarded run are changed.

    SIGTERM is taken by a thread of its own: a Python signal handler runs only when the
    main thread runs Python, and a worker's main thread may be blocked in a wait that a
    signal delivered to another of its threads does not interrupt (a worker stopped when
    its parent died, then resumed, kept running that way). Blocked here, before Lava
    starts its threads, SIGTERM reaches only the watcher."""
    if not _active:
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # inherited by new threads
    threading.Thread(target=_end_on_sigterm, name="lava-convert-sigterm", daemon=True).start()
    die_with_parent(_parent_pid)


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel send this process SIGTERM when its parent ends (Linux
    ``PR_SET_PDEATHSIG``); end now if the parent ``parent_pid`` has already gone."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
        except (OSError, AttributeError):  # pragma: no cover - non-glibc systems
            return
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)


def forget_inherited_runs() -> None:
    """In a process forked to run Lava itself (a shard): drop the state of guarded runs
    its parent had in progress (their lock, their count), which belong to the parent."""
    global _active, _one_run
    _active = 0
    _deferred.clear()
    _one_run = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)


#: How often the watchdog looks at the workers (seconds).
WATCH_INTERVAL_S = 0.2
#: Signal the watchdog sends the main thread to end a wait on a dead worker.
WAKE_SIGNAL = signal.SIGUSR1


def lava_workers(process) -> list:
    """The worker processes (``multiprocessing.Process``) of ``process``'s Lava runtime,
    forked by this process; empty before the runtime exists."""
    runtime = getattr(process, "runtime", None)
    infrastructure = getattr(runtime, "_messaging_infrastructure", None)
    actors = getattr(infrastructure, "_actors", None) or []
    return [a for a in actors if getattr(a, "_parent_pid", None) == os.getpid()]


class RunGuard:
    """The state of one guarded run: its deadline (``None``: no timeout), and the worker
    that died, if one did."""

    def __init__(self, timeout_s: float | None) -> None:
        self.timeout_s = timeout_s
        self.deadline = None if timeout_s is None else time.monotonic() + timeout_s
        self._shielded = False
        self._pending: BaseException | None = None
        self._forced: BaseException | None = None
        self.dead_worker: str | None = None  # which worker died, for the caller

    def _raise(self, exc: BaseException, force: bool = False) -> None:
        """Raise ``exc`` now, or after the shielded block that is running (``force``:
        now in any case: the exchange the shield protects can no longer complete)."""
        if self._shielded and not force:
            self._pending = self._pending or exc
        else:
            raise exc

    def _wake(self, signum, frame) -> None:
        if _deferred_by_fork(signum):  # a worker died while Lava forks the others
            return
        if self._forced is not None:
            exc, self._forced = self._forced, None
            self._raise(exc, force=True)

    @contextmanager
    def watching(self, process):
        """While the block runs, a watchdog thread checks the Lava workers of ``process``
        every ``WATCH_INTERVAL_S``: if one has died, it records which and interrupts the
        main thread with :class:`LavaRunError` (a wait on a dead worker never ends by
        itself). Main thread only; elsewhere the block runs unwatched."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        main = threading.main_thread().ident
        stop = threading.Event()

        def watch() -> None:
            while not stop.wait(WATCH_INTERVAL_S):
                dead = [w for w in lava_workers(process) if w.exitcode is not None]
                if dead:
                    w = dead[0]
                    self.dead_worker = f"{w.name} (pid {w.pid}, exit code {w.exitcode})"
                    self._forced = LavaRunError(
                        f"a Lava worker died during the run: {self.dead_worker}; the other "
                        "workers were stopped. Check memory (a killed worker is often the "
                        "out-of-memory killer) and run again")
                    signal.pthread_kill(main, WAKE_SIGNAL)
                    return

        previous = signal.signal(WAKE_SIGNAL, self._wake)
        thread = threading.Thread(target=watch, name="lava-convert-watchdog", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            signal.signal(WAKE_SIGNAL, previous)
            self._forced = None

    @contextmanager
    def shielded(self):
        """Defer Ctrl-C, SIGTERM and the timeout until the block (``stop()``, reading Vars)
        has finished."""
        self._shielded = True
        try:
            yield
        finally:
            self._shielded = False
        if self._pending is not None:
            exc, self._pending = self._pending, None
            raise exc

    def check(self) -> None:
        """Raise an interrupt that arrived where Python could not raise it (see
        :func:`_guarded`), or :class:`LavaTimeoutError` if the deadline has passed."""
        if self._pending is not None and not self._shielded:
            exc, self._pending = self._pending, None
            raise exc
        if self.deadline is not None and time.monotonic() > self.deadline:
            self._raise(LavaTimeoutError(
                f"the Lava run exceeded timeout_s={self.timeout_s:g} s and was stopped: raise "
                "the timeout, or run fewer samples (limit) or time steps"
            ))


def stop_runtime(process, force: bool = False) -> None:
    """Stop the Lava runtime of ``process`` (a Lava Process) and end its workers.

    Safe in every state: never compiled (no runtime), started (Lava's own
    ``stop()``), or built partly or fully but never started (interrupted
    during start-up), a worker dead, or ``force``: then its workers are sent
    SIGTERM (SIGKILL after ``TERMINATE_GRACE_S``) and joined, and the
    shared-memory manager is shut down, which is what Lava's ``stop()`` would
    do after telling started workers to end (a dead worker would never answer).
    """
    runtime = process.runtime
    if runtime is None:
        return
    actors = lava_workers(process)
    if runtime._is_started and not force and not any(a.exitcode is not None for a in actors):
        runtime.stop()
        return
    # never started, or a worker died: Lava's stop() would wait for replies that never
    # come; end the workers here, and keep Lava from trying again at exit
    runtime._is_started = False
    infrastructure = runtime._messaging_infrastructure
    if infrastructure is not None:
        for actor in actors:
            if actor.is_alive():
                actor.terminate()
        for actor in actors:
            # SIGTERM can land before a fresh worker has dropped the parent's handler, which
            # swallows it: after a grace period, SIGKILL (Lava's own join() has no timeout)
            multiprocessing.Process.join(actor, TERMINATE_GRACE_S)
            if actor.is_alive():
                actor.kill()
                multiprocessing.Process.join(actor)
        # the shared-memory manager has shutdown() only once it has started
        shutdown = getattr(getattr(infrastructure, "_smm", None), "shutdown", None)
        if shutdown is not None:
            shutdown()
    if runtime._watchdog_manager is not None:
        runtime._watchdog_manager.stop()


#: Longest a Lava runtime may take to stop before its workers are killed (seconds).
STOP_LIMIT_S = 20.0


def stop_within(process, limit_s: float | None = None) -> None:
    """:func:`stop_runtime`, bounded: if stopping takes longer than ``limit_s`` (default
    ``STOP_LIMIT_S``; a worker
    that never answers), the workers are killed, the wait is broken off with
    :class:`LavaRunError`, and the rest is cleaned up. Main thread only for the break-off;
    elsewhere the workers are still killed after ``limit_s``."""
    limit_s = STOP_LIMIT_S if limit_s is None else limit_s
    done = threading.Event()
    main = threading.main_thread().ident
    on_main = threading.current_thread() is threading.main_thread()
    overdue = []

    def watch() -> None:
        if done.wait(limit_s):
            return
        overdue.append(True)
        for worker in lava_workers(process):
            if worker.is_alive():
                worker.kill()
        if on_main:
            signal.pthread_kill(main, WAKE_SIGNAL)

    def wake(signum, frame):
        if overdue and not done.is_set():
            raise LavaRunError(f"stopping the Lava runtime took longer than {limit_s:g} s; "
                               "its workers were killed")

    previous = signal.signal(WAKE_SIGNAL, wake) if on_main else None
    thread = threading.Thread(target=watch, name="lava-convert-stop-watchdog", daemon=True)
    thread.start()
    try:
        stop_runtime(process)
    except LavaRunError:
        stop_runtime(process, force=True)  # the workers were killed: end what is left
        raise
    finally:
        done.set()
        thread.join()
        if on_main:
            signal.signal(WAKE_SIGNAL, previous)


def check_timeout(timeout_s) -> float | None:
    """Validate a run's ``timeout_s`` (positive seconds, or ``None`` for no limit)."""
    if timeout_s is None:
        return None
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) \
            or not 0 < timeout_s < float("inf"):
        raise ConfigError(f"timeout_s={timeout_s!r} is invalid: use a positive number of "
                          "seconds, or None for no limit")
    return float(timeout_s)


#: One guarded Lava run at a time in a process: two runtimes in two threads deadlock.
_one_run = threading.Lock()


@contextmanager
def guarded_run(timeout_s: float | None = None):
    """Context for a Lava run; yields a :class:`RunGuard` (see the module docstring).

    A second run while one is in progress in another thread of this process is refused
    at once with :class:`LavaRunError` (Lava's runtimes in two threads deadlock)."""
    check_timeout(timeout_s)
    if not _one_run.acquire(blocking=False):
        raise LavaRunError("another Lava run is in progress in this process: Lava cannot run "
                           "two networks at once from two threads; run them one after the "
                           "other, or in separate processes")
    try:
        with _guarded(timeout_s) as guard:
            yield guard
    finally:
        _one_run.release()


@contextmanager
def _guarded(timeout_s: float | None):
    global _active, _parent_pid, _parent_tempdir
    guard = RunGuard(timeout_s)
    main = threading.current_thread() is threading.main_thread()
    previous = {}
    if main:
        def on_interrupt(signum, frame):
            if _deferred_by_fork(signum):
                return
            guard._raise(KeyboardInterrupt() if signum == signal.SIGINT else
                         KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}"))

        def on_alarm(signum, frame):
            if not _deferred_by_fork(signum):
                guard.check()

        for signum in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(signum) is signal.SIG_IGN:
                continue  # the caller asked to ignore it (e.g. `trap '' INT`): respect that
            previous[signum] = signal.signal(signum, on_interrupt)
        if timeout_s is not None:
            previous[signal.SIGALRM] = signal.signal(signal.SIGALRM, on_alarm)
            signal.setitimer(signal.ITIMER_REAL, timeout_s + 0.01)
    # Ctrl-C or SIGTERM raised inside a callback Python cannot raise from (a garbage
    # collector callback, a __del__) would be printed as "Exception ignored" and lost: keep
    # it for the run's next check instead
    previous_hook = sys.unraisablehook

    def unraisable(info) -> None:
        if isinstance(info.exc_value, KeyboardInterrupt):
            guard._pending = guard._pending or info.exc_value
        else:
            previous_hook(info)

    sys.unraisablehook = unraisable
    _active += 1
    _parent_pid = os.getpid()
    # made now (multiprocessing caches it), so workers forked later know what to remove
    _parent_tempdir = multiprocessing.util.get_temp_dir()
    try:
        yield guard
    finally:
        sys.unraisablehook = previous_hook
        _active -= 1
        _deferred.clear()
        if main:
            if timeout_s is not None:
                signal.setitimer(signal.ITIMER_REAL, 0)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
