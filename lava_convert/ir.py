"""Intermediate representation: the typed objects passed between pipeline stages.

trace -> :class:`AnnGraph` -> passes -> :class:`SnnNetwork` (float)
-> quantize -> :class:`FixedNetwork` (Loihi integers) -> NetX writer / runtimes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ConvGeometry:
    """Stride, padding, dilation (each ``(H, W)``) and groups of a 2-D convolution."""

    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1


@dataclass(frozen=True)
class Skip:
    """A shortcut synapse of a residual connection: it reads the output of an earlier
    layer (``source``, an index into the network's layers) and adds its current to the
    neurons of the layer that holds it, ``I = W s + b + sum_k W_k s_{source_k}``.

    ``kind`` is ``"dense"`` or ``"conv"`` (an identity shortcut is a 1x1 conv, or a dense
    identity, with unit weights); ``weight`` is in the units of the stage that holds it
    (float in the ANN and SNN, integers in a FixedLayer), oriented as the layer's own
    weight. Several synapses into one neuron group add, in Lava as here.
    """

    source: int
    kind: str
    weight: np.ndarray
    conv: ConvGeometry = ConvGeometry()

    @property
    def stride(self) -> tuple[int, int]:
        return self.conv.stride

    @property
    def padding(self) -> tuple[int, int]:
        return self.conv.padding

    @property
    def dilation(self) -> tuple[int, int]:
        return self.conv.dilation

    @property
    def groups(self) -> int:
        return self.conv.groups


@dataclass(frozen=True)
class AnnLayer:
    """An ANN layer ``z = W x + b`` (dense) or ``z = conv(x, W) + b``, then an activation.

    Attributes:
        name: Module path in the source model (e.g. ``"net.2"``).
        kind: ``"dense"`` (``weight`` ``(out, in)``) or ``"conv"`` (``weight``
            ``(C_out, C_in/groups, kH, kW)``, PyTorch orientation).
        weight, bias: Float parameters (bias per output neuron or channel).
        activation: ``"relu"``, ``"clip"`` (ThresholdReLU, ``clip(z, 0, theta)``),
            ``"qcfs"`` (QCFS staircase with ``levels`` steps up to ``theta``), or
            ``None`` for the output layer (raw logits).
        clip: ``theta`` of a ``"clip"`` or ``"qcfs"`` activation, else ``None``.
        activation_name: Module path of the activation (for messages).
        levels: ``L`` of a ``"qcfs"`` activation.
        in_shape, out_shape: Per-sample shapes, C,H,W for conv inputs/outputs.
        conv: Geometry of a conv layer.
        skips: Shortcut synapses from earlier layers (residual adds), BatchNorm folded;
            their biases are part of ``bias``.
    """

    name: str
    weight: np.ndarray
    bias: np.ndarray
    activation: str | None
    clip: float | None = None
    activation_name: str | None = None
    levels: int | None = None
    kind: str = "dense"
    in_shape: tuple[int, ...] = ()
    out_shape: tuple[int, ...] = ()
    conv: ConvGeometry = ConvGeometry()
    skips: tuple[Skip, ...] = ()


def layer_current(kind: str, weight, bias, x, conv: ConvGeometry):
    """``W x + b`` for a batch ``x`` of torch tensors: a matrix product (dense, input
    flattened in C,H,W order) or a 2-D convolution (cross-correlation, as PyTorch);
    ``bias=None`` for none."""
    import torch.nn.functional as F

    if kind == "dense":
        out = x.reshape(len(x), -1) @ weight.T
        return out if bias is None else out + bias
    return F.conv2d(x, weight, bias, stride=conv.stride, padding=conv.padding,
                    dilation=conv.dilation, groups=conv.groups)


def skip_current(skip: Skip, x):
    """``W_k x`` of a shortcut synapse for a batch ``x`` (torch) of its source's outputs."""
    import torch

    weight = torch.as_tensor(skip.weight, dtype=x.dtype, device=x.device)
    return layer_current(skip.kind, weight, None, x, skip.conv)


@dataclass(frozen=True)
class AnnGraph:
    """A traced feed-forward ANN: per-sample ``input_shape``, layers in order, and notes
    on what tracing folded or dropped (recorded in the export's sidecar)."""

    input_shape: tuple[int, ...]
    layers: tuple[AnnLayer, ...]
    notes: tuple[str, ...] = ()

    def forward(self, x: np.ndarray) -> list[np.ndarray]:
        """Activations of every layer for ``x`` of shape ``(batch, *input_shape)`` (float64)."""
        import torch

        h = torch.as_tensor(np.asarray(x, dtype=np.float64)).reshape(len(x), *self.input_shape)
        outs = []
        with torch.no_grad():
            for layer in self.layers:
                h = layer_current(layer.kind, torch.as_tensor(layer.weight),
                                  torch.as_tensor(layer.bias), h, layer.conv)
                for skip in layer.skips:
                    h = h + skip_current(skip, torch.as_tensor(outs[skip.source]))
                if layer.activation == "relu":
                    h = torch.clamp(h, min=0.0)
                elif layer.activation == "clip":
                    h = torch.clamp(h, 0.0, layer.clip)
                elif layer.activation == "qcfs":
                    L, theta = layer.levels, layer.clip
                    h = theta * torch.clamp(torch.floor(h * L / theta + 0.5) / L, 0.0, 1.0)
                outs.append(h.numpy())
        return outs


@dataclass(frozen=True)
class SpikingLayer:
    """A layer of IF neurons in real-valued units (dense or conv synapse).

    Per time step the layer receives ``I = W s + bias`` (``W s`` a matrix
    product or a convolution) where ``s`` is the analog input (first layer)
    or the previous layer's binary spikes. Spiking layers fire on
    ``v > threshold`` and reset by ``reset``; a readout layer
    (``spiking=False``) only integrates ``v``.

    Attributes:
        weight: The previous layer's threshold is folded in, so a spike counts 1.
        bias: Current per step (per neuron or channel), including the V_th/(2T) shift.
        threshold: V_th (same units as ``weight``); 0 for a readout layer.
        shift: The part of ``bias`` that is the V_th/(2T) shift.
        v0: Membrane potential at the start of each sample.
        ann_threshold_source: How the threshold was chosen (for reports).
        kind, out_shape, conv: As in :class:`AnnLayer`.
        skips: Shortcut synapses; each reads its source layer's spikes of the same
            step, its weight scaled like ``weight`` (source threshold folded in).
    """

    name: str
    weight: np.ndarray
    bias: np.ndarray
    threshold: float
    spiking: bool
    reset: str = "soft"
    shift: float = 0.0
    v0: float = 0.0
    ann_threshold_source: str = ""
    kind: str = "dense"
    out_shape: tuple[int, ...] = ()
    conv: ConvGeometry = ConvGeometry()
    skips: tuple[Skip, ...] = ()


@dataclass(frozen=True)
class SnnNetwork:
    """A converted network in real-valued units, ready to quantize or simulate."""

    input_shape: tuple[int, ...]
    layers: tuple[SpikingLayer, ...]
    timesteps: int
    input_range: tuple[float, float]


LAYER_KINDS = ("input", "dense", "conv")


def payload_max(bits: int, signed: bool) -> int:
    """Largest graded-input payload magnitude for ``bits`` (one bit is the sign if ``signed``)."""
    return 2 ** (bits - int(signed)) - 1


@dataclass(frozen=True)
class FixedLayer:
    """One NetX layer in Loihi integers: an optional synapse and a group of LIF neurons.

    Kinds: ``"input"`` (neurons fed directly, no synapse, no delay),
    ``"dense"`` (``weight`` of shape ``(n, m)``; a flattening input is read in
    C,H,W order) and ``"conv"`` (``weight`` ``(C_out, C_in/groups, kH, kW)``
    in PyTorch orientation, output wraps at 24 bits as in Lava).

    ``shape`` is the output shape in C,H,W order (``(n,)`` for dense),
    ``bias`` the bias mantissa per neuron or per channel (exponent
    ``bias_exp``), ``vth`` the threshold mantissa (compared as ``vth << 6``),
    ``du``/``dv`` Lava's 12-bit decays. ``scale`` is integer current units per
    real-valued unit of the layer it was quantized from (1 for foreign files).
    ``skips`` are shortcut synapses with integer weights (same units as
    ``weight``) from earlier layers' spikes of the same step: in Lava they are
    delayed so that both paths arrive together (see :func:`skip_delays`).
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    weight: np.ndarray | None
    bias: np.ndarray
    vth: int
    spiking: bool = True
    reset: str = "soft"
    du: int = 4095
    dv: int = 0
    bias_exp: int = 6
    scale: float = 1.0
    v0: int = 0
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    skips: tuple[Skip, ...] = ()

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def conv(self) -> ConvGeometry:
        """The conv settings as the :class:`ConvGeometry` that ``layer_current`` takes."""
        return ConvGeometry(stride=self.stride, padding=self.padding, dilation=self.dilation,
                            groups=self.groups)

    @property
    def has_synapse(self) -> bool:
        """Input layers have none; every synapse delays its input by one time step."""
        return self.kind != "input"

    def full_bias(self) -> np.ndarray:
        """Bias mantissa broadcast to ``shape`` (channel-wise biases expanded)."""
        b = np.asarray(self.bias, dtype=np.int64)
        if b.shape == tuple(self.shape):
            return b
        if b.size == 1:
            return np.full(self.shape, int(b.reshape(-1)[0]), dtype=np.int64)
        if len(self.shape) == 3 and b.shape == (self.shape[0],):
            return np.broadcast_to(b[:, None, None], self.shape).copy()
        raise ValueError(f"layer {self.name}: bias of shape {b.shape} does not fit {self.shape}")


@dataclass(frozen=True)
class FixedNetwork:
    """A network in Loihi fixed point: the content of a NetX file.

    The input is sent as graded spikes ``x_int = round(x * input_scale)``,
    clipped to ``input_bits`` (signed if ``input_signed``).
    """

    input_shape: tuple[int, ...]
    input_scale: float
    input_bits: int
    input_signed: bool
    layers: tuple[FixedLayer, ...]
    timesteps: int
    meta: dict = field(default_factory=dict)

    @property
    def layer_names(self) -> list[str]:
        return [layer.name for layer in self.layers]

    @property
    def is_residual(self) -> bool:
        """True if any layer has shortcut synapses (a non-sequential graph)."""
        return any(layer.skips for layer in self.layers)

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """Graded input payloads (int64) for samples ``x`` of shape ``(batch, *input_shape)``."""
        x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        hi = payload_max(self.input_bits, self.input_signed)
        lo = -hi if self.input_signed else 0
        return np.clip(np.rint(x * self.input_scale), lo, hi).astype(np.int64)


def layer_depths(layers) -> list[int]:
    """Time steps from the input to each layer along its main path: every synapse delays
    by one step in Lava (input layers have none)."""
    depths, depth = [], 0
    for layer in layers:
        depth += int(layer.kind != "input")  # FixedLayer.has_synapse, for any stage's layers
        depths.append(depth)
    return depths


def skip_delays(layers) -> list[list[int]]:
    """Extra delay (steps) of every shortcut synapse, per layer, that makes it arrive on
    the same step as the layer's main input: ``depth(t) - depth(s) - 1`` for a shortcut
    from layer ``s`` into layer ``t`` (its own synapse adds the last step)."""
    depths = layer_depths(layers)
    return [[depths[t] - depths[skip.source] - 1 for skip in layer.skips]
            for t, layer in enumerate(layers)]
