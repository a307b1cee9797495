"""Sharded Lava runs: throughput at 1 and 2 workers and on a 2-worker Dask LocalCluster.

Three ways of running the same samples, interleaved round by round (so load
drifts hit all three alike): ``workers=1``, ``workers=2`` (two forked shard
processes) and ``client=`` a LocalCluster of two one-thread workers. Every
sharded result is checked equal, field by field, to the single-process one.

Then the constants of a simple model of a run's time: a single-process run of
``n`` samples takes ``s + n c`` (``s``: compile and start Lava's processes;
``c``: seconds per sample), fitted from runs of 2 and 12 samples; two shards
started at once cost ``s2`` before their first step.

Last, the reference simulator's peak memory (``ru_maxrss`` of a fresh process)
for 10,000 and 100,000 samples of the digits MLP.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import lava_convert as lc
from lava_convert.lava.cluster import local_cluster
from lava_convert.sim.results import spike_differences
from lava_convert.workflows import load_test_split

ROOT = Path(__file__).resolve().parent.parent
NETS = {"MNIST CNN": ("mnist_cnn_qcfs.net", "mnist"), "digits MLP": ("digits_mlp.net", "digits")}


def same(a: lc.RunResult, b: lc.RunResult) -> bool:
    return not spike_differences(a, b)


def cpu_seconds() -> float:
    """CPU time of this process and of its children that have ended (Lava's workers)."""
    return sum(getattr(resource.getrusage(who), f) for who in
               (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN) for f in ("ru_utime", "ru_stime"))


def throughput(path: Path, x: np.ndarray, rounds: int, client) -> dict:
    times = {"1 worker": [], "2 workers": [], "Dask local:2": []}
    identical, busy = True, []
    for _ in range(rounds):
        start, cpu = time.perf_counter(), cpu_seconds()
        one = lc.run_lava(path, x, progress=False)
        times["1 worker"].append(time.perf_counter() - start)
        busy.append((cpu_seconds() - cpu) / times["1 worker"][-1])
        start = time.perf_counter()
        two = lc.run_lava(path, x, workers=2, progress=False)
        times["2 workers"].append(time.perf_counter() - start)
        start = time.perf_counter()
        dask = lc.run_lava(path, x, client=client, progress=False)
        times["Dask local:2"].append(time.perf_counter() - start)
        identical &= same(one, two) and same(one, dask)
    best = {k: min(v) for k, v in times.items()}
    return {"samples": len(x), "seconds": best, "identical": identical, "busy": max(busy),
            "sps": {k: len(x) / v for k, v in best.items()}}


def startup(path: Path, x: np.ndarray) -> dict:
    def timed(n: int, workers: int = 1) -> float:
        start = time.perf_counter()
        lc.run_lava(path, x[:n], workers=workers, progress=False)
        return time.perf_counter() - start

    t2, t12 = min(timed(2) for _ in range(2)), min(timed(12) for _ in range(2))
    c = (t12 - t2) / 10
    s = t2 - 2 * c
    two_shards = min(timed(2, workers=2) for _ in range(2))  # one sample per shard
    return {"s": s, "c": c, "s2": two_shards - c}


def reference_peak_mib(samples: int) -> float:
    code = f"""
import resource, numpy as np, lava_convert as lc
from lava_convert.zoo.data import load_digits
x = load_digits().x_test
x = np.concatenate([x] * (-(-{samples} // len(x))))[:{samples}]
r = lc.simulate({str(ROOT / 'netx_exports' / 'digits_mlp.net')!r}, x)
assert r.num_samples == {samples}
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return float(out.stdout.split()[-1])


def section(quick: bool = False) -> str:
    limits = {"MNIST CNN": 40 if quick else 200, "digits MLP": 60 if quick else 360}
    rounds = 1 if quick else 2
    lines = ["## Sharded Lava runs: workers and a Dask LocalCluster", "",
             f"Samples per second on Lava (best of {rounds} interleaved rounds); "
             "`identical`: every sharded result equals the single-process one (outputs and "
             "spike counts of every layer).", "",
             "`cores busy`: CPU seconds of the single-process run (all its Lava processes) per "
             "second of wall time: one Lava network already runs its layer processes in "
             "parallel (and they spend CPU waiting for each other), so on this 2-core machine "
             "a second shard finds much less than a free core.", "",
             "| network | samples | T | 1 worker | 2 workers | Dask local:2 | speed-up 2 workers "
             "| speed-up Dask | cores busy (1 worker) | identical |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    constants = {}
    with local_cluster(2) as client:
        for name, (file, dataset) in NETS.items():
            path = ROOT / "netx_exports" / file
            x, _ = load_test_split(dataset, limits[name])
            r = throughput(path, x, rounds, client)
            sps = r["sps"]
            lines.append(
                f"| {name} | {r['samples']} | {lc.read_netx(path).timesteps} "
                f"| {sps['1 worker']:.2f} | {sps['2 workers']:.2f} | {sps['Dask local:2']:.2f} "
                f"| {sps['2 workers'] / sps['1 worker']:.2f}x "
                f"| {sps['Dask local:2'] / sps['1 worker']:.2f}x | {r['busy']:.2f} "
                f"| {r['identical']} |")
            constants[name] = startup(path, x)
    lines += ["", "Start-up and per-sample cost, single process (fitted from 2 and 12 "
              "samples, best of 2): a run of n samples takes s + n c; two shards started "
              "together take s2 before their first sample.", "",
              "| network | s (start-up, s) | c (s/sample) | s2 (two shards, s) "
              "| splitting in 2 pays above |", "|---|---|---|---|---|"]
    for name, k in constants.items():
        # 1 worker: s + n c; 2 workers on 2 cores: s2 + (n/2) c  ->  n > 2 (s2 - s) / c
        pays = max(2.0, 2 * (k["s2"] - k["s"]) / k["c"])
        lines.append(f"| {name} | {k['s']:.2f} | {k['c']:.3f} | {k['s2']:.2f} "
                     f"| {pays:.0f} samples |")
    cnn = constants["MNIST CNN"]
    lines += ["", "Model of a 10,000-sample MNIST CNN check with these constants, assuming "
              "one free core per worker and shards of equal size (t = s_W + (N / W) c, "
              "with s_W taken as s2 for W > 1; not measured beyond 2 workers):", "",
              "| workers | predicted time |", "|---|---|"]
    for w in (1, 8, 64):
        t = (cnn["s"] if w == 1 else cnn["s2"]) + 10_000 / w * cnn["c"]
        lines.append(f"| {w} | {t / 60:.1f} min |")
    peaks = {n: reference_peak_mib(n) for n in ((2000, 10_000) if quick else (10_000, 100_000))}
    lines += ["", "Reference simulator (fixed point, digits MLP, T=32), peak resident memory of "
              "a fresh process: it simulates in batches, so what grows with the samples is "
              "their inputs (64 float64 each) and per-sample spike counts (202 int64 each).", "",
              "| samples | peak RSS (MiB) |", "|---|---|"]
    lines += [f"| {n:,} | {p:.0f} |" for n, p in peaks.items()]
    return "\n".join(lines)
