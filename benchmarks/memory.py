"""Memory of a long streamed Lava run: resident memory of the whole process tree over time.

The digits MLP (``make demo``'s network, T=32) streams N samples through Lava
in chunks of 256. A sampler thread sums the resident set size (RSS) of this
process and every Lava worker (from /proc) every 0.5 s. Flat memory means the
RSS late in the run is no higher than early on, however many samples run.
"""

from __future__ import annotations

import os
import threading
import time

import numpy as np

import lava_convert as lc
from lava_convert.zoo.data import load_digits
from lava_convert.zoo.train import digits_mlp, train_classifier


def tree_rss_mib(pid: int) -> float:
    """RSS of ``pid`` and all its descendants (MiB), from /proc."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(k) for k in f.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total / 2**20


def measure(samples: int, T: int = 32) -> dict:
    digits = load_digits()
    model = train_classifier(digits_mlp(), digits.x_train, digits.y_train)
    net = lc.convert(model, calibration=digits.x_train, timesteps=T)
    reps = -(-samples // len(digits.x_test))
    x = np.concatenate([digits.x_test] * reps)[:samples]
    y = np.concatenate([digits.y_test] * reps)[:samples]
    trace, done = [], threading.Event()

    def sample() -> None:
        start = time.perf_counter()
        while not done.wait(0.5):
            trace.append((time.perf_counter() - start, tree_rss_mib(os.getpid())))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = lc.run_lava(net.fixed, x, T, chunk=256, progress=False)
    finally:
        done.set()
        sampler.join()
    t = np.array([p[0] for p in trace])
    rss = np.array([p[1] for p in trace])
    wall = result.wall_time_s

    def peak(lo: float, hi: float) -> float:
        sel = (t >= lo * wall) & (t <= hi * wall)
        return float(rss[sel].max()) if sel.any() else float("nan")

    return dict(samples=samples, T=T, wall=wall, acc=result.accuracy(y),
                ref_acc=net.simulate(x, T).accuracy(y), early=peak(0.1, 0.3),
                middle=peak(0.4, 0.6), late=peak(0.8, 1.0), peak=float(rss.max()))


def section(quick: bool = False) -> str:
    r = measure(500 if quick else 5000)
    return "\n".join([
        "## Memory of a long streamed Lava run", "",
        f"Digits MLP, T={r['T']}, {r['samples']} samples streamed in chunks of 256 "
        f"({r['wall']:.0f} s; accuracy Lava {100 * r['acc']:.2f} %, reference "
        f"{100 * r['ref_acc']:.2f} %). Resident memory of this process plus every Lava "
        "worker, sampled every 0.5 s (largest value in each part of the run):", "",
        "| 10-30 % of the run | 40-60 % | 80-100 % | peak |",
        "|---|---|---|---|",
        f"| {r['early']:.0f} MiB | {r['middle']:.0f} MiB | {r['late']:.0f} MiB "
        f"| {r['peak']:.0f} MiB |", "",
        f"Late minus early: {r['late'] - r['early']:+.0f} MiB "
        f"({100 * (r['late'] - r['early']) / r['early']:+.1f} %).", "",
    ])
