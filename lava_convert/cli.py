"""Command line: ``lava-convert demo | train | run``."""

from __future__ import annotations

import argparse
import logging
import sys

from . import __version__
from .errors import LavaConvertError


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
                              data_dir=args.data_dir)
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
                          progress=False if args.quiet else None)
    if not args.quiet:
        spikes = summary["spikes_per_sample"]
        print(format_table(
            ["backend", "samples", "T", "accuracy %", "seconds"]
            + [f"spikes/sample {k}" for k in spikes],
            [[summary["backend"], summary["samples"], summary["timesteps"],
              100 * summary["accuracy"], summary["wall_time_s"]] + list(spikes.values())]))
    if args.json:
        write_json(args.json, summary)
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

    run = sub.add_parser(
        "run", help="run a NetX file on a dataset (Lava or the reference simulator)",
        description="Run a NetX network on the test split of a dataset and print accuracy and "
        "spikes per layer.",
        epilog="examples:\n  lava-convert run netx_exports/digits_mlp.net\n  lava-convert run "
        "netx_exports/mnist_cnn_qcfs.net --data mnist --limit 500 --timesteps 16\n"
        "  lava-convert run net.net --backend reference --json out.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("net", help="NetX HDF5 file (.net)")
    run.add_argument("--backend", default="lava", choices=["lava", "reference"])
    run.add_argument("--mode", default="fixed", choices=["fixed", "float"],
                     help="reference arithmetic (default fixed: Lava-exact)")
    run.add_argument("--data", default="digits", choices=["digits", "mnist", "fashion-mnist"])
    run.add_argument("--data-dir", default=None, help="directory of the IDX files")
    run.add_argument("--timesteps", "-T", type=int, default=None,
                     help="time steps per sample (default: the file's)")
    run.add_argument("--limit", type=int, default=None, help="first N test samples only")
    run.add_argument("--json", metavar="PATH", help="also write the summary as JSON")
    run.add_argument("--quiet", "-q", action="store_true")
    run.set_defaults(func=_run)
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
