"""The network in Loihi integers: the content of a NetX file.

Timing facts of the graph live here too (:func:`layer_depths`, :func:`skip_delays`):
the NetX writer and reader, the reference simulator and the Lava runtime all use them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..hw.loihi import BIAS_EXP, IF_DU, IF_DV
from .records import LayerQuantization, QuantizationCheck
from .snn import ResetMode
from .synapse import ConvGeometry, Synapse

#: ``input``: neurons fed directly (no synapse, no delay); ``dense`` / ``conv``: the kind
#: of the layer's main synapse.
LayerKind = Literal["input", "dense", "conv"]
LAYER_KINDS: tuple[str, ...] = ("input", "dense", "conv")
#: A layer's neurons: ``lif`` (Lava's ``LIF``, NetX's ``CUBA``/``LOIHI``, and
#: lava-convert's soft-reset variant) or ``sdnn`` (NetX's ``SDNN``: Lava's ``Delta`` for an
#: input layer, ``SigmaDelta`` with ReLU for the others, ``Sigma`` where ``spiking`` is
#: false; graded messages, :mod:`lava_convert.sim.sigma_delta`).
NeuronModel = Literal["lif", "sdnn"]
NEURON_MODELS: tuple[str, ...] = ("lif", "sdnn")


def setting_size(kind: str, shape: tuple[int, ...]) -> int:
    """Values a per-neuron setting (bias, ``v0``) has when it is not one for the layer:
    one per channel of a conv layer, one per neuron otherwise (NetX's layout)."""
    return shape[0] if kind == "conv" else int(np.prod(shape))


@dataclass(frozen=True)
class FixedLayer:
    """One NetX layer in Loihi integers: an optional synapse and a group of LIF neurons.

    ``shape`` is the output shape in C,H,W order (``(n,)`` for dense),
    ``bias`` the bias mantissa per neuron or per channel (exponent
    ``bias_exp``), ``vth`` the threshold mantissa (compared as ``vth << 6``),
    ``du``/``dv`` Lava's 12-bit decays, ``v0`` the potential at each sample's
    start (Lava units; one for the layer, or per neuron or channel like ``bias``).
    ``scale`` is integer current units per real-valued unit of the layer it was
    quantized from (1 for foreign files). ``neuron``: ``"lif"``, or ``"sdnn"`` for
    NetX's sigma-delta neurons, where ``vth`` is the delta threshold mantissa (compared
    as ``vth << 12``), ``bias`` is added to ``sigma`` as ``bias << 12``, ``spiking``
    false makes the layer a ``Sigma`` (it sends its accumulated input) and the decays,
    reset, ``bias_exp`` and ``v0`` are unused. ``skips`` are
    shortcut synapses with integer weights from earlier layers' spikes of the
    same step: in Lava they are delayed so that both paths arrive together
    (see :func:`skip_delays`).
    """

    name: str
    kind: LayerKind
    shape: tuple[int, ...]
    synapse: Synapse | None
    bias: np.ndarray
    vth: int
    spiking: bool = True
    reset: ResetMode = "soft"
    du: int = IF_DU
    dv: int = IF_DV
    bias_exp: int = BIAS_EXP
    scale: float = 1.0
    v0: int | np.ndarray = 0
    skips: tuple[Synapse, ...] = ()
    neuron: NeuronModel = "lif"

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def weight(self) -> np.ndarray | None:
        """The main synapse's integer weights (``None`` for an input layer)."""
        return None if self.synapse is None else self.synapse.weight

    @property
    def geometry(self) -> ConvGeometry:
        return ConvGeometry() if self.synapse is None else self.synapse.geometry

    @property
    def has_synapse(self) -> bool:
        """Input layers have none; every synapse delays its input by one time step."""
        return self.synapse is not None

    def bias_units(self) -> np.ndarray:
        """The bias in current units (mantissa times ``2**(bias_exp - 6)``), broadcast to
        ``shape``, as float64."""
        return self.full_bias() * 2.0 ** (self.bias_exp - BIAS_EXP)

    def full_bias(self) -> np.ndarray:
        """Bias mantissa broadcast to ``shape`` (channel-wise biases expanded)."""
        return self.per_neuron(self.bias, "bias")

    def full_v0(self) -> np.ndarray:
        """Initial potential broadcast to ``shape`` (one per channel expanded)."""
        return self.per_neuron(self.v0, "v0")

    def per_neuron(self, values, what: str) -> np.ndarray:
        """``values`` (one, one per channel, or one per neuron) broadcast to ``shape``."""
        b = np.asarray(values, dtype=np.int64)
        if b.shape == tuple(self.shape):
            return b
        if b.size == 1:
            return np.full(self.shape, int(b.reshape(-1)[0]), dtype=np.int64)
        if len(self.shape) == 3 and b.shape == (self.shape[0],):
            return np.broadcast_to(b[:, None, None], self.shape).copy()
        raise ValueError(f"layer {self.name}: {what} of shape {b.shape} does not fit "
                         f"{self.shape}")


#: Stock NetX's ``in_layer.transform`` (``weight``, ``bias``) where the file declares none.
STOCK_INPUT_TRANSFORM = (64, 0)


@dataclass(frozen=True)
class FixedNetwork:
    """A network in Loihi fixed point: the content of a NetX file.

    The input is sent as graded spikes ``round(x * input_scale)``, clipped to
    ``input_bits`` (signed if ``input_signed``; see
    :func:`lava_convert.sim.inputs.quantize_input`). ``quantization`` holds one
    record per layer for files this package wrote (empty for foreign files),
    ``check`` what the fixed-point check measured, when it ran.
    ``input_transform``: the ``weight`` and ``bias`` a file's input layer declares
    (stock NetX's ``in_layer.transform``; 64 and 0 where it declares none), kept for the
    users' code that reads them; no simulator applies them (stock NetX does not either).
    """

    input_shape: tuple[int, ...]
    input_scale: float
    input_bits: int
    input_signed: bool
    layers: tuple[FixedLayer, ...]
    timesteps: int
    quantization: tuple[LayerQuantization, ...] = ()
    check: QuantizationCheck | None = None
    input_transform: tuple[int, int] = STOCK_INPUT_TRANSFORM

    @property
    def layer_names(self) -> list[str]:
        return [layer.name for layer in self.layers]

    @property
    def neuron_model(self) -> NeuronModel:
        """``"sdnn"`` if the layers are sigma-delta neurons, else ``"lif"`` (readers refuse
        files that mix them)."""
        return "sdnn" if self.layers and self.layers[0].neuron == "sdnn" else "lif"

    def require_lif(self, what: str, hint: str) -> None:
        """Raise :class:`~lava_convert.errors.ConfigError` naming ``what`` where this is a
        sigma-delta network, which ``what`` does not handle; ``hint`` says what to do."""
        if self.neuron_model != "lif":
            from ..errors import ConfigError

            raise ConfigError(f"{what} does not handle sigma-delta (SDNN) networks yet: "
                              f"{hint}")

    @property
    def is_residual(self) -> bool:
        """True if any layer has shortcut synapses (a non-sequential graph)."""
        return any(layer.skips for layer in self.layers)

    def extension_layers(self) -> dict[str, list[str]]:
        """The layers that use each of lava-convert's extensions to Lava's LIF network, by
        name: ``"residual"`` (shortcut synapses), ``"soft_reset"``, ``"v0"`` (an initial
        potential), ``"bias_exp"`` (a bias exponent other than NetX's 6); the lists are empty
        where none does (always for sigma-delta layers, which stock NetX builds as they are)."""
        lif = [layer for layer in self.layers if layer.neuron == "lif"]
        return {"residual": [layer.name for layer in self.layers if layer.skips],
                "soft_reset": [layer.name for layer in lif if layer.reset == "soft"],
                "v0": [layer.name for layer in lif if np.any(layer.v0)],
                "bias_exp": [layer.name for layer in lif if layer.bias_exp != BIAS_EXP]}


def layer_depths(layers) -> list[int]:
    """Time steps from the input to each layer along its main path: every synapse delays
    by one step in Lava (input layers have none). Takes any stage's layers."""
    depths, depth = [], 0
    for layer in layers:
        depth += int(getattr(layer, "kind", "dense") != "input")
        depths.append(depth)
    return depths


def skip_delays(layers) -> list[list[int]]:
    """Extra delay (steps) of every shortcut synapse, per layer, that makes it arrive on
    the same step as the layer's main input: ``depth(t) - depth(s) - 1`` for a shortcut
    from layer ``s`` into layer ``t`` (its own synapse adds the last step)."""
    depths = layer_depths(layers)
    return [[depths[t] - depths[skip.source] - 1 for skip in layer.skips]
            for t, layer in enumerate(layers)]
