"""Command line: ``lava-convert demo | train | convert | inspect | run | sweep | compare | report``.

Each verb is a pair: a function that declares its arguments, next to the handler that
makes one call into :mod:`lava_convert.workflows` (or the function it names) and prints;
the verbs that make a network are in :mod:`.model_verbs`, those that use a NetX file in
:mod:`.file_verbs`, what they share in :mod:`.common`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from ..errors import LavaConvertError
from ..interrupts import release_console_script, sigint_deferred
from ..version import __version__
from .file_verbs import (
    _compare,
    _compare_args,
    _inspect,
    _inspect_args,
    _report,
    _report_args,
    _run,
    _run_args,
    _sweep,
    _sweep_args,
)
from .model_verbs import (
    _convert,
    _convert_args,
    _demo,
    _demo_args,
    _from_nir,
    _from_nir_args,
    _train,
    _train_args,
)

#: What the verbs import (torch among it), loaded up front with Ctrl-C held back.
_HEAVY_MODULES = ("..workflows", "..report.inspect", "..report.pages", "..zoo.train")

# The handlers import the package's heavy parts (torch, Lava) themselves, inside main()'s
# error handling, so that Ctrl-C while they load is a one-line "interrupted".


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
                 "lava-convert convert digits.pt --target stock-netx --out digits_stock.net",
                 "lava-convert convert digits.pt --out digits.net --nir digits.nir "
                 "--nir-encoding exact"]),
    "from-nir": (_from_nir_args, _from_nir, "read a NIR file (snnTorch, Norse, ...) and export "
                 "NetX",
                 "Read a NIR graph, quantize it for Lava with calibration samples of a dataset, "
                 "print its float and Lava-exact accuracy on the test split and export the NetX "
                 "file and its sidecar (lava_convert.workflows.import_nir_and_export).",
                 ["lava-convert from-nir snntorch_net.nir --dt 1e-4 --reset soft -T 8 "
                  "--data mnist --out from_snntorch.net",
                  "lava-convert from-nir digits.nir --out digits_again.net"]),
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
             "lava-convert run netx_exports/mnist_cnn_qcfs.net --data mnist --limit 200 "
             "--workers 2",
             "lava-convert run netx_exports/mnist_cnn_qcfs.net --data mnist --scheduler local:2",
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
                ["lava-convert compare netx_exports/digits_mlp.net --limit 50",
                 "lava-convert compare netx_exports/digits_mlp.net --limit 500 --workers auto",
                 "lava-convert compare net.net --scheduler tcp://scheduler:8786"]),
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
    release_console_script()  # from here a Ctrl-C is a KeyboardInterrupt, handled below
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

