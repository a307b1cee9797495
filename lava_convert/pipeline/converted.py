"""What a conversion returns: :class:`ConvertedNetwork` (every stage's network, export
to NetX and NIR, the sidecar), the source-weights hash, reading a sidecar back, and
:func:`simulate`, the reference simulation of a converted network, file or IR."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..config import ConversionConfig
from ..errors import ConfigError, ExportError
from ..files import json_bytes, sha256_bytes, sha256_file, write_json, write_together
from ..ir import AnnGraph, FixedNetwork, SnnNetwork
from ..netx.format import format_version, meta_dict
from ..netx.reader import read_netx
from ..netx.writer import netx_bytes
from ..nir.writer import plain_reading, write_nir
from ..passes.auto_balancing import BalancingChoice
from ..passes.readout_calibration import ReadoutFit
from ..sim.ann import logits
from ..sim.inputs import check_input, resolve_timesteps
from ..sim.reference import dequantize, simulate_fixed, simulate_float
from ..sim.results import RunResult
from ..version import __version__

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
        ann: The traced ANN (float weights), for reference predictions; ``None`` for a
            network read from NIR (:func:`from_nir`).
        snn: The float SNN after threshold balancing and the shift (``None`` for
            ``target="sdnn"``, which goes from the ANN to integers directly).
        fixed: The Loihi fixed-point network (what :meth:`export` writes), with the
            fixed-point check's result in ``fixed.check``.
        config: The settings used (with ``balancing="auto"``: those it
            chose).
        source_hash: SHA-256 of the source model's weights.
        passes: Names of the passes applied, in order.
        accuracy: Accuracies measured so far (recorded in the sidecar).
        balancing_choice: What ``balancing="auto"`` measured and chose, when it chose.
        readout_fit: What readout calibration measured, when it ran.
    """

    ann: AnnGraph | None
    snn: SnnNetwork | None
    fixed: FixedNetwork
    config: ConversionConfig
    source_hash: str
    passes: tuple[str, ...] = ()
    accuracy: dict[str, float] = field(default_factory=dict)
    balancing_choice: BalancingChoice | None = None
    readout_fit: ReadoutFit | None = None

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
            "check_samples": recorded["check_samples"],
            "accuracy": dict(self.accuracy),
            **({"auto_balancing": self.balancing_choice.to_dict()}
               if self.balancing_choice is not None else {}),
            **({"readout_calibration": {**asdict(self.readout_fit),
                                         "kept": self.readout_fit.kept}}
               if self.readout_fit is not None else {}),
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
        data = netx_bytes(self.fixed, package_version=__version__)
        side = json_bytes({**self.sidecar(), "netx_file": path.name,
                           "netx_sha256": sha256_bytes(data)})
        write_together({path: data, sidecar_path(path): side})  # the pair, or neither
        log.info("wrote %s and %s", path, sidecar_path(path))
        return path

    def export_nir(self, path: str | Path, encoding: str = "if",
                   samples: np.ndarray | None = None) -> Path:
        """Write the float SNN as a NIR file (:mod:`lava_convert.nir.writer`: ``"if"``,
        plain IF nodes with the soft reset and ``v0`` in metadata, or ``"exact"``, the
        soft reset as integrator, threshold and feedback, ``v0`` in the threshold).

        Warns, naming the layers, where a reader that ignores lava-convert's metadata
        runs another network (:func:`~lava_convert.nir.writer.plain_reading`: hard reset,
        ``v0 = 0``); with ``samples``, the warning says how often that network's
        predictions agree with this one's on them."""
        if self.snn is None:
            raise ConfigError("export_nir: a sigma-delta network (target='sdnn') has no NIR "
                              "form here: NIR has no sigma-delta neuron; export it as NetX")
        plain, lost = plain_reading(self.snn, encoding)
        if lost:
            message = (f"{path}: a NIR reader that ignores the lava_convert.* metadata runs "
                       f"{'; '.join(lost)}")
            if samples is not None:
                T = self.snn.timesteps
                agree = np.mean(simulate_float(plain, samples, T).predictions ==
                                simulate_float(self.snn, samples, T).predictions)
                message += (f": it agrees with this network's predictions on "
                            f"{100 * agree:.1f} % of {len(samples)} samples")
            if len(plain_reading(self.snn, "exact")[1]) < len(lost):
                message += ". encoding='exact' writes soft reset and v0 in plain NIR"
            log.warning("%s", message)
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
                              f"export another name (two exports cannot share a sidecar), or, "
                              f"if {side.name} was copied along with {owner}, remove it")


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
