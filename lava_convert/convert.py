"""The public pipeline: ``convert`` a torch model, ``export`` NetX, ``simulate`` it."""

from __future__ import annotations

import datetime as _dt
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import __version__
from .config import ConversionConfig
from .errors import ConfigError
from .ir import AnnGraph, FixedNetwork, SnnNetwork
from .netx_io import FORMAT_VERSION, read_netx, write_json, write_netx
from .passes import balance, calibrate_biases, check_calibration
from .quantize import on_grid, quantize
from .reference import check_input, dequantize, simulate_fixed, simulate_float
from .results import RunResult
from .trace import trace

log = logging.getLogger(__name__)


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
        ann: The traced ANN (float weights), for reference predictions.
        snn: The float SNN after threshold balancing and the shift.
        fixed: The Loihi fixed-point network (what :meth:`export` writes).
        config: The settings used.
        source_hash: SHA-256 of the source model's weights.
        accuracy: Accuracies measured so far (recorded in the sidecar).
    """

    ann: AnnGraph
    snn: SnnNetwork
    fixed: FixedNetwork
    config: ConversionConfig
    source_hash: str
    accuracy: dict[str, float] = field(default_factory=dict)

    def ann_logits(self, x) -> np.ndarray:
        """The traced ANN's output for samples ``x`` (float64)."""
        return self.ann.forward(check_input(x, self.ann.input_shape, "ann_logits"))[-1]

    def simulate(self, x, timesteps: int | None = None, mode: str = "fixed",
                 device=None) -> RunResult:
        """Reference simulation (``mode="fixed"``: Lava-exact; ``"float"``: unquantized)."""
        return simulate(self, x, timesteps, mode=mode, device=device)

    def sidecar(self) -> dict:
        """The JSON sidecar written next to the NetX file."""
        return {
            "package": "lava-convert",
            "version": __version__,
            "format_version": FORMAT_VERSION,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "config": self.config.to_dict(),
            "source_weights_sha256": self.source_hash,
            "input": {"shape": list(self.fixed.input_shape), "scale": self.fixed.input_scale,
                      "bits": self.fixed.input_bits, "signed": self.fixed.input_signed},
            "layers": self.fixed.meta.get("layers", []),
            "trace_notes": list(self.ann.notes),
            "warnings": list(self.fixed.meta.get("warnings", [])),
            "prediction_mismatch": self.fixed.meta.get("prediction_mismatch"),
            "accuracy": dict(self.accuracy),
        }

    def export(self, path: str | Path) -> Path:
        """Write the NetX HDF5 file and its ``.json`` sidecar (both atomically)."""
        path = Path(path)
        write_netx(self.fixed, path, package_version=__version__)
        self.write_sidecar(path)
        log.info("wrote %s and %s", path, path.with_suffix(".json"))
        return path

    def write_sidecar(self, path: str | Path) -> Path:
        """(Re)write the ``.json`` sidecar of the NetX file ``path``, e.g. with new accuracies."""
        return write_json(Path(path).with_suffix(".json"), self.sidecar())


def convert(model: nn.Module, calibration, timesteps: int | None = None,
            config: ConversionConfig | None = None, **overrides) -> ConvertedNetwork:
    """Convert a trained torch model into a Loihi fixed-point SNN.

    Args:
        model: A feed-forward ``nn.Module`` (see :mod:`lava_convert.trace`).
        calibration: Representative input samples ``(batch, *input_shape)``;
            they set thresholds (unless clips do) and fixed-point scales.
        timesteps: Time steps per sample the network is tuned for
            (overrides ``config.timesteps``).
        config: Conversion settings; keyword ``overrides`` replace fields of it.
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
    snn = balance(graph, x, config)
    if not config.bias_calibration:
        fixed = quantize(snn, x, config)
    else:
        # calibrate in float, quantize, then calibrate again with the quantized weights
        # and thresholds so the biases also absorb the systematic rounding error
        picks = np.linspace(0, len(x) - 1, min(config.bias_calibration, len(x))).astype(int)
        snn = calibrate_biases(graph, snn, x[picks])
        first = quantize(snn, x, config, check=False)
        grid = calibrate_biases(graph, on_grid(snn, first), x[picks])
        fixed = quantize(grid, x, config, reference=snn, scales=[
            (d["scale"], d["scale_limited_by"]) for d in first.meta["layers"]])
    return ConvertedNetwork(ann=graph, snn=snn, fixed=fixed, config=config,
                            source_hash=weights_hash(model))


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
    T = timesteps if timesteps is not None else (fixed or snn).timesteps
    if mode == "fixed":
        if fixed is None:
            raise ConfigError("mode='fixed' needs a quantized network (.net file or lc.convert)")
        return simulate_fixed(fixed, x, T, device=device)
    return simulate_float(snn if snn is not None else dequantize(fixed), x, T, device=device)
