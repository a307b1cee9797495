"""Chains of NIR's linear nodes between two layers as one synapse: a single ``Affine`` /
``Linear`` (after an optional ``Flatten``), ``Conv2d`` or pooling node keeps its form, as
does a pooling then a ``Conv2d`` (one convolution, folded as the tracer folds them);
anything longer is composed into one dense matrix, probed column by column."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import NirGraphError
from ..frontend.folds import FoldError, Pool, fold_pool_into_conv
from ..ir import ConvGeometry, Synapse
from .support import floats

#: Linear nodes a chain between layers may hold.
LINEAR = ("Affine", "Linear", "Conv2d", "Flatten", "SumPool2d", "AvgPool2d", "Scale")
#: Largest dense matrix (elements) a composed chain of linear nodes may become.
MAX_DENSE = 64 * 2**20


def _apply(node, x: torch.Tensor) -> torch.Tensor:
    """One linear node on a batch ``x`` (float64, batch first)."""
    kind = type(node).__name__
    if kind in ("Affine", "Linear"):
        w = torch.as_tensor(floats(node.weight))
        out = x.reshape(len(x), -1) @ w.T
        return out + torch.as_tensor(floats(node.bias)) if kind == "Affine" else out
    if kind == "Scale":
        return x * torch.as_tensor(floats(node.scale)).reshape(x.shape[1:])
    if kind == "Flatten":
        start = node.start_dim + 1 if node.start_dim >= 0 else node.start_dim
        end = node.end_dim + 1 if node.end_dim >= 0 else node.end_dim
        return torch.flatten(x, start, end)
    if kind == "Conv2d":
        g = _conv_geometry(node)
        return F.conv2d(x, torch.as_tensor(floats(node.weight)),
                        torch.as_tensor(floats(node.bias)), stride=g.stride,
                        padding=g.padding, dilation=g.dilation, groups=g.groups)
    kernel, stride, padding = (_pair(node.kernel_size), _pair(node.stride),
                               _pair(node.padding))
    out = F.avg_pool2d(x, kernel, stride, padding, count_include_pad=True)
    return out * (kernel[0] * kernel[1]) if kind == "SumPool2d" else out


def _pair(value) -> tuple[int, int]:
    a = np.asarray(value).reshape(-1)
    return (int(a[0]), int(a[-1]))


def _conv_geometry(node) -> ConvGeometry:
    kernel = np.asarray(node.weight).shape[2:]
    dilation = _pair(node.dilation)
    padding = node.padding
    if isinstance(padding, (bytes, str)):
        padding = padding.decode() if isinstance(padding, bytes) else padding
        if padding == "valid":
            padding = (0, 0)
        elif padding == "same" and all(k % 2 for k in kernel) and _pair(node.stride) == (1, 1):
            padding = tuple(d * (k - 1) // 2 for d, k in zip(dilation, kernel))
        else:
            raise NirGraphError(f"Conv2d padding {padding!r} with kernel {tuple(kernel)} and "
                                f"stride {tuple(_pair(node.stride))} is not supported")
    return ConvGeometry(stride=_pair(node.stride), padding=_pair(padding), dilation=dilation,
                        groups=int(np.asarray(node.groups).reshape(-1)[0]))


def _pool_then_conv(pool_node, conv_node, source: int, in_shape: tuple[int, ...],
                    where: str) -> tuple[Synapse, np.ndarray] | None:
    """A pooling (stride = kernel, no padding) then a ``Conv2d`` as one convolution, as
    the tracer folds them (:func:`~lava_convert.frontend.folds.fold_pool_into_conv`);
    ``None`` where that is not exact (the caller composes a dense matrix instead)."""
    kernel = _pair(pool_node.kernel_size)
    if _pair(pool_node.stride) != kernel or _pair(pool_node.padding) != (0, 0):
        return None
    pooled = (in_shape[0], in_shape[1] // kernel[0], in_shape[2] // kernel[1])
    pool = Pool(where, lambda x: F.avg_pool2d(x, kernel), in_shape, pooled, kernel)
    weight, bias = floats(conv_node.weight), floats(conv_node.bias).reshape(-1)
    try:
        fused, geometry = fold_pool_into_conv(pool, weight, bias, _conv_geometry(conv_node))
    except FoldError:
        return None
    if type(pool_node).__name__ == "SumPool2d":  # a sum is the average times the window
        fused = fused * (kernel[0] * kernel[1])
    return Synapse("conv", fused, source, geometry), bias


def chain_synapse(chain: list, nodes: dict, source: int, in_shape: tuple[int, ...],
             where: str) -> tuple[Synapse, np.ndarray, tuple[int, ...]]:
    """The synapse a chain of linear nodes (source first) makes, its bias (in the shape of
    the output, or per channel for a conv) and its output shape."""
    out = torch.zeros((1, *in_shape), dtype=torch.float64)
    for name in chain:
        try:
            out = _apply(nodes[name], out)
        except (RuntimeError, ValueError) as exc:
            raise NirGraphError(f"{where}: node '{name}' ({type(nodes[name]).__name__}) "
                                f"does not fit its input of shape {tuple(out.shape[1:])} "
                                f"({exc})") from exc
    out_shape = tuple(out.shape[1:])
    kinds = [type(nodes[n]).__name__ for n in chain]
    core = [n for n, k in zip(chain, kinds) if k != "Flatten"]
    core_kinds = [type(nodes[n]).__name__ for n in core]
    if core_kinds in (["Affine"], ["Linear"]) and len(out_shape) == 1:
        node = nodes[core[0]]
        bias = floats(node.bias) if core_kinds == ["Affine"] else np.zeros(out_shape)
        weight = floats(node.weight)
        if weight.shape[1] != int(np.prod(in_shape)):
            raise NirGraphError(f"{where}: weight {weight.shape} does not fit an input of "
                                f"{int(np.prod(in_shape))} values")
        return Synapse("dense", weight, source), bias, out_shape
    if chain and kinds == core_kinds and core_kinds == ["Conv2d"] and len(in_shape) == 3:
        node = nodes[core[0]]
        return (Synapse("conv", floats(node.weight), source, _conv_geometry(node)),
                floats(node.bias).reshape(-1), out_shape)
    if kinds in (["SumPool2d"], ["AvgPool2d"]) and len(in_shape) == 3:
        node = nodes[chain[0]]
        kernel = _pair(node.kernel_size)
        channels = in_shape[0]
        value = 1.0 if kinds == ["SumPool2d"] else 1.0 / (kernel[0] * kernel[1])
        weight = np.full((channels, 1, *kernel), value)
        geometry = ConvGeometry(stride=_pair(node.stride), padding=_pair(node.padding),
                                groups=channels)
        return Synapse("conv", weight, source, geometry), np.zeros(channels), out_shape
    if kinds in (["AvgPool2d", "Conv2d"], ["SumPool2d", "Conv2d"]) and len(in_shape) == 3:
        folded = _pool_then_conv(nodes[chain[0]], nodes[chain[1]], source, in_shape, where)
        if folded is not None:
            return (*folded, out_shape)
    # anything longer: one dense matrix, probed column by column
    n_in, n_out = int(np.prod(in_shape)), int(np.prod(out_shape))
    if n_in * n_out > MAX_DENSE:
        raise NirGraphError(f"{where}: the chain {' -> '.join(chain)} composes into a "
                            f"{n_out}x{n_in} matrix, more than {MAX_DENSE} elements; "
                            "lava-convert keeps a single Conv2d or pooling node as a "
                            "convolution, so write the chain as one node")
    with torch.no_grad():
        base = out.reshape(-1)
        columns = []
        eye = torch.eye(n_in, dtype=torch.float64)
        for lo in range(0, n_in, 1024):
            y = eye[lo:lo + 1024].reshape(-1, *in_shape)
            for name in chain:
                y = _apply(nodes[name], y)
            columns.append(y.reshape(len(y), -1) - base)
        weight = torch.cat(columns).T.numpy()
    return Synapse("dense", weight, source), base.numpy(), (n_out,)
