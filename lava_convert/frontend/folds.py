"""Exact folds of linear operations into the synapses around them: pure functions on
arrays, each checked against PyTorch where the algebra is not obvious.

* :func:`fold_batchnorm`: ``y = (z - mean) * gamma / sqrt(var + eps) + beta`` into every
  synapse of ``z`` (``W' = W * g``) and its bias (``b' = (b - mean) * g + beta``).
* :func:`fold_pools_into_dense`: average pooling before a Linear layer, ``W' = W P``
  (computed as the adjoint of the pooling applied to ``W``'s rows).
* :func:`fold_pool_into_conv`: pool ``k_p`` (stride ``k_p``) then conv ``k, s, p, d``
  equals one conv with stride ``s * k_p``, padding ``p * k_p`` and kernel
  ``(k - 1) * d * k_p + k_p``.
* :func:`merge_linear`: two Linear layers with no activation between them.

A fold that would not be exact raises :class:`FoldError` with the reason; the tracer
turns it into an :class:`~lava_convert.errors.UnsupportedModuleError` naming the layer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..ir import ConvGeometry


class FoldError(ValueError):
    """A fold is not exact for these shapes; ``args[0]`` says what, ``fix`` how to avoid it."""

    def __init__(self, what: str, fix: str) -> None:
        super().__init__(what)
        self.fix = fix


@dataclass(frozen=True)
class Pool:
    """A pending average pooling: a linear map from ``in_shape`` to ``out_shape``
    (``kernel``: its size when stride equals kernel and nothing is padded, else ``None``)."""

    where: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    kernel: tuple[int, int] | None


def batchnorm_affine(gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray, var: np.ndarray,
                     eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``(g, c)`` with ``bn(z) = g * z + c``."""
    g = gamma / np.sqrt(var + eps)
    return g, beta - mean * g


def fold_batchnorm(weights: Sequence[np.ndarray], bias: np.ndarray, g: np.ndarray,
                   c: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Weights and bias of ``g * (sum_k W_k x_k + b) + c``: every weight's output rows
    scaled by ``g``, the bias ``g * b + c``."""
    n = len(g)
    scaled = [w * g.reshape((n,) + (1,) * (w.ndim - 1)) for w in weights]
    return scaled, bias * g + c


def fold_pools_into_dense(pools: Sequence[Pool], w: np.ndarray) -> np.ndarray:
    """``W' = W P`` for poolings ``pools`` (applied in order) before a dense ``w``."""
    x = torch.zeros((len(w), *pools[0].in_shape), dtype=torch.float64, requires_grad=True)
    y = x
    for pool in pools:
        y = pool.fn(y)
    y = y.reshape(len(w), -1)
    if y.shape[1] != w.shape[1]:
        raise FoldError(f"a Linear layer with {w.shape[1]} inputs after pooling to "
                        f"{tuple(y.shape[1:])}", "check the layer sizes")
    (y * torch.as_tensor(w)).sum().backward()
    return x.grad.reshape(len(w), -1).numpy()


def fold_pool_into_conv(pool: Pool, w: np.ndarray, b: np.ndarray,
                        g: ConvGeometry) -> tuple[np.ndarray, ConvGeometry]:
    """The kernel and geometry of ``conv(pool(x))`` as one convolution (see module doc),
    checked numerically on the real shapes."""
    if pool.kernel is None:
        raise FoldError("a Conv2d after overlapping or non-uniform average pooling",
                        "use one nn.AvgPool2d(k) with stride = kernel")
    kp = pool.kernel
    k = w.shape[2:]
    size = tuple((k[i] - 1) * g.dilation[i] * kp[i] + kp[i] for i in range(2))
    fused = np.zeros(w.shape[:2] + size)
    for m in range(k[0]):
        for n in range(k[1]):
            r, c = m * g.dilation[0] * kp[0], n * g.dilation[1] * kp[1]
            fused[:, :, r:r + kp[0], c:c + kp[1]] += w[:, :, m:m + 1, n:n + 1] / (kp[0] * kp[1])
    geometry = ConvGeometry(stride=(g.stride[0] * kp[0], g.stride[1] * kp[1]),
                            padding=(g.padding[0] * kp[0], g.padding[1] * kp[1]),
                            dilation=(1, 1), groups=g.groups)
    # Exactness check on the real shapes (catches rows the pool drops next to padding).
    x = torch.rand((2, *pool.in_shape), dtype=torch.float64)
    want = F.conv2d(pool.fn(x), torch.as_tensor(w), torch.as_tensor(b), g.stride, g.padding,
                    g.dilation, g.groups)
    got = F.conv2d(x, torch.as_tensor(fused), torch.as_tensor(b), geometry.stride,
                   geometry.padding, 1, geometry.groups)
    if want.shape != got.shape or not torch.allclose(want, got, atol=1e-9):
        raise FoldError(f"average pooling {pool.where} followed by this Conv2d (the pool drops "
                        "border rows that the conv's padding would replace)",
                        "use conv padding 0, or a pool size that divides the input size")
    return fused, geometry


def conv_synapses(w: np.ndarray, out_shape: tuple[int, ...]) -> int:
    """Synapses of a conv: kernel taps times output positions."""
    return w.size * math.prod(out_shape[1:])


def merge_linear(weights: Sequence[np.ndarray], bias: np.ndarray, w: np.ndarray,
                 b: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """``W (sum_k W_k x_k + c) + b`` as one layer: ``([W W_k], W c + b)``."""
    return [w @ wk for wk in weights], w @ bias + b
