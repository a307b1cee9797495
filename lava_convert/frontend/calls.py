"""Recognising single calls of a traced graph: average pooling, residual adds, clamps,
global means, flattening reshapes, and nodes that compute sizes rather than tensors."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import fx, nn

from .folds import (
    Pool,
)
from .support import ADD_FUNCTIONS, MEAN_FUNCTIONS, unsupported


def pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def avg_pool(where: str, module_or_fn, args, kwargs, in_shape, out_shape) -> Pool:
    """Describe an AvgPool2d / AdaptiveAvgPool2d (module or functional call) as a Pool."""
    if isinstance(module_or_fn, nn.AvgPool2d) or module_or_fn is F.avg_pool2d:
        if isinstance(module_or_fn, nn.AvgPool2d):
            k, s, p = module_or_fn.kernel_size, module_or_fn.stride, module_or_fn.padding
            ceil = module_or_fn.ceil_mode
            divisor = module_or_fn.divisor_override
        else:
            k = args[0] if args else kwargs["kernel_size"]
            s = (args[1] if len(args) > 1 else kwargs.get("stride")) or k
            p = args[2] if len(args) > 2 else kwargs.get("padding", 0)
            ceil = kwargs.get("ceil_mode", False)
            divisor = kwargs.get("divisor_override")
        k, s, p = pair(k), pair(s or k), pair(p)
        if p != (0, 0) or ceil or divisor:
            raise unsupported(where, "average pooling with padding, ceil_mode or "
                               "divisor_override", "use plain nn.AvgPool2d(kernel, stride)")

        def fn(t):
            return F.avg_pool2d(t, k, s)
        return Pool(where, fn, in_shape, out_shape, k if k == s else None)
    size = module_or_fn.output_size if isinstance(module_or_fn, nn.AdaptiveAvgPool2d) else (
        args[0] if args else kwargs["output_size"])

    def fn(t):
        return F.adaptive_avg_pool2d(t, size)
    h, w = in_shape[1:]
    oh, ow = out_shape[1:]
    kernel = (h // oh, w // ow) if h % oh == 0 and w % ow == 0 else None
    return Pool(where, fn, in_shape, out_shape, kernel)


def add_operands(node: fx.Node) -> tuple[fx.Node, fx.Node] | None:
    """The two tensors of a residual add (``a + b``, ``a += b``, ``torch.add``,
    ``a.add(b)``), or None if ``node`` is not one."""
    is_add = (node.op == "call_function" and node.target in ADD_FUNCTIONS) or (
        node.op == "call_method" and node.target in ("add", "add_"))
    if not is_add:
        return None
    args = [a for a in node.args if isinstance(a, fx.Node)]
    alpha = node.kwargs.get("alpha", 1)
    if len(node.args) != 2 or len(args) != 2 or alpha != 1 or set(node.kwargs) - {"alpha"}:
        raise unsupported(node.name, "an add that is not the sum of two tensors",
                           "write the residual add as a + b")
    return args[0], args[1]


#: The value of a node that computes a size or a shape, not a tensor (``x.size(0)``).
SHAPE = object()


def is_flatten(in_shape, out_shape) -> bool:
    """A reshape that keeps the batch and flattens the rest (C,H,W order, as nn.Flatten)."""
    return tuple(out_shape) == (math.prod(in_shape),)


def clip_bounds(node: fx.Node, modules: dict) -> tuple[float, float] | None:
    """``(low, high)`` of a clamp-like call (ReLU6, Hardtanh, clamp, clip), else None."""
    if node.op == "call_module":
        mod = modules[node.target]
        if isinstance(mod, nn.ReLU6):
            return 0.0, 6.0
        if isinstance(mod, nn.Hardtanh):
            return float(mod.min_val), float(mod.max_val)
        return None
    args, kwargs = list(node.args[1:]), dict(node.kwargs)
    if node.op == "call_function" and node.target is F.relu6:
        return 0.0, 6.0
    if node.op == "call_function" and node.target is F.hardtanh:
        names = ("min_val", "max_val")
        defaults = (-1.0, 1.0)
    elif (node.op == "call_function" and node.target in (torch.clamp, torch.clip)) or (
            node.op == "call_method" and node.target in ("clamp", "clip", "clamp_", "clip_")):
        names, defaults = ("min", "max"), (None, None)
    else:
        return None
    values = [args[i] if i < len(args) else kwargs.get(n, d)
              for i, (n, d) in enumerate(zip(names, defaults))]
    return (None if values[0] is None else float(values[0]),
            None if values[1] is None else float(values[1]))


def mean_pool(node: fx.Node, in_shape, out_shape) -> Pool | None:
    """``x.mean((2, 3))`` (or ``(-2, -1)``, keepdim or not) as a global average pool."""
    if node.op == "call_method" and node.target == "mean":
        args, kwargs = node.args[1:], node.kwargs
    elif node.op == "call_function" and node.target in MEAN_FUNCTIONS:
        args, kwargs = node.args[1:], node.kwargs
    else:
        return None
    dims = args[0] if args else kwargs.get("dim")
    dims = (dims,) if isinstance(dims, int) else tuple(dims or ())
    if len(in_shape) != 3 or sorted(d % 4 for d in dims) != [2, 3]:
        return None
    keep = bool(args[1] if len(args) > 1 else kwargs.get("keepdim", False))

    def fn(t):
        return t.mean((2, 3), keepdim=keep)
    return Pool(node.name, fn, tuple(in_shape), tuple(out_shape),
                tuple(in_shape[1:]) if keep else None)
