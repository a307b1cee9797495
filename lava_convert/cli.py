"""Command line: ``lava-convert demo | train | convert | inspect | run | sweep | compare | report``.

Each verb is a thin wrapper over a public function (named in its ``--help``).
"""

from __future__ import annotations

import argparse
import logging
import sys

from . import __version__
from .errors import ConfigError, LavaConvertError


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    summary = run_demo(timesteps=args.timesteps, out_dir=args.out, lava_samples=args.limit,
                       json_path=args.json, progress=False if args.quiet else None,
                       echo=None if args.quiet else print)
    return 0 if summary["lava_matches_reference"] else 1


def _train(args: argparse.Namespace) -> int:
    from .models import save_model
    from .train import train_model

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


def _run(args: argparse.Namespace) -> int:
    from .evaluate import evaluate
    from .netx_io import write_json
    from .report import format_table

    _, summary = evaluate(args.net, args.data, backend=args.backend, mode=args.mode,
                          timesteps=args.timesteps, limit=args.limit, data_dir=args.data_dir,
                          progress=False if args.quiet else None, timeout_s=args.timeout)
    if not args.quiet:
        spikes = summary["spikes_per_sample"]
        print(format_table(
            ["backend", "samples", "T", "accuracy %", "seconds"]
            + [f"spikes/sample {k}" for k in spikes],
            [[summary["backend"], summary["samples"], summary["timesteps"],
              100 * summary["accuracy"], summary["wall_time_s"]] + list(spikes.values())]))
        cost = summary["cost"]
        print(f"per sample: {cost['synops']:.0f} synaptic ops vs {cost['ann_macs']} ANN MACs; "
              f"energy estimate {1e6 * cost['snn_energy_j']:.3f} uJ on Loihi vs "
              f"{1e6 * cost['ann_energy_j']:.3f} uJ for the ANN")
    if args.json:
        write_json(args.json, summary)
    return 0


def _convert(args: argparse.Namespace) -> int:
    import json

    import numpy as np

    from .config import ConversionConfig
    from .convert import convert
    from .data import load_dataset
    from .models import model_from
    from .train import accuracy

    config = ConversionConfig()
    if args.config:
        try:
            config = ConversionConfig.from_dict(json.loads(open(args.config).read()))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{args.config}: cannot read the config ({exc}); write a JSON "
                              "object of ConversionConfig fields") from exc
    flags = {k: getattr(args, k) for k in ("timesteps", "balancing", "percentile", "reset",
                                           "shift", "readout", "input_bits",
                                           "bias_calibration")
             if getattr(args, k) is not None}
    config = config.replace(**flags)
    kwargs = json.loads(args.kwargs) if args.kwargs else None
    model = model_from(args.model, args.weights, kwargs)
    data = load_dataset(args.data, args.data_dir)
    rng = np.random.default_rng(0)
    calib = data.x_train[rng.choice(len(data.x_train), min(args.calibration, len(data.x_train)),
                                    replace=False)]
    converted = convert(model, calibration=calib, config=config)
    ann = accuracy(model, data.x_test, data.y_test)
    ref = converted.simulate(data.x_test)
    converted.accuracy.update(ann=ann, snn_reference=ref.accuracy(data.y_test),
                              test_samples=len(data.x_test))
    path = converted.export(args.out)
    if not args.quiet:
        print(f"{args.data}: ANN {100 * ann:.2f} %, SNN (reference, T={config.timesteps}) "
              f"{100 * ref.accuracy(data.y_test):.2f} %; wrote {path} and "
              f"{path.with_suffix('.json').name}")
        for warning in converted.fixed.meta.get("warnings", []):
            print(f"warning: {warning}")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from .evaluate import describe
    from .netx_io import write_json
    from .report import format_table

    info = describe(args.net)
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
    if args.json:
        write_json(args.json, info)
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from .evaluate import sweep
    from .netx_io import write_json
    from .report import format_table

    summary = sweep(args.net, args.data, timesteps=args.timesteps, limit=args.limit,
                    data_dir=args.data_dir)
    if not args.quiet:
        curve = summary["accuracy_per_step"]
        ts = sorted({t for t in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512) if t <= len(curve)}
                    | {len(curve)})
        ann = summary.get("ann_accuracy")
        print(format_table(["T"] + [str(t) for t in ts] + (["ANN"] if ann is not None else []),
                           [["accuracy %"] + [100 * curve[t - 1] for t in ts]
                            + ([100 * ann] if ann is not None else [])]))
    if args.json:
        write_json(args.json, summary)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from .evaluate import compare_backends, load_test_split
    from .netx_io import write_json
    from .report import format_table

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
    if args.json:
        write_json(args.json, result)
    return 0 if result["identical"] else 1


def _report(args: argparse.Namespace) -> int:
    import json

    from .errors import InputError
    from .report import write_report

    try:
        summary = json.loads(open(args.run_json).read())
    except (OSError, ValueError) as exc:
        raise InputError(f"{args.run_json}: cannot read the run JSON ({exc}); write it with "
                         "lava-convert run --json") from exc
    if not isinstance(summary, dict):
        raise InputError(f"{args.run_json}: expected a JSON object from lava-convert run --json")
    path = write_report(summary, args.out, html=args.html)
    if not args.quiet:
        print(f"wrote {path} and its figures")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lava-convert",
        description="Convert PyTorch networks to spiking networks on Intel Lava (NetX HDF5).",
    )
    parser.add_argument("--version", action="version", version=f"lava-convert {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each pipeline step")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo", help="train, convert and run the digits MLP on Lava",
        description="Train a small MLP on scikit-learn's digits, convert it, export "
        "netx_exports/digits_mlp.net, run it on Lava's CPU simulator and compare with the "
        "reference simulator.",
        epilog="examples:\n  lava-convert demo\n  lava-convert demo --timesteps 16 "
        "--json demo.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--timesteps", "-T", type=int, default=32, help="time steps (default 32)")
    demo.add_argument("--out", default="netx_exports", help="export directory")
    demo.add_argument("--limit", type=int, default=None,
                      help="run only the first N test samples on Lava (default: all)")
    demo.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    demo.add_argument("--quiet", "-q", action="store_true", help="print nothing")
    demo.set_defaults(func=_demo)

    train = sub.add_parser(
        "train", help="train a conversion-ready MLP on digits, MNIST or Fashion-MNIST",
        description="Train an MLP (seeded, CPU) and save it with the factory that rebuilds it.",
        epilog="examples:\n  lava-convert train --out digits.pt\n  lava-convert train --data mnist "
        "--activation qcfs --hidden 256,256 --epochs 10 --out mnist_qcfs.pt",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("--data", default="digits", choices=["digits", "mnist", "fashion-mnist"])
    train.add_argument("--data-dir", default=None, help="directory of the IDX files")
    train.add_argument("--activation", default="threshold", choices=["relu", "threshold", "qcfs"])
    train.add_argument("--hidden", default="128,64", help="hidden widths, comma separated")
    train.add_argument("--threshold", type=float, default=1.0, help="clip threshold (initial)")
    train.add_argument("--levels", type=int, default=8, help="QCFS quantization levels")
    train.add_argument("--epochs", type=int, default=60)
    train.add_argument("--lr", type=float, default=3e-3)
    train.add_argument("--batch-size", type=int, default=64)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", required=True, help="where to save the model (.pt)")
    train.add_argument("--quiet", "-q", action="store_true")
    train.set_defaults(func=_train)

    def dataset_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data", default="digits", choices=["digits", "mnist", "fashion-mnist"],
                       help="dataset (default digits, built in)")
        p.add_argument("--data-dir", default=None, help="directory of the IDX files")

    def common(p: argparse.ArgumentParser, json_help: str = "also write the result as JSON"):
        p.add_argument("--json", metavar="PATH", help=json_help)
        p.add_argument("--quiet", "-q", action="store_true", help="print nothing")

    def verb(name: str, help: str, description: str, examples: list[str]):
        return sub.add_parser(name, help=help, description=description,
                              epilog="examples:\n" + "\n".join(f"  {e}" for e in examples),
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    conv = verb("convert", "convert a trained PyTorch model and export NetX",
                "Convert a model (a file from `lava-convert train` / models.save_model, or "
                "'module:factory' with --weights) with lava_convert.convert, export the NetX "
                "file and its sidecar, and print ANN and SNN test accuracy.",
                ["lava-convert convert digits.pt --out netx_exports/my_digits.net",
                 "lava-convert convert mypkg.nets:make_cnn --weights cnn_state.pt --data mnist "
                 "--timesteps 16 --shift v0 --out cnn.net",
                 "lava-convert convert model.pt --config config.json --out net.net"])
    conv.add_argument("model", help="model file (.pt) or module:factory")
    conv.add_argument("--weights", help="state_dict file for a module:factory model")
    conv.add_argument("--kwargs", help="JSON object of factory arguments")
    conv.add_argument("--out", required=True, help="NetX file to write (.net)")
    conv.add_argument("--config", help="JSON file of ConversionConfig fields (flags override)")
    conv.add_argument("--timesteps", "-T", type=int)
    conv.add_argument("--balancing", choices=["auto", "clip", "max", "percentile"])
    conv.add_argument("--percentile", type=float)
    conv.add_argument("--reset", choices=["soft", "hard"])
    conv.add_argument("--shift", choices=["bias", "v0", "none"])
    conv.add_argument("--readout", choices=["potential", "spikes"])
    conv.add_argument("--input-bits", type=int)
    conv.add_argument("--bias-calibration", type=int, metavar="N",
                      help="correct each layer's bias on N calibration samples (0: off)")
    conv.add_argument("--calibration", type=int, default=2000,
                      help="training samples used for calibration (default 2000)")
    dataset_flags(conv)
    conv.add_argument("--quiet", "-q", action="store_true", help="print nothing")
    conv.set_defaults(func=_convert)

    insp = verb("inspect", "show what a NetX file holds",
                "Layers, shapes, thresholds, weight ranges and exponents, synapse and neuron "
                "counts, and how stock netx.hdf5.Network treats the file "
                "(lava_convert.evaluate.describe).",
                ["lava-convert inspect netx_exports/digits_mlp.net",
                 "lava-convert inspect net.net --json info.json"])
    insp.add_argument("net", help="NetX HDF5 file (.net)")
    common(insp)
    insp.set_defaults(func=_inspect)

    run = verb("run", "run a NetX file on a dataset (Lava or the reference simulator)",
               "Run a NetX network on the test split of a dataset and print accuracy, spikes "
               "per layer and cost (lava_convert.evaluate.evaluate). The JSON feeds `report`.",
               ["lava-convert run netx_exports/digits_mlp.net",
                "lava-convert run netx_exports/mnist_cnn_qcfs.net --data mnist --limit 500 "
                "--timesteps 16",
                "lava-convert run net.net --backend reference --json run.json"])
    run.add_argument("net", help="NetX HDF5 file (.net)")
    run.add_argument("--backend", default="lava", choices=["lava", "reference"])
    run.add_argument("--mode", default="fixed", choices=["fixed", "float"],
                     help="reference arithmetic (default fixed: Lava-exact)")
    dataset_flags(run)
    run.add_argument("--timesteps", "-T", type=int, default=None,
                     help="time steps per sample (default: the file's)")
    run.add_argument("--limit", type=int, default=None, help="first N test samples only")
    run.add_argument("--timeout", type=float, default=None, help="stop a Lava run after S s")
    common(run, "also write the summary as JSON (input of `report`)")
    run.set_defaults(func=_run)

    sw = verb("sweep", "accuracy vs T in one simulation",
              "Accuracy after every time step 1..T from one reference simulation "
              "(lava_convert.evaluate.sweep).",
              ["lava-convert sweep netx_exports/digits_mlp.net --timesteps 64",
               "lava-convert sweep netx_exports/mnist_cnn_qcfs.net --data mnist --limit 1000 "
               "--json sweep.json"])
    sw.add_argument("net", help="NetX HDF5 file (.net)")
    dataset_flags(sw)
    sw.add_argument("--timesteps", "-T", type=int, default=128, help="largest T (default 128)")
    sw.add_argument("--limit", type=int, default=None, help="first N test samples only")
    common(sw, "also write the summary as JSON (input of `report`)")
    sw.set_defaults(func=_sweep)

    cmp_ = verb("compare", "Lava vs reference, layer by layer",
                "Run the same samples on Lava and the reference simulator and compare spike "
                "counts per layer (lava_convert.evaluate.compare_backends). Exit status 1 if "
                "they differ.",
                ["lava-convert compare netx_exports/digits_mlp.net --limit 50"])
    cmp_.add_argument("net", help="NetX HDF5 file (.net)")
    dataset_flags(cmp_)
    cmp_.add_argument("--timesteps", "-T", type=int, default=None)
    cmp_.add_argument("--limit", type=int, default=100, help="first N test samples (100)")
    cmp_.add_argument("--timeout", type=float, default=None, help="stop the Lava run after S s")
    common(cmp_)
    cmp_.set_defaults(func=_compare)

    rep = verb("report", "turn a run's JSON into a Markdown/HTML page with plots",
               "Write report.md (or report.html) and PNG figures: accuracy vs T, firing rates, "
               "ANN activation vs SNN rate, a spike raster, quantization error "
               "(lava_convert.report.write_report).",
               ["lava-convert run net.net --backend reference --json run.json && "
                "lava-convert report run.json --out report/",
                "lava-convert report run.json --out report/ --html"])
    rep.add_argument("run_json", help="JSON from `lava-convert run --json` or `sweep --json`")
    rep.add_argument("--out", required=True, help="directory for the page and figures")
    rep.add_argument("--html", action="store_true", help="write HTML instead of Markdown")
    rep.add_argument("--quiet", "-q", action="store_true", help="print nothing")
    rep.set_defaults(func=_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except LavaConvertError as exc:
        print(f"lava-convert: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lava-convert: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
