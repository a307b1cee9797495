"""The conversion pipeline, declared in one place: trace, then the passes in
:data:`PASSES` order, each a named function with a log line and an entry in the
sidecar's ``passes``; then ``export`` (NetX) and ``simulate`` (reference).

    torch model --trace--> AnnGraph --balance--> SnnNetwork --quantize--> FixedNetwork
                      [auto_balancing]  [potential_calibration]  [bias_calibration_on_grid]
                                        [bias_calibration]
                                                                --check--> FixedNetwork.check
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .config import ConversionConfig
from .errors import ConfigError, ExportError
from .files import sha256_file, write_json
from .frontend.torch_fx import trace
from .ir import AnnGraph, FixedNetwork, SnnNetwork
from .netx.format import format_version, meta_dict
from .netx.reader import read_netx
from .netx.writer import write_netx
from .nir.reader import graph_to_snn, load_graph
from .nir.writer import write_nir
from .passes.auto_balancing import BalancingChoice, choose_balancing, needs_choice
from .passes.balance import balance
from .passes.bias_calibration import calibrate_biases
from .passes.calibration_data import check_calibration
from .passes.potential_calibration import calibrate_potentials
from .passes.target import check_target
from .quantize.check import check_fixed_point
from .quantize.scale import on_grid, quantize
from .sim.ann import logits
from .sim.inputs import check_input, resolve_timesteps
from .sim.reference import dequantize, simulate_fixed, simulate_float
from .sim.results import RunResult
from .version import __version__

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stage:
    """What the passes hand on: the traced graph, the calibration samples, the settings,
    and the networks made so far (``snn``: float; ``fixed``: Loihi integers)."""

    graph: AnnGraph | None
    x: np.ndarray
    config: ConversionConfig
    snn: SnnNetwork | None = None
    fixed: FixedNetwork | None = None
    progress: bool = False
    balancing_choice: BalancingChoice | None = None

    def calibration_samples(self, n: int | None = None) -> np.ndarray:
        """``n`` (default ``config.bias_calibration``) samples spread evenly over the
        calibration data."""
        n = min(self.config.bias_calibration if n is None else n, len(self.x))
        return self.x[np.linspace(0, len(self.x) - 1, n).astype(int)]


def _target(stage: Stage) -> Stage:
    """Refuse what ``config.target`` cannot express (stock NetX: residual shortcuts;
    :func:`~lava_convert.passes.target.check_target`)."""
    check_target(stage.graph, stage.config)
    return stage


def _auto_balancing(stage: Stage) -> Stage:
    """For ``balancing="auto"`` on a network of plain ReLUs: convert with each candidate
    rule, measure agreement with the ANN at T, keep the best (its settings replace the
    config's; :func:`~lava_convert.passes.auto_balancing.choose_balancing`)."""
    config, choice = choose_balancing(stage.graph, stage.x, stage.config)
    return dataclasses.replace(stage, config=config, balancing_choice=choice)


def _balance(stage: Stage) -> Stage:
    """Thresholds per layer, soft/hard reset, the shift and the readout: ANN -> float SNN
    (:func:`~lava_convert.passes.balance.balance`; refuses calibration data that does
    not fit and layers that never activate)."""
    return dataclasses.replace(stage, snn=balance(stage.graph, stage.x, stage.config))


def _potential_calibration(stage: Stage) -> Stage:
    """Choose each spiking layer's initial potential against the ANN, in float
    (:func:`~lava_convert.passes.potential_calibration.calibrate_potentials`); keep the
    result only if its predictions agree with the ANN's on the calibration samples at
    least as often as before (the per-layer error it minimises is not the readout's)."""
    samples = stage.calibration_samples(stage.config.potential_calibration)
    snn = calibrate_potentials(stage.graph, stage.snn, samples, stage.progress)
    before, after = (_agreement(stage.graph, samples, simulate_float(net, samples, T))
                     for T in [stage.config.timesteps] for net in (stage.snn, snn))
    log.info("potential calibration: agreement with the ANN %.4f -> %.4f (%s)", before, after,
             "kept" if after >= before else "dropped")
    return dataclasses.replace(stage, snn=snn) if after >= before else stage


def _agreement(graph: AnnGraph, samples: np.ndarray, run: RunResult) -> float:
    """How often ``run``'s predictions agree with the ANN's on ``samples``."""
    return float(np.mean(run.predictions == np.argmax(logits(graph, samples), axis=1)))


def _bias_calibration(stage: Stage) -> Stage:
    """Correct each spiking layer's bias for its mean conversion error, in float
    (:func:`~lava_convert.passes.bias_calibration.calibrate_biases`)."""
    snn = calibrate_biases(stage.graph, stage.snn, stage.calibration_samples(), stage.progress)
    return dataclasses.replace(stage, snn=snn)


def _quantize(stage: Stage) -> Stage:
    """Scale weights, biases and thresholds into Loihi's integer ranges
    (:func:`~lava_convert.quantize.scale.quantize`; refuses layers whose weights vanish
    or whose threshold does not fit 17 bits)."""
    return dataclasses.replace(stage, fixed=quantize(stage.snn, stage.x, stage.config))


def _bias_calibration_on_grid(stage: Stage) -> Stage:
    """Calibrate the biases again with the quantized weights and thresholds
    (:func:`~lava_convert.quantize.scale.on_grid`), so they also absorb the rounding of
    the weights, and requantize with the same scales; keep the result only if its
    fixed-point predictions agree with the ANN's on the calibration samples at least as
    often as before (at T=4 the second pass cost the MNIST CNN 1.1 points)."""
    samples = stage.calibration_samples()
    grid = calibrate_biases(stage.graph, on_grid(stage.snn, stage.fixed), samples,
                            stage.progress)
    scales = [(q.scale, q.scale_limited_by) for q in stage.fixed.quantization]
    candidate = quantize(grid, stage.x, stage.config, scales)
    before, after = (_agreement(stage.graph, samples, simulate_fixed(net, samples, T))
                     for T in [stage.config.timesteps] for net in (stage.fixed, candidate))
    log.info("bias calibration on the grid: agreement with the ANN %.4f -> %.4f (%s)",
             before, after, "kept" if after >= before else "dropped")
    return dataclasses.replace(stage, fixed=candidate) if after >= before else stage


def _check(stage: Stage) -> Stage:
    """Compare fixed and float point on calibration samples and attach the result
    (:func:`~lava_convert.quantize.check.check_fixed_point`; warns, never refuses)."""
    result = check_fixed_point(stage.fixed, stage.snn, stage.x, stage.config.rate_tolerance)
    return dataclasses.replace(stage, fixed=dataclasses.replace(stage.fixed, check=result))


@dataclass(frozen=True)
class Pass:
    """A named pass of the pipeline and the settings under which it runs."""

    name: str
    run: Callable[[Stage], Stage]
    applies: Callable[[Stage], bool] = lambda stage: True


#: The passes after reading a NIR graph (already spiking: nothing to balance or calibrate).
IMPORT_PASSES: tuple[Pass, ...] = (Pass("quantize", _quantize), Pass("check", _check))

#: The passes after tracing, in the order they run; whether one applies is decided when
#: its turn comes (a pass may change the config the later ones read).
PASSES: tuple[Pass, ...] = (
    Pass("target", _target, lambda s: s.config.target != "lava-convert"),
    Pass("auto_balancing", _auto_balancing, lambda s: needs_choice(s.graph, s.config)),
    Pass("balance", _balance),
    Pass("potential_calibration", _potential_calibration,
         lambda s: s.config.potential_calibration > 0),
    Pass("bias_calibration", _bias_calibration, lambda s: s.config.bias_calibration > 0),
    Pass("quantize", _quantize),
    Pass("bias_calibration_on_grid", _bias_calibration_on_grid,
         lambda s: s.config.bias_calibration > 0),
    Pass("check", _check),
)


def run_passes(stage: Stage, passes: tuple[Pass, ...] = PASSES,
               progress: bool | None = None) -> tuple[Stage, tuple[str, ...]]:
    """Run, in order, the passes that apply when their turn comes; return the result and
    the names of those that ran. ``progress`` shows a bar over the passes (default: when
    stderr is a terminal)."""
    show = sys.stderr.isatty() if progress is None else progress
    stage = dataclasses.replace(stage, progress=show)
    ran = []
    with tqdm(total=len(passes), desc="converting", unit="pass", disable=not show,
              leave=False) as bar:
        for p in passes:
            if p.applies(stage):
                bar.set_postfix_str(p.name)
                log.info("pass %s", p.name)
                stage = p.run(stage)
                ran.append(p.name)
            bar.update()
    return stage, tuple(ran)


def weights_hash(model: nn.Module) -> str:
    """SHA-256 over the model's state_dict (names, dtypes, shapes and values)."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()


@dataclass
class ConvertedNetwork:
    """A converted network at every stage of the pipeline.

    Attributes:
        ann: The traced ANN (float weights), for reference predictions; ``None`` for a
            network read from NIR (:func:`from_nir`).
        snn: The float SNN after threshold balancing and the shift.
        fixed: The Loihi fixed-point network (what :meth:`export` writes), with the
            fixed-point check's result in ``fixed.check``.
        config: The settings used (with ``balancing="auto"`` on plain ReLUs: those it
            chose).
        source_hash: SHA-256 of the source model's weights.
        passes: Names of the passes applied, in order.
        accuracy: Accuracies measured so far (recorded in the sidecar).
        balancing_choice: What ``balancing="auto"`` measured and chose, when it chose.
    """

    ann: AnnGraph | None
    snn: SnnNetwork
    fixed: FixedNetwork
    config: ConversionConfig
    source_hash: str
    passes: tuple[str, ...] = ()
    accuracy: dict[str, float] = field(default_factory=dict)
    balancing_choice: BalancingChoice | None = None

    @property
    def warnings(self) -> tuple[str, ...]:
        """Quantization's and the fixed-point check's warnings (the sidecar's list)."""
        quantization = tuple(w for q in self.fixed.quantization for w in q.warnings)
        return quantization + (self.fixed.check.warnings if self.fixed.check is not None
                               else ())

    def ann_logits(self, x) -> np.ndarray:
        """The traced ANN's output for samples ``x`` (float64)."""
        if self.ann is None:
            raise ConfigError("this network was read from NIR and has no ANN; compare with "
                              "simulate(x, mode='float') instead")
        return logits(self.ann, check_input(x, self.ann.input_shape, "ann_logits"))

    def simulate(self, x, timesteps: int | None = None, mode: str = "fixed",
                 device=None) -> RunResult:
        """Reference simulation (``mode="fixed"``: Lava-exact; ``"float"``: unquantized)."""
        return simulate(self, x, timesteps, mode=mode, device=device)

    def sidecar(self) -> dict:
        """The JSON sidecar written next to the NetX file."""
        recorded = meta_dict(self.fixed)
        return {
            "package": "lava-convert",
            "version": __version__,
            "format_version": format_version(self.fixed),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "config": self.config.to_dict(),
            "source_weights_sha256": self.source_hash,
            "input": {"shape": list(self.fixed.input_shape), "scale": self.fixed.input_scale,
                      "bits": self.fixed.input_bits, "signed": self.fixed.input_signed},
            "passes": list(self.passes),
            "layers": recorded["layers"],
            "trace_notes": list(self.ann.notes) if self.ann is not None else [],
            "warnings": recorded["warnings"],
            "prediction_mismatch": recorded["prediction_mismatch"],
            "accuracy": dict(self.accuracy),
            **({"auto_balancing": self.balancing_choice.to_dict()}
               if self.balancing_choice is not None else {}),
        }

    def export(self, path: str | Path) -> Path:
        """Write the NetX HDF5 file and its ``.json`` sidecar (both atomically).

        Raises:
            ExportError: the path cannot be written, would make the sidecar the file
                itself (``net.json``), or its sidecar belongs to another file (``a.net``
                and ``a.h5`` would share ``a.json``).
        """
        path = Path(path)
        _check_sidecar_path(path)
        write_netx(self.fixed, path, package_version=__version__)
        self.write_sidecar(path)
        log.info("wrote %s and %s", path, sidecar_path(path))
        return path

    def export_nir(self, path: str | Path, encoding: str = "if") -> Path:
        """Write the float SNN as a NIR file (:mod:`lava_convert.nir.writer`: ``"if"``,
        plain IF nodes with the soft reset in metadata, or ``"exact"``, the soft reset as
        integrator, threshold and feedback). Warns for ``"if"`` with soft-reset layers:
        most importers will run them with hard reset."""
        if encoding == "if" and any(l.spiking and l.reset == "soft" for l in self.snn.layers):
            log.warning("%s: NIR's IF resets to v_reset; importers other than lava-convert "
                        "will run these soft-reset layers with hard reset (the soft reset is "
                        "only in the metadata). encoding='exact' writes it in plain NIR",
                        path)
        return write_nir(self.snn, path, encoding)

    def write_sidecar(self, path: str | Path) -> Path:
        """(Re)write the ``.json`` sidecar of the NetX file ``path``, e.g. with new accuracies;
        it records the file's name and SHA-256, which :func:`read_sidecar` checks."""
        path = Path(path)
        _check_sidecar_path(path)
        data = {**self.sidecar(), "netx_file": path.name, "netx_sha256": sha256_file(path)}
        return write_json(sidecar_path(path), data)


def sidecar_path(path: str | Path) -> Path:
    """Where the sidecar of NetX file ``path`` lives: beside it, suffix ``.json``."""
    return Path(path).with_suffix(".json")


def _check_sidecar_path(path: Path) -> None:
    side = sidecar_path(path)
    if side == path:
        raise ExportError(f"{path}: the sidecar would overwrite the NetX file itself; name the "
                          "file with another suffix, e.g. .net")
    if side.is_file():
        try:
            owner = json.loads(side.read_text()).get("netx_file")
        except (OSError, ValueError, AttributeError, RecursionError):
            owner = None
        if owner is not None and owner != path.name:
            raise ExportError(f"{path}: its sidecar {side.name} belongs to {owner}; give this "
                              "export another name (two exports cannot share a sidecar)")


def read_sidecar(path: str | Path) -> dict | None:
    """The sidecar of NetX file ``path``, or ``None`` (with a warning) when it is missing,
    unreadable, or records another file's SHA-256 (the pair was torn apart, e.g. by an
    interrupted export): never numbers that belong to another network."""
    side = sidecar_path(path)
    try:
        data = json.loads(side.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError, RecursionError) as exc:
        log.warning("%s: unreadable sidecar (%s); ignored", side, exc)
        return None
    if not isinstance(data, dict):
        log.warning("%s: not a sidecar object; ignored", side)
        return None
    recorded = data.get("netx_sha256")
    if recorded is not None and recorded != sha256_file(path):
        log.warning("%s records another version of %s (SHA-256 differs, e.g. after an "
                    "interrupted export); its numbers are ignored: re-export", side,
                    Path(path).name)
        return None
    return data


def convert(model: nn.Module, calibration, timesteps: int | None = None,
            config: ConversionConfig | None = None, *, progress: bool | None = None,
            **overrides) -> ConvertedNetwork:
    """Convert a trained torch model into a Loihi fixed-point SNN.

    Args:
        model: A feed-forward ``nn.Module`` (see :mod:`lava_convert.frontend.torch_fx`).
        calibration: Representative input samples ``(batch, *input_shape)``;
            they set thresholds (unless clips do) and fixed-point scales.
        timesteps: Time steps per sample the network is tuned for
            (overrides ``config.timesteps``).
        config: Conversion settings; keyword ``overrides`` replace fields of it.
        progress: Show a bar over the passes (default: when stderr is a terminal).
    """
    config = config or ConversionConfig()
    if timesteps is not None:
        overrides["timesteps"] = timesteps
    if overrides:
        config = config.replace(**overrides)
    if not isinstance(model, nn.Module):
        raise ConfigError(f"convert() needs a torch.nn.Module, got {type(model).__name__}")
    x = check_calibration(calibration)
    was_training = model.training
    model.eval()
    try:
        graph = trace(model, tuple(x.shape[1:]))
    finally:
        model.train(was_training)
    stage, applied = run_passes(Stage(graph=graph, x=x, config=config), progress=progress)
    return ConvertedNetwork(ann=graph, snn=stage.snn, fixed=stage.fixed, config=stage.config,
                            source_hash=weights_hash(model), passes=applied,
                            balancing_choice=stage.balancing_choice)


def from_nir(graph, calibration, *, timesteps: int | None = None, dt: float | None = None,
             reset: str | None = None, config: ConversionConfig | None = None,
             max_bytes: int | None = None, progress: bool | None = None) -> ConvertedNetwork:
    """Read a spiking network from NIR and quantize it for Lava.

    Args:
        graph: A ``nir.NIRGraph`` or the path of a NIR file.
        calibration: Representative input samples; they set the input range and the
            first layer's fixed-point scale.
        timesteps: Time steps per sample (default: the graph's, if it says).
        dt, reset: How to read the graph's neurons (see
            :func:`lava_convert.nir.reader.graph_to_snn`): required where the graph
            does not say.
        config: Quantization settings (``input_bits``, ``headroom``, ``rate_tolerance``).
        max_bytes: Largest data a NIR file may declare (as for :func:`read_netx`).

    The result exports to NetX, simulates and runs on Lava like a converted network;
    its ``ann`` is ``None``.
    """
    x = check_calibration(calibration)
    source = load_graph(graph, max_bytes)
    lo, hi = float(x.min()), float(x.max())
    snn = graph_to_snn(source, dt=dt, reset=reset, timesteps=timesteps,
                       input_range=(min(lo, 0.0), max(hi, 0.0)))
    config = (config or ConversionConfig()).replace(timesteps=snn.timesteps)
    if x.shape[1:] != snn.input_shape and int(np.prod(x.shape[1:])) == \
            int(np.prod(snn.input_shape)):
        x = x.reshape(len(x), *snn.input_shape)
    stage, applied = run_passes(Stage(graph=None, x=x, config=config, snn=snn),
                                IMPORT_PASSES, progress=progress)
    digest = hashlib.sha256()
    for layer in snn.layers:
        digest.update(np.ascontiguousarray(layer.synapse.weight, dtype=np.float64).tobytes())
    return ConvertedNetwork(ann=None, snn=snn, fixed=stage.fixed, config=config,
                            source_hash=digest.hexdigest(), passes=("nir_import", *applied))


def simulate(net, x, timesteps: int | None = None, *, mode: str = "fixed",
             device=None) -> RunResult:
    """Reference simulation of a network on samples ``x``.

    Args:
        net: A ``.net`` path, :class:`ConvertedNetwork`, FixedNetwork or SnnNetwork.
        x: Samples ``(batch, *input_shape)``.
        timesteps: Time steps per sample (default: the network's).
        mode: ``"fixed"`` reproduces Lava's fixed-point run exactly; ``"float"``
            runs real-valued arithmetic (the unquantized SNN where available).
        device: torch device; default CUDA when available, else CPU.
    """
    if mode not in ("fixed", "float"):
        raise ConfigError(f"mode={mode!r} is invalid: use 'fixed' or 'float'")
    if isinstance(net, (str, Path)):
        net = read_netx(net)
    if isinstance(net, ConvertedNetwork):
        fixed, snn = net.fixed, net.snn
    elif isinstance(net, FixedNetwork):
        fixed, snn = net, None
    elif isinstance(net, SnnNetwork):
        fixed, snn = None, net
    else:
        raise ConfigError(f"cannot simulate a {type(net).__name__}: pass a .net path or a "
                          "network from lc.convert")
    T = resolve_timesteps(timesteps, fixed or snn)
    if mode == "fixed":
        if fixed is None:
            raise ConfigError("mode='fixed' needs a quantized network (.net file or lc.convert)")
        return simulate_fixed(fixed, x, T, device=device)
    return simulate_float(snn if snn is not None else dequantize(fixed), x, T, device=device)
