"""The conversion pipeline: trace, then the passes in the order of
:data:`~lava_convert.pipeline.order.PASSES` (:mod:`.order`), giving a
:class:`~lava_convert.pipeline.converted.ConvertedNetwork` (:mod:`.converted`) that
exports (NetX, NIR) and simulates (reference).

    torch model --trace--> AnnGraph --balance--> SnnNetwork --quantize--> FixedNetwork
                      [auto_balancing]  [potential_calibration]  [bias_calibration_on_grid]
                                        [bias_calibration]
                                        [readout_calibration]
                                                                --check--> FixedNetwork.check
"""

from __future__ import annotations

import hashlib

import numpy as np
from torch import nn

from ..config import ConversionConfig
from ..errors import ConfigError
from ..frontend.torch_fx import trace
from ..nir.reader import graph_to_snn, load_graph
from ..passes.calibration_data import check_calibration
from .converted import ConvertedNetwork, read_sidecar, sidecar_path, simulate, weights_hash
from .order import IMPORT_PASSES, PASSES, Pass, Stage, run_passes

__all__ = ["IMPORT_PASSES", "PASSES", "ConvertedNetwork", "Pass", "Stage", "convert",
           "from_nir", "read_sidecar", "run_passes", "sidecar_path", "simulate",
           "weights_hash"]


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
        config: Conversion settings; keyword ``overrides`` replace fields of it. With
            ``balancing="auto"``, a ``shift`` or ``channel_thresholds`` given as a
            keyword (or set off its default in ``config``) is kept: ``auto`` chooses the
            rest.
        progress: Show a bar over the passes (default: when stderr is a terminal).
    """
    default = ConversionConfig()
    config = config or default
    if timesteps is not None:
        overrides["timesteps"] = timesteps
    if overrides:
        config = config.replace(**overrides)
    # what the caller set: keyword overrides, and a config's fields off their defaults
    given = frozenset(overrides) | {k for k, v in config.to_dict().items()
                                    if v != getattr(default, k)}
    if not isinstance(model, nn.Module):
        raise ConfigError(f"convert() needs a torch.nn.Module, got {type(model).__name__}")
    x = check_calibration(calibration)
    was_training = model.training
    model.eval()
    try:
        graph = trace(model, tuple(x.shape[1:]))
    finally:
        model.train(was_training)
    stage, applied = run_passes(Stage(graph=graph, x=x, config=config, given=given),
                                progress=progress)
    return ConvertedNetwork(ann=graph, snn=stage.snn, fixed=stage.fixed, config=stage.config,
                            source_hash=weights_hash(model), passes=applied,
                            balancing_choice=stage.balancing_choice,
                            readout_fit=stage.readout_fit)


#: Config settings that fit the network to its ANN, meaningless for a graph read from NIR.
NEEDS_ANN = ("bias_calibration", "potential_calibration", "readout_calibration")


def from_nir(graph, calibration, *, timesteps: int | None = None, dt: float | None = None,
             reset: str | None = None, config: ConversionConfig | None = None,
             max_bytes: int | None = None, progress: bool | None = None,
             cuba_bias: str = "refuse") -> ConvertedNetwork:
    """Read a spiking network from NIR and quantize it for Lava.

    Args:
        graph: A ``nir.NIRGraph`` or the path of a NIR file.
        calibration: Representative input samples; they set the input range and the
            first layer's fixed-point scale.
        timesteps: Time steps per sample (default: the graph's, if it says).
        dt, reset: How to read the graph's neurons (see
            :func:`lava_convert.nir.reader.graph_to_snn`): required where the graph
            does not say.
        cuba_bias: A bias into a ``CubaLIF``'s synaptic current: ``"refuse"`` or
            ``"voltage"`` (:func:`lava_convert.nir.reader.graph_to_snn`).
        config: Quantization settings (``input_bits``, ``headroom``, ``rate_tolerance``);
            calibrations (:data:`NEEDS_ANN`) are refused: there is no ANN to fit.
        max_bytes: Largest data a NIR file may declare (as for :func:`read_netx`).

    The result exports to NetX, simulates and runs on Lava like a converted network;
    its ``ann`` is ``None``.
    """
    fitted = {k: v for k, v in (config or ConversionConfig()).to_dict().items()
              if k in NEEDS_ANN and v}
    if fitted:
        raise ConfigError(f"from_nir: {', '.join(f'{k}={v}' for k, v in fitted.items())} "
                          "calibrates against the ANN's activations, which a NIR graph does "
                          "not have: set them to 0 (the graph is read as it is, then "
                          "quantized)")
    x = check_calibration(calibration)
    source = load_graph(graph, max_bytes)
    lo, hi = float(x.min()), float(x.max())
    snn = graph_to_snn(source, dt=dt, reset=reset, timesteps=timesteps,
                       input_range=(min(lo, 0.0), max(hi, 0.0)), cuba_bias=cuba_bias)
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
