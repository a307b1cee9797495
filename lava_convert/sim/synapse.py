"""Synaptic currents: the real-valued current of a :class:`~lava_convert.ir.Synapse` (torch,
any float dtype) and the integer input Lava's Dense and Conv processes deliver."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..hw.loihi import CONV_WRAP
from ..ir import FixedLayer, Synapse


def current(synapse: Synapse, x: torch.Tensor, weight: torch.Tensor | None = None,
            bias: torch.Tensor | None = None) -> torch.Tensor:
    """``W x (+ b)`` for a batch ``x``: a matrix product (dense; the input flattened in
    C,H,W order) or a 2-D cross-correlation as PyTorch computes it (conv). ``weight``
    (default: the synapse's, as a tensor like ``x``) lets callers reuse a converted tensor."""
    if weight is None:
        weight = torch.as_tensor(synapse.weight, dtype=x.dtype, device=x.device)
    if synapse.kind == "dense":
        out = x.reshape(len(x), -1) @ weight.T
        return out if bias is None else out + bias
    g = synapse.geometry
    return F.conv2d(x, weight, bias, stride=g.stride, padding=g.padding, dilation=g.dilation,
                    groups=g.groups)


def layer_current(layer, x: torch.Tensor, skip_inputs=(), weight=None, bias=None):
    """Current into ``layer`` (any stage's layer with ``synapse``, ``bias`` and ``skips``):
    its main synapse on ``x``, plus each shortcut on its source's output in
    ``skip_inputs``; ``bias`` defaults to the layer's, as a tensor like ``x``."""
    if bias is None:
        bias = torch.as_tensor(layer.bias, dtype=x.dtype, device=x.device)
    out = current(layer.synapse, x, weight, bias)
    for skip, src in zip(layer.skips, skip_inputs):
        out = out + current(skip, src.to(x.dtype))
    return out


def lava_input(layer: FixedLayer | Synapse, inp: torch.Tensor,
               weight: torch.Tensor | None, wrap: bool = True) -> torch.Tensor:
    """Integer input current for payloads ``inp`` (batch first) as Lava computes it, int32.

    Input layers take the payload itself. Dense: ``W @ s`` (exact; Lava's int32
    accumulator never overflows for the converter's bounded currents). Conv:
    PyTorch's cross-correlation of the file's kernel (NetX flips it for Lava's
    convolution), wrapped to 24 bits like Lava's ``Conv`` (``signed_clamp``).
    ``weight`` must hold integers in a dtype that keeps every sum exact, so the
    float results are whole numbers and the casts are exact. ``wrap=False`` skips the
    24-bit wrap of a conv's sums: only for callers that have proven them below half of
    ``CONV_WRAP``.
    """
    B = inp.shape[0]
    if isinstance(layer, FixedLayer):
        if layer.synapse is None:
            return inp.reshape(B, *layer.shape).to(torch.int32)
        layer = layer.synapse
    if layer.kind == "dense":
        return (inp.reshape(B, -1) @ weight.T).to(torch.int32)
    if not wrap:  # |a| < CONV_WRAP / 2: the wrap is the identity
        return current(layer, inp, weight).to(torch.int32)
    a = current(layer, inp, weight).to(torch.int64)
    return (((a + CONV_WRAP // 2) % CONV_WRAP) - CONV_WRAP // 2).to(torch.int32)
