"""Verbs that use a NetX file: inspect, run, sweep, compare, report. Each verb: a function
declaring its arguments next to its handler."""

from __future__ import annotations

import argparse

from ..errors import InputError
from .common import (
    dask_client,
    dataset_flags,
    lava_flags,
    output_flags,
    read_json,
    write_json_result,
)

# --- inspect ----------------------------------------------------------------------------

def _inspect_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("net", help="NetX HDF5 file (.net)")
    p.add_argument("--loihi2", action="store_true",
                   help="also check every Loihi 2 fixed-point limit per layer and estimate "
                   "cores and chips (lava_convert.report.loihi2.loihi2_fit)")
    output_flags(p)


def _inspect(args: argparse.Namespace) -> int:
    from ..report.inspect import describe
    from ..report.loihi2 import loihi2_fit
    from ..report.tables import format_table

    info = describe(args.net)
    if args.loihi2:
        info["loihi2"] = loihi2_fit(args.net).to_dict()
    if not args.quiet:
        print(f"{info['file']}: input {tuple(info['input_shape'])} ({info['input_bits']}-bit "
              f"graded, scale {info['input_scale']:.4g}), T={info['timesteps']}, "
              f"{info['neurons']} neurons, {info['synapses']} synapses")
        lif = all(l["neuron"] == "LIF" for l in info["layers"])
        print(format_table(
            ["layer", "kind", "input", "output", "neurons", "synapses", "vth",
             "reset" if lif else "lava neuron", "weights", "w exp", "v0"],
            [[l["name"], l["kind"] + ("" if l["spiking"] or not lif else " (readout)"),
              "x".join(map(str, l["input_shape"])), "x".join(map(str, l["shape"])),
              l["neurons"], l["synapses"], l["vth"], l["reset"] if lif else l["neuron"],
              None if l["weight_range"] is None else "{}..{}".format(*l["weight_range"]),
              l["weight_exponent"], _v0_cell(l["v0"]) if lif else "-"]
             for l in info["layers"]]))
        for l in info["layers"]:
            for k in l["shortcuts"]:
                print(f"shortcut {k['source']} -> {l['name']}: {k['kind']}, weights "
                      f"{k['weight_range'][0]}..{k['weight_range'][1]}, delay line "
                      f"{k['delay']} step(s)")
        print("stock netx.hdf5.Network " + ("loads this file, with these differences:"
                                            if info["stock_netx_loads"] else
                                            "refuses this file:"))
        for note in info["stock_netx"]:
            print(f"  - {note}")
        if args.loihi2:
            _print_loihi2(info["loihi2"])
    write_json_result(args.json, info)
    return 0


def _v0_cell(v0) -> str | int:
    """The initial potential of a layer for the table: the number, or the range of its
    per-neuron (per-channel) values."""
    if not isinstance(v0, list):
        return v0
    return f"{min(v0)}..{max(v0)} ({len(v0)})" if v0 else "-"


def _print_loihi2(fit: dict) -> None:
    from ..report.tables import format_table

    rows = [[layer["name"], limit["name"], limit["found"], limit["allowed"],
             ("yes" if limit["ok"] else "NO") if limit["exact"] else
             ("yes" if limit["ok"] else "note")]
            for layer in fit["layers"] for limit in layer["limits"]]
    print("\nLoihi 2 fixed-point limits, per layer:")
    print(format_table(["layer", "limit", "found", "allowed", "fits"], rows))
    print(f"all exact limits hold: {'yes' if fit['ok'] else 'NO'}")
    for note in fit["headroom_notes"]:
        print(f"headroom note: {note}: inputs far beyond the calibration data could pass "
              "it")
    if fit["custom"]:
        print("needs more than Intel's stock models:")
        for part in fit["custom"]:
            print(f"  - {part}")
    else:
        print("runs with Intel's stock neuron and synapse models")
    print(format_table(["layer", "neurons", "synapses", "fan-in per neuron",
                        "cores (estimate)"],
                       [[l["name"], l["neurons"], l["synapses"], l["fan_in"],
                         l["cores_estimate"]] for l in fit["layers"]]))
    print(f"estimate: {fit['cores_estimate']} neuro-cores, {fit['chips_estimate']} Loihi 2 "
          f"chip(s) ({fit['estimate_note']})")
    return 0


# --- run --------------------------------------------------------------------------------

def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("net", help="NetX HDF5 file (.net)")
    p.add_argument("--backend", default="lava", choices=["lava", "reference"])
    p.add_argument("--mode", default="fixed", choices=["fixed", "float"],
                   help="reference arithmetic (default fixed: Lava-exact)")
    dataset_flags(p)
    p.add_argument("--timesteps", "-T", type=int, default=None,
                   help="time steps per sample (default: the file's)")
    p.add_argument("--limit", type=int, default=None, help="first N test samples only")
    lava_flags(p)
    output_flags(p, "also write the summary as JSON (input of `report`)")


def _run(args: argparse.Namespace) -> int:
    from ..report.energy import energy_lines
    from ..report.neurobench import neurobench_line
    from ..report.tables import format_table
    from ..workflows import evaluate

    with dask_client(args.scheduler) as client:
        _, summary = evaluate(args.net, args.data, backend=args.backend, mode=args.mode,
                              timesteps=args.timesteps, limit=args.limit,
                              data_dir=args.data_dir, progress=False if args.quiet else None,
                              timeout_s=args.timeout, workers=args.workers, client=client,
                              models=args.lava_models)
    if not args.quiet:
        spikes = summary.spikes_per_sample
        print(format_table(
            ["backend", "samples", "T", "accuracy %", "seconds"]
            + [f"spikes/sample {k}" for k in spikes],
            [[summary.backend, summary.samples, summary.timesteps, 100 * summary.accuracy,
              summary.wall_time_s] + list(spikes.values())]))
        cost = summary.cost
        print(f"per sample: {cost['synops']:.0f} synaptic ops vs {cost['ann_macs']} ANN MACs")
        print("\n".join(energy_lines(cost["energy"])))
        print(f"NeuroBench {neurobench_line(summary.neurobench)}")
    write_json_result(args.json, summary)
    return 0


# --- sweep ------------------------------------------------------------------------------

def _sweep_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("net", help="NetX HDF5 file (.net)")
    dataset_flags(p)
    p.add_argument("--timesteps", "-T", type=int, default=128, help="largest T (default 128)")
    p.add_argument("--limit", type=int, default=None, help="first N test samples only")
    output_flags(p, "also write the summary as JSON (input of `report`)")


def _sweep(args: argparse.Namespace) -> int:
    from ..report.neurobench import neurobench_line
    from ..report.tables import format_table
    from ..workflows import sweep

    summary = sweep(args.net, args.data, timesteps=args.timesteps, limit=args.limit,
                    data_dir=args.data_dir)
    if not args.quiet:
        curve = summary.accuracy_per_step
        ts = sorted({t for t in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512) if t <= len(curve)}
                    | {len(curve)})
        ann = summary.ann_accuracy
        print(format_table(["T"] + [str(t) for t in ts] + (["ANN"] if ann is not None else []),
                           [["accuracy %"] + [100 * curve[t - 1] for t in ts]
                            + ([100 * ann] if ann is not None else [])]))
        print(f"NeuroBench {neurobench_line(summary.neurobench)}")
    write_json_result(args.json, summary)
    return 0


# --- compare ----------------------------------------------------------------------------

def _compare_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("net", help="NetX HDF5 file (.net)")
    dataset_flags(p)
    p.add_argument("--timesteps", "-T", type=int, default=None)
    p.add_argument("--limit", type=int, default=100, help="first N test samples (100)")
    lava_flags(p, "the Lava run")
    output_flags(p)


def _compare(args: argparse.Namespace) -> int:
    from ..report.tables import format_table
    from ..workflows import compare_backends, load_test_split

    x, _ = load_test_split(args.data, args.limit, args.data_dir)
    with dask_client(args.scheduler) as client:
        result = compare_backends(args.net, x, args.timesteps, timeout_s=args.timeout,
                                  workers=args.workers, client=client, models=args.lava_models)
    if not args.quiet:
        from ..netx.reader import read_netx

        # sigma-delta neurons send graded messages: their counts are of non-zero messages
        what = "messages" if read_netx(args.net).neuron_model == "sdnn" else "spikes"
        print(format_table(
            ["layer", "neurons", "samples differing", "max count diff", f"Lava {what}/sample",
             f"reference {what}/sample"],
            [[l.name, l.neurons, l.samples_differing, l.max_count_difference,
              l.lava_spikes_per_sample, l.reference_spikes_per_sample]
             for l in result.layers]))
        print(f"{result.samples} samples, T={result.timesteps}: {what[:-1]} counts "
              f"{'identical' if result.identical else 'DIFFERENT'}; predictions agree on "
              f"{100 * result.predictions_agree:.2f} %")
    write_json_result(args.json, result)
    return 0 if result.identical else 1


# --- report -----------------------------------------------------------------------------

def _report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_json", help="JSON from `lava-convert run --json` or `sweep --json`")
    p.add_argument("--out", required=True, help="directory for the page and figures")
    p.add_argument("--html", action="store_true", help="write HTML instead of Markdown")
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing")


def _report(args: argparse.Namespace) -> int:
    from ..report.pages import write_report
    from ..report.summary import RunSummary

    data = read_json(args.run_json, "the run JSON (write it with lava-convert run --json)",
                      InputError)
    path = write_report(RunSummary.from_dict(data, args.run_json), args.out, html=args.html)
    if not args.quiet:
        print(f"wrote {path} and its figures")
    return 0
