"""Command line: ``lava-convert demo | train | convert | inspect | run | sweep | compare | report``.

Each verb is a pair: a function that declares its arguments, next to the handler that
makes one call into :mod:`lava_convert.workflows` (or the function it names) and prints.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys

from .config import STOCK_NETX_SETTINGS, TARGETS, ConversionConfig
from .errors import ConfigError, InputError, LavaConvertError
from .interrupts import sigint_deferred
from .version import __version__

#: What the verbs import (torch among it), loaded up front with Ctrl-C held back.
_HEAVY_MODULES = (".workflows", ".report.inspect", ".report.pages", ".zoo.train")

# The handlers import the package's heavy parts (torch, Lava) themselves, inside main()'s
# error handling, so that Ctrl-C while they load is a one-line "interrupted".

DATA_HELP = ("digits (built in, default), mnist, fashion-mnist, or a path: a folder of the "
             "four IDX files or an .npz with x and y")


def _dataset_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="digits", help=DATA_HELP)
    p.add_argument("--data-dir", default=None, help="directory of the IDX files")


def _output_flags(p: argparse.ArgumentParser, json_help: str = "also write the result as JSON"):
    p.add_argument("--json", metavar="PATH", help=json_help)
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing")


def _read_json(path, what: str, error):
    """A JSON file, or ``error`` naming the file and the problem."""
    try:
        with open(path) as f:
            return json.loads(f.read())
    except (OSError, ValueError, RecursionError) as exc:
        raise error(f"{path}: cannot read {what} ({type(exc).__name__}: {str(exc)[:120]})"
                    ) from exc


def _write_json(path, data) -> None:
    from .files import write_json

    if path:
        write_json(path, data.to_dict() if hasattr(data, "to_dict") else data)


# --- demo -------------------------------------------------------------------------------

def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--timesteps", "-T", type=int, default=32, help="time steps (default 32)")
    p.add_argument("--out", default="out/demo", help="export directory (default out/demo)")
    p.add_argument("--limit", type=int, default=None,
                   help="run only the first N test samples on Lava (default: all)")
    _output_flags(p, "also write the results as JSON")


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    summary = run_demo(timesteps=args.timesteps, out_dir=args.out, lava_samples=args.limit,
                       json_path=args.json, progress=False if args.quiet else None,
                       echo=None if args.quiet else print)
    return 0 if summary["lava_matches_reference"] else 1


# --- train ------------------------------------------------------------------------------

def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="digits", help=DATA_HELP)
    p.add_argument("--data-dir", default=None, help="directory of the IDX files")
    p.add_argument("--activation", default="threshold", choices=["relu", "threshold", "qcfs"])
    p.add_argument("--hidden", default="128,64", help="hidden widths, comma separated")
    p.add_argument("--threshold", type=float, default=1.0, help="clip threshold (initial)")
    p.add_argument("--levels", type=int, default=8, help="QCFS quantization levels")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="where to save the model (.pt)")
    p.add_argument("--swap-maxpool", metavar="MODEL",
                   help="instead of training an MLP: load MODEL (a .pt file, or module:factory "
                   "with --weights), replace its MaxPool2d by AvgPool2d, fine-tune it for "
                   "--epochs on --data and save the whole module (convert it with --trust-code)")
    p.add_argument("--weights", help="state_dict file for a module:factory --swap-maxpool model")
    p.add_argument("--trust-code", action="store_true",
                   help="allow a --swap-maxpool model file that runs code when loaded")
    p.add_argument("--quiet", "-q", action="store_true")


def _train(args: argparse.Namespace) -> int:
    from .zoo.models import save_model
    from .zoo.train import train_model

    if args.swap_maxpool:
        return _finetune(args)
    hidden = tuple(int(h) for h in args.hidden.split(",") if h)
    model, spec = train_model(args.data, act=args.activation, hidden=hidden,
                              threshold=args.threshold, levels=args.levels, epochs=args.epochs,
                              lr=args.lr, batch_size=args.batch_size, seed=args.seed,
                              data_dir=args.data_dir, progress=False if args.quiet else None)
    path = save_model(model, args.out, **spec)
    if not args.quiet:
        print(f"{args.data}: test accuracy {100 * spec['info']['test_accuracy']:.2f} %; "
              f"saved {path}")
    return 0


def _finetune(args: argparse.Namespace) -> int:
    import torch

    from .files import atomic_write
    from .zoo.data import load_dataset
    from .zoo.models import model_from
    from .zoo.train import finetune_without_maxpool

    model = model_from(args.swap_maxpool, args.weights, trust_code=args.trust_code)
    data = load_dataset(args.data, args.data_dir)
    accs = finetune_without_maxpool(model, data, epochs=args.epochs, seed=args.seed,
                                    progress=False if args.quiet else None)
    path = atomic_write(args.out, lambda tmp: torch.save(model, tmp))
    if not args.quiet:
        print(f"{args.data}: test accuracy with max pooling {100 * accs['max_pool']:.2f} %, "
              f"after swapping {accs['modules']} to average pooling "
              f"{100 * accs['swapped']:.2f} %, after fine-tuning {args.epochs} epoch(s) "
              f"{100 * accs['fine_tuned']:.2f} %; saved {path} (a whole module: convert it "
              "with --trust-code)")
    return 0


# --- convert ----------------------------------------------------------------------------

_CONFIG_FLAGS = ("timesteps", "balancing", "percentile", "reset", "shift", "readout",
                 "input_bits", "bias_calibration", "target")


def _convert_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="model file (.pt) or module:factory (your code, imported)")
    p.add_argument("--trust-code", action="store_true",
                   help="allow a model file that runs code when loaded: a whole module saved "
                   "with torch.save(model) (a pickle), or a saved factory outside lava-convert")
    p.add_argument("--weights", help="state_dict file for a module:factory model")
    p.add_argument("--kwargs", help="JSON object of factory arguments")
    p.add_argument("--out", required=True, help="NetX file to write (.net)")
    p.add_argument("--config", help="JSON file of ConversionConfig fields (flags override)")
    p.add_argument("--timesteps", "-T", type=int)
    p.add_argument("--balancing", choices=["auto", "clip", "max", "percentile"])
    p.add_argument("--percentile", type=float)
    p.add_argument("--reset", choices=["soft", "hard"])
    p.add_argument("--shift", choices=["bias", "v0", "none"])
    p.add_argument("--readout", choices=["potential", "spikes"])
    p.add_argument("--input-bits", type=int)
    p.add_argument("--bias-calibration", type=int, metavar="N",
                   help="correct each layer's bias on N calibration samples (0: off)")
    p.add_argument("--target", choices=list(TARGETS),
                   help="lava-convert (default; run with lava_convert.netx.Network) or "
                   "stock-netx (a file unmodified lava-dl NetX runs exactly: hard reset and "
                   "spiking readout unless --reset/--readout say otherwise)")
    p.add_argument("--calibration", type=int, default=2000,
                   help="training samples used for calibration (default 2000)")
    _dataset_flags(p)
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing")


def _convert(args: argparse.Namespace) -> int:
    from .workflows import convert_and_export
    from .zoo.data import load_dataset
    from .zoo.models import model_from

    config = ConversionConfig()
    if args.config:
        data = _read_json(args.config, "the config", ConfigError)
        if not isinstance(data, dict):
            raise ConfigError(f"{args.config}: the config must be a JSON object of "
                              f"ConversionConfig fields, not {type(data).__name__}")
        config = ConversionConfig.from_dict(data)
    flags = {k: getattr(args, k) for k in _CONFIG_FLAGS if getattr(args, k) is not None}
    if flags.get("target", config.target) == "stock-netx":
        flags = {**STOCK_NETX_SETTINGS, **flags}  # what the target needs, unless given
    config = config.replace(**flags)
    kwargs = None
    if args.kwargs:
        try:
            kwargs = json.loads(args.kwargs)
        except (ValueError, RecursionError) as exc:
            raise ConfigError(f"--kwargs is not valid JSON ({str(exc)[:100]}); pass a JSON "
                              "object, e.g. '{\"hidden\": [64]}'") from exc
        if not isinstance(kwargs, dict):
            raise ConfigError(f"--kwargs must be a JSON object, not {type(kwargs).__name__}")
    model = model_from(args.model, args.weights, kwargs, trust_code=args.trust_code)
    data = load_dataset(args.data, args.data_dir)
    converted, path = convert_and_export(model, data, args.out, config=config,
                                         calibration=args.calibration,
                                         progress=False if args.quiet else None)
    if not args.quiet:
        acc = converted.accuracy
        print(f"{args.data}: ANN {100 * acc['ann']:.2f} %, SNN (reference, "
              f"T={config.timesteps}) {100 * acc['snn_reference']:.2f} %; wrote {path} and "
              f"{path.with_suffix('.json').name}")
        for warning in converted.warnings:
            print(f"warning: {warning}")
    return 0


# --- inspect ----------------------------------------------------------------------------

def _inspect_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("net", help="NetX HDF5 file (.net)")
    p.add_argument("--loihi2", action="store_true",
                   help="also check every Loihi 2 fixed-point limit per layer and estimate "
                   "cores and chips (lava_convert.report.loihi2.loihi2_fit)")
    _output_flags(p)


def _inspect(args: argparse.Namespace) -> int:
    from .report.inspect import describe
    from .report.loihi2 import loihi2_fit
    from .report.tables import format_table

    info = describe(args.net)
    if args.loihi2:
        info["loihi2"] = loihi2_fit(args.net).to_dict()
    if not args.quiet:
        print(f"{info['file']}: input {tuple(info['input_shape'])} ({info['input_bits']}-bit "
              f"graded, scale {info['input_scale']:.4g}), T={info['timesteps']}, "
              f"{info['neurons']} neurons, {info['synapses']} synapses")
        print(format_table(
            ["layer", "kind", "input", "output", "neurons", "synapses", "vth", "reset",
             "weights", "w exp", "v0"],
            [[l["name"], l["kind"] + ("" if l["spiking"] else " (readout)"),
              "x".join(map(str, l["input_shape"])), "x".join(map(str, l["shape"])),
              l["neurons"], l["synapses"], l["vth"], l["reset"],
              None if l["weight_range"] is None else "{}..{}".format(*l["weight_range"]),
              l["weight_exponent"], l["v0"]] for l in info["layers"]]))
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
    _write_json(args.json, info)


def _print_loihi2(fit: dict) -> None:
    from .report.tables import format_table

    rows = [[layer["name"], limit["name"], limit["found"], limit["allowed"],
             ("yes" if limit["ok"] else "NO") if limit["exact"] else
             ("yes" if limit["ok"] else "note")]
            for layer in fit["layers"] for limit in layer["limits"]]
    print("\nLoihi 2 fixed-point limits, per layer:")
    print(format_table(["layer", "limit", "found", "allowed", "fits"], rows))
    print(f"all exact limits hold: {'yes' if fit['ok'] else 'NO'}")
    for note in fit["headroom_notes"]:
        print(f"headroom note: {note}: inputs far beyond the calibration data could wrap u")
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
    _dataset_flags(p)
    p.add_argument("--timesteps", "-T", type=int, default=None,
                   help="time steps per sample (default: the file's)")
    p.add_argument("--limit", type=int, default=None, help="first N test samples only")
    p.add_argument("--timeout", type=float, default=None, help="stop a Lava run after S s")
    _output_flags(p, "also write the summary as JSON (input of `report`)")


def _run(args: argparse.Namespace) -> int:
    from .report.tables import format_table
    from .workflows import evaluate

    _, summary = evaluate(args.net, args.data, backend=args.backend, mode=args.mode,
                          timesteps=args.timesteps, limit=args.limit, data_dir=args.data_dir,
                          progress=False if args.quiet else None, timeout_s=args.timeout)
    if not args.quiet:
        spikes = summary.spikes_per_sample
        print(format_table(
            ["backend", "samples", "T", "accuracy %", "seconds"]
            + [f"spikes/sample {k}" for k in spikes],
            [[summary.backend, summary.samples, summary.timesteps, 100 * summary.accuracy,
              summary.wall_time_s] + list(spikes.values())]))
        cost = summary.cost
        print(f"per sample: {cost['synops']:.0f} synaptic ops vs {cost['ann_macs']} ANN MACs; "
              f"energy estimate {1e6 * cost['snn_energy_j']:.3f} uJ on Loihi vs "
              f"{1e6 * cost['ann_energy_j']:.3f} uJ for the ANN")
    _write_json(args.json, summary)
    return 0


# --- sweep ------------------------------------------------------------------------------

def _sweep_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("net", help="NetX HDF5 file (.net)")
    _dataset_flags(p)
    p.add_argument("--timesteps", "-T", type=int, default=128, help="largest T (default 128)")
    p.add_argument("--limit", type=int, default=None, help="first N test samples only")
    _output_flags(p, "also write the summary as JSON (input of `report`)")


def _sweep(args: argparse.Namespace) -> int:
    from .report.tables import format_table
    from .workflows import sweep

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
    _write_json(args.json, summary)
    return 0


# --- compare ----------------------------------------------------------------------------

def _compare_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("net", help="NetX HDF5 file (.net)")
    _dataset_flags(p)
    p.add_argument("--timesteps", "-T", type=int, default=None)
    p.add_argument("--limit", type=int, default=100, help="first N test samples (100)")
    p.add_argument("--timeout", type=float, default=None, help="stop the Lava run after S s")
    _output_flags(p)


def _compare(args: argparse.Namespace) -> int:
    from .report.tables import format_table
    from .workflows import compare_backends, load_test_split

    x, _ = load_test_split(args.data, args.limit, args.data_dir)
    result = compare_backends(args.net, x, args.timesteps, timeout_s=args.timeout)
    if not args.quiet:
        print(format_table(
            ["layer", "neurons", "samples differing", "max count diff", "Lava spikes/sample",
             "reference spikes/sample"],
            [[l["name"], l["neurons"], l["samples_differing"], l["max_count_difference"],
              l["lava_spikes_per_sample"], l["reference_spikes_per_sample"]]
             for l in result["layers"]]))
        print(f"{result['samples']} samples, T={result['timesteps']}: spike counts "
              f"{'identical' if result['identical'] else 'DIFFERENT'}; predictions agree on "
              f"{100 * result['predictions_agree']:.2f} %")
    _write_json(args.json, result)
    return 0 if result["identical"] else 1


# --- report -----------------------------------------------------------------------------

def _report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_json", help="JSON from `lava-convert run --json` or `sweep --json`")
    p.add_argument("--out", required=True, help="directory for the page and figures")
    p.add_argument("--html", action="store_true", help="write HTML instead of Markdown")
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing")


def _report(args: argparse.Namespace) -> int:
    from .report.pages import write_report
    from .report.summary import RunSummary

    data = _read_json(args.run_json, "the run JSON (write it with lava-convert run --json)",
                      InputError)
    path = write_report(RunSummary.from_dict(data, args.run_json), args.out, html=args.html)
    if not args.quiet:
        print(f"wrote {path} and its figures")
    return 0


#: verb -> (arguments, handler, one-line help, description, examples)
VERBS = {
    "demo": (_demo_args, _demo, "train, convert and run the digits MLP on Lava",
             "Train a small MLP on scikit-learn's digits, convert it, export "
             "out/demo/digits_mlp.net, run it on Lava's CPU simulator and compare with the "
             "reference simulator (lava_convert.demo.run_demo).",
             ["lava-convert demo", "lava-convert demo --timesteps 16 --json demo.json"]),
    "train": (_train_args, _train, "train a conversion-ready MLP on digits, MNIST or "
              "Fashion-MNIST",
              "Train an MLP (seeded, CPU) and save it with the factory that rebuilds it "
              "(lava_convert.zoo.train.train_model).",
              ["lava-convert train --out digits.pt",
               "lava-convert train --data mnist --activation qcfs --hidden 256,256 --epochs 10 "
               "--out mnist_qcfs.pt"]),
    "convert": (_convert_args, _convert, "convert a trained PyTorch model and export NetX",
                "Convert a model (a file from `lava-convert train` / zoo.models.save_model, or "
                "'module:factory' with --weights), export the NetX file and its sidecar, and "
                "print ANN and SNN test accuracy (lava_convert.workflows.convert_and_export).",
                ["lava-convert convert digits.pt --out netx_exports/my_digits.net",
                 "lava-convert convert mypkg.nets:make_cnn --weights cnn_state.pt --data mnist "
                 "--timesteps 16 --shift v0 --out cnn.net",
                 "lava-convert convert model.pt --config config.json --out net.net",
                 "lava-convert convert digits.pt --target stock-netx --out digits_stock.net"]),
    "inspect": (_inspect_args, _inspect, "show what a NetX file holds",
                "Layers, shapes, thresholds, weight ranges and exponents, synapse and neuron "
                "counts, and how stock netx.hdf5.Network treats the file "
                "(lava_convert.report.inspect.describe).",
                ["lava-convert inspect netx_exports/digits_mlp.net",
                 "lava-convert inspect netx_exports/mnist_cnn_qcfs.net --loihi2",
                 "lava-convert inspect net.net --json info.json"]),
    "run": (_run_args, _run, "run a NetX file on a dataset (Lava or the reference simulator)",
            "Run a NetX network on the test split of a dataset and print accuracy, spikes "
            "per layer and cost (lava_convert.workflows.evaluate). The JSON feeds `report`.",
            ["lava-convert run netx_exports/digits_mlp.net",
             "lava-convert run netx_exports/mnist_cnn_qcfs.net --data mnist --limit 500 "
             "--timesteps 16",
             "lava-convert run net.net --backend reference --json run.json"]),
    "sweep": (_sweep_args, _sweep, "accuracy vs T in one simulation",
              "Accuracy after every time step 1..T from one reference simulation "
              "(lava_convert.workflows.sweep).",
              ["lava-convert sweep netx_exports/digits_mlp.net --timesteps 64",
               "lava-convert sweep netx_exports/mnist_cnn_qcfs.net --data mnist --limit 1000 "
               "--json sweep.json"]),
    "compare": (_compare_args, _compare, "Lava vs reference, layer by layer",
                "Run the same samples on Lava and the reference simulator and compare spike "
                "counts per layer (lava_convert.workflows.compare_backends). Exit status 1 if "
                "they differ.",
                ["lava-convert compare netx_exports/digits_mlp.net --limit 50"]),
    "report": (_report_args, _report, "turn a run's JSON into a Markdown/HTML page with plots",
               "Write report.md (or report.html) and PNG figures: accuracy vs T, firing rates, "
               "ANN activation vs SNN rate, a spike raster, quantization error "
               "(lava_convert.report.pages.write_report).",
               ["lava-convert run net.net --backend reference --json run.json && "
                "lava-convert report run.json --out report/",
                "lava-convert report run.json --out report/ --html"]),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lava-convert",
        description="Convert PyTorch networks to spiking networks on Intel Lava (NetX HDF5).",
    )
    parser.add_argument("--version", action="version", version=f"lava-convert {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each pipeline step")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an unexpected error")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (add_args, handler, help_, description, examples) in VERBS.items():
        p = sub.add_parser(name, help=help_, description=description,
                           epilog="examples:\n" + "\n".join(f"  {e}" for e in examples),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        add_args(p)
        p.set_defaults(func=handler)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        with sigint_deferred():  # torch's native import aborts on a Ctrl-C inside it
            for module in _HEAVY_MODULES:
                importlib.import_module(module, __package__)
        return args.func(args)
    except LavaConvertError as exc:
        print(f"lava-convert: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lava-convert: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - never a traceback on the command line
        if args.debug:
            raise
        print(f"lava-convert: unexpected error: {type(exc).__name__}: {str(exc)[:300]} "
              "(run with --debug for the traceback, and please report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
