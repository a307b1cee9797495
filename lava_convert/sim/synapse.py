"""Synaptic currents: the real-valued current of a :class:`~lava_convert.ir.Synapse` (torch,
any float dtype) and the integer input Lava's Dense and Conv processes deliver."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..hw.loihi import CONV_WRAP
from ..ir import ConvGeometry, FixedLayer, Synapse


@dataclass(frozen=True)
class PooledWeight:
    """A conv kernel that is a ``pool`` sum pooling followed by a smaller conv: what folding
    an ``AvgPool2d(p)`` into the next conv makes (each weight of the small kernel repeated
    over a ``p x p`` block, stride and padding times ``p``). :func:`current` then pools
    the input and convolves with ``weight`` under ``geometry``: the same products and sums
    (so integer results stay exact), with ``p*p`` times fewer multiplications."""

    weight: torch.Tensor
    pool: tuple[int, int]
    geometry: ConvGeometry


def pooled_form(synapse: Synapse, in_shape: tuple[int, ...]) -> tuple[np.ndarray, tuple[int, int],
                                                                      ConvGeometry] | None:
    """(small kernel, pool, its geometry) if ``synapse``'s kernel repeats each weight over
    ``p x p`` blocks with stride and padding multiples of ``p`` and an input
    ``in_shape`` (C, H, W) whose H and W ``p`` divides; else ``None``."""
    if synapse.kind != "conv" or len(in_shape) != 3:
        return None
    g, w = synapse.geometry, np.asarray(synapse.weight)
    if g.dilation != (1, 1):
        return None
    pool = []
    for axis in (0, 1):
        p = int(np.gcd.reduce([w.shape[2 + axis], g.stride[axis], g.padding[axis],
                               in_shape[1 + axis]]))
        while p > 1 and not _repeats(w, axis, p):
            p = max(d for d in range(1, p) if p % d == 0)
        pool.append(p)
    if pool == [1, 1]:
        return None
    ph, pw = pool
    small = w[:, :, ::ph, ::pw]
    geometry = ConvGeometry(stride=(g.stride[0] // ph, g.stride[1] // pw),
                            padding=(g.padding[0] // ph, g.padding[1] // pw), groups=g.groups)
    return np.ascontiguousarray(small), (ph, pw), geometry


def _repeats(w: np.ndarray, axis: int, p: int) -> bool:
    """Whether every block of ``p`` along kernel ``axis`` (2 + axis) holds one value."""
    blocks = torch.as_tensor(w).movedim(2 + axis, -1)
    blocks = blocks.reshape(*blocks.shape[:-1], -1, p)
    return bool(torch.all(blocks == blocks[..., :1]))


def prepare_weight(synapse: Synapse, in_shape: tuple[int, ...], dtype: torch.dtype, device,
                   gain: float = 1.0) -> torch.Tensor | PooledWeight:
    """``synapse``'s weights (times ``gain``) as a tensor for :func:`current`, in the
    pooled form where :func:`pooled_form` finds one."""
    pooled = pooled_form(synapse, in_shape)
    weight = synapse.weight if pooled is None else pooled[0]
    tensor = torch.as_tensor(np.asarray(weight, dtype=np.float64) * gain, dtype=dtype,
                             device=device)
    return tensor if pooled is None else PooledWeight(tensor, pooled[1], pooled[2])


def current(synapse: Synapse, x: torch.Tensor, weight: torch.Tensor | None = None,
            bias: torch.Tensor | None = None) -> torch.Tensor:
    """``W x (+ b)`` for a batch ``x``: a matrix product (dense; the input flattened in
    C,H,W order) or a 2-D cross-correlation as PyTorch computes it (conv). ``weight``
    (default: the synapse's, as a tensor like ``x``) lets callers reuse a converted tensor,
    or pass its :class:`PooledWeight` (:func:`prepare_weight`)."""
    if weight is None:
        weight = torch.as_tensor(synapse.weight, dtype=x.dtype, device=x.device)
    if synapse.kind == "dense":
        out = x.reshape(len(x), -1) @ weight.T
        return out if bias is None else out + bias
    g = synapse.geometry
    if isinstance(weight, PooledWeight):  # sum pooling, then the small kernel
        x = F.avg_pool2d(x, weight.pool, divisor_override=1)
        g, weight = weight.geometry, weight.weight
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
