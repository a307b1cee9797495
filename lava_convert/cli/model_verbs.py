"""Verbs that make a network: demo, train (and fine-tune without MaxPool), convert,
from-nir. Each verb: a function declaring its arguments next to its handler."""

from __future__ import annotations

import argparse
import json

from ..config import POTENTIAL_SCOPES, TARGETS, ConversionConfig
from ..errors import ConfigError
from ..targets import target_rules
from .common import DATA_HELP, dataset_flags, output_flags, read_json

# --- demo -------------------------------------------------------------------------------

def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--timesteps", "-T", type=int, default=32, help="time steps (default 32)")
    p.add_argument("--out", default="out/demo", help="export directory (default out/demo)")
    p.add_argument("--limit", type=int, default=None,
                   help="run only the first N test samples on Lava (default: all)")
    output_flags(p, "also write the results as JSON")


def _demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo

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
    from ..zoo.models import save_model
    from ..zoo.train import train_model

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

    from ..files import atomic_write
    from ..zoo.data import load_dataset
    from ..zoo.models import model_from
    from ..zoo.train import finetune_without_maxpool

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
                 "input_bits", "bias_calibration", "potential_calibration", "potential_scope",
                 "readout_calibration", "target",
                 "channel_thresholds")


def _input_bits(text: str) -> int | str:
    """``--input-bits``: ``auto`` or a whole number (the config checks its range)."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither 'auto' nor a whole number") from None


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
    p.add_argument("--input-bits", type=_input_bits, metavar="{auto,2..24}",
                   help="graded input width (default auto: chosen on calibration data)")
    p.add_argument("--channel-thresholds", action="store_const", const=True, default=None,
                   help="data-driven thresholds per output channel (conv) or neuron (dense)")
    p.add_argument("--bias-calibration", type=int, metavar="N",
                   help="correct each layer's bias on N calibration samples (0: off)")
    p.add_argument("--potential-calibration", type=int, metavar="N",
                   help="choose each layer's initial potential on N calibration samples "
                   "(0: off)")
    p.add_argument("--potential-scope", choices=list(POTENTIAL_SCOPES),
                   help="one calibrated initial potential per layer (default) or per "
                   "channel (per neuron of a dense layer)")
    p.add_argument("--readout-calibration", type=int, metavar="N",
                   help="refit the readout's weights to the ANN's logits on N calibration "
                   "samples (0: off; potential readout only)")
    p.add_argument("--target", choices=list(TARGETS),
                   help="lava-convert (default; run with lava_convert.netx.Network) or "
                   "stock-netx (a file unmodified lava-dl NetX runs exactly: hard reset and "
                   "spiking readout unless --reset/--readout say otherwise)")
    p.add_argument("--calibration", type=int, default=2000,
                   help="training samples used for calibration (default 2000)")
    p.add_argument("--nir", metavar="PATH", help="also write the network as a NIR file")
    p.add_argument("--nir-encoding", choices=["if", "exact"], default="if",
                   help="if: IF nodes, soft reset in metadata (default); exact: soft reset "
                   "as integrator, threshold and feedback in plain NIR")
    dataset_flags(p)
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing")


#: Calibration samples on which ``--nir`` measures what a plain-NIR reader gets.
NIR_CHECK_SAMPLES = 256


def _convert(args: argparse.Namespace) -> int:
    from ..workflows import convert_and_export
    from ..zoo.data import load_dataset
    from ..zoo.models import model_from

    config = ConversionConfig()
    if args.config:
        data = read_json(args.config, "the config", ConfigError)
        if not isinstance(data, dict):
            raise ConfigError(f"{args.config}: the config must be a JSON object of "
                              f"ConversionConfig fields, not {type(data).__name__}")
        config = ConversionConfig.from_dict(data)
    flags = {k: getattr(args, k) for k in _CONFIG_FLAGS if getattr(args, k) is not None}
    # what the target needs, unless given
    flags = {**target_rules(flags.get("target", config.target)).settings, **flags}
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
        if converted.balancing_choice is not None:
            print(converted.balancing_choice.describe())
        if converted.readout_fit is not None:
            print(converted.readout_fit.describe())
        if config.input_bits == "auto":
            why = ("the width whose readout comes closest to the ANN's" if
                   converted.fixed.neuron_model == "sdnn" else
                   "the width whose first layer keeps closest to the real-valued current")
            print(f"input_bits='auto': {converted.fixed.input_bits}-bit graded input ({why})")
        for warning in converted.warnings:
            print(f"warning: {warning}")
    if args.nir:
        nir_path = converted.export_nir(args.nir, args.nir_encoding,
                                        samples=data.calibration_sample(NIR_CHECK_SAMPLES))
        if not args.quiet:
            print(f"wrote {nir_path} (NIR, {args.nir_encoding} encoding)")
    return 0


# --- from-nir ---------------------------------------------------------------------------

def _from_nir_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("nir_file", help="NIR file (.nir) from snnTorch, Norse, lava-convert, ...")
    p.add_argument("--out", required=True, help="NetX file to write (.net)")
    p.add_argument("--dt", type=float, default=None,
                   help="the time step the graph's time constants assume (snnTorch: 1e-4, "
                   "Norse: 1e-3); files from lava-convert say it themselves")
    p.add_argument("--reset", choices=["soft", "hard"], default=None,
                   help="the spiking nodes' reset, where the file does not say (snnTorch's "
                   "Leaky: soft)")
    p.add_argument("--timesteps", "-T", type=int, default=None,
                   help="time steps per sample (required unless the file says)")
    p.add_argument("--cuba-bias", choices=["refuse", "voltage"], default="refuse",
                   help="a bias into a CubaLIF's synaptic current: refuse the file "
                   "(default), or add it to the voltage from the first step")
    p.add_argument("--calibration", type=int, default=2000,
                   help="training samples that set the input range and scales (default 2000)")
    dataset_flags(p)
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing")


def _from_nir(args: argparse.Namespace) -> int:
    from ..workflows import import_nir_and_export
    from ..zoo.data import load_dataset

    data = load_dataset(args.data, args.data_dir)
    imported, path = import_nir_and_export(
        args.nir_file, data, args.out, dt=args.dt, reset=args.reset, timesteps=args.timesteps,
        calibration=args.calibration, progress=False if args.quiet else None,
        cuba_bias=args.cuba_bias)
    if not args.quiet:
        acc = imported.accuracy
        print(f"{args.data}: imported network {100 * acc['snn_float']:.2f} % (float), "
              f"{100 * acc['snn_reference']:.2f} % (Lava-exact, T={imported.config.timesteps})"
              f"; wrote {path} and {path.with_suffix('.json').name}")
        for warning in imported.warnings:
            print(f"warning: {warning}")
    return 0
