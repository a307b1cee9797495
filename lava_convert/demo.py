"""The main job: digits MLP -> NetX -> Lava, checked against the reference simulator."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .files import write_json
from .lava.runtime import run_lava
from .pipeline import convert
from .report.tables import format_table
from .zoo.data import load_digits
from .zoo.train import accuracy, digits_mlp, train_classifier


def run_demo(*, timesteps: int = 32, out_dir: str | Path = "out/demo",
             lava_samples: int | None = None, json_path: str | Path | None = None,
             progress: bool | None = None, echo=print) -> dict:
    """Train, convert, export and run the digits MLP on Lava; return the measured summary.

    Args:
        timesteps: T for conversion and every run.
        out_dir: Where ``digits_mlp.net`` and its ``.json`` sidecar are written (default
            ``out/demo``, as ``lava-convert demo``: not the tracked ``netx_exports/``).
        lava_samples: Test samples run on Lava (default: the whole test split).
        json_path: Also write the summary as JSON here.
        echo: Where progress lines and the table go (``None`` for silence).
    """
    say = echo or (lambda *_: None)
    times = {}
    data = load_digits()
    t0 = time.perf_counter()
    model = train_classifier(digits_mlp(), data.x_train, data.y_train)
    times["train_s"] = time.perf_counter() - t0
    ann_acc = accuracy(model, data.x_test, data.y_test)
    say(f"trained digits MLP in {times['train_s']:.1f} s: ANN test accuracy {100 * ann_acc:.2f} %")

    t0 = time.perf_counter()
    snn = convert(model, calibration=data.x_train, timesteps=timesteps)
    times["convert_s"] = time.perf_counter() - t0
    ref = snn.simulate(data.x_test, timesteps)
    times["reference_s"] = ref.wall_time_s
    snn.accuracy.update(ann=ann_acc, snn_reference=ref.accuracy(data.y_test))
    path = snn.export(Path(out_dir) / "digits_mlp.net")
    say(f"exported {path} (+ {path.with_suffix('.json').name})")

    n = len(data.x_test) if lava_samples is None else min(int(lava_samples), len(data.x_test))
    x_lava, y_lava = data.x_test[:n], data.y_test[:n]
    say(f"running {n} samples x {timesteps} steps as Lava processes (Loihi2SimCfg fixed_pt) ...")
    lava = run_lava(path, x_lava, timesteps, progress=progress)
    times["lava_s"] = lava.wall_time_s
    ref_same = ref if n == len(data.x_test) else snn.simulate(x_lava, timesteps)
    identical = all(np.array_equal(lava.spike_counts[k], ref_same.spike_counts[k])
                    for k in lava.spike_counts)
    snn.accuracy["snn_lava"] = lava.accuracy(y_lava)
    snn.accuracy["lava_samples"] = n
    snn.write_sidecar(path)

    names = list(ref.spike_counts)
    labels = [f"spikes/sample {name}" + (" (readout)" if i == len(names) - 1 else "")
              for i, name in enumerate(names)]
    ref_spikes, lava_spikes = ref_same.spikes_per_sample(), lava.spikes_per_sample()
    ref_all_spikes = ref.spikes_per_sample()
    rows = [
        ["ANN (PyTorch, float)", 100 * ann_acc, len(data.x_test), "-"] + ["-"] * len(names),
        ["SNN reference (fixed point)", 100 * ref.accuracy(data.y_test), len(data.x_test),
         timesteps] + [ref_all_spikes[k] for k in names],
        ["SNN Lava (fixed_pt)", 100 * snn.accuracy["snn_lava"], n, timesteps]
        + [lava_spikes[k] for k in names],
    ]
    say("")
    say(format_table(["network", "accuracy %", "samples", "T"] + labels, rows))
    total = sum(v.size for v in lava.spike_counts.values())
    say(f"Lava vs reference spike counts: {'identical' if identical else 'DIFFERENT'} "
        f"({n} samples, {total // n} neurons each)")
    summary = {
        "dataset": "digits", "timesteps": timesteps, "test_samples": len(data.x_test),
        "lava_samples": n, "export": str(path),
        "accuracy": {"ann": ann_acc, "snn_reference": ref.accuracy(data.y_test),
                     "snn_reference_on_lava_samples": ref_same.accuracy(y_lava),
                     "snn_lava": snn.accuracy["snn_lava"]},
        "spikes_per_sample": {"reference": ref_spikes, "lava": lava_spikes},
        "lava_matches_reference": identical,
        "times_s": times,
    }
    if json_path is not None:
        write_json(json_path, summary)
        say(f"wrote {json_path}")
    return summary
