"""Trace a PyTorch model into an :class:`~lava_convert.ir.AnnGraph`.

The model is traced with ``torch.fx`` (so models written as classes convert,
not only ``nn.Sequential``) and shapes are propagated with an example input.
Supported, in a chain: ``nn.Linear``, ``nn.Conv2d`` (stride, padding,
dilation, groups, bias; zero padding), ``nn.ReLU`` / ``F.relu`` /
``torch.relu``, :class:`~lava_convert.layers.ThresholdReLU`,
:class:`~lava_convert.layers.QCFS`, ``nn.BatchNorm1d`` / ``nn.BatchNorm2d``
right after a Linear / Conv2d (folded with running statistics:
``W' = W * g``, ``b' = (b - mean) * g + beta``, ``g = gamma / sqrt(var + eps)``),
``nn.AvgPool2d`` / ``nn.AdaptiveAvgPool2d`` (and their functional forms),
``nn.Flatten`` / ``torch.flatten``, and ``nn.Dropout`` / ``nn.Identity``
(no-ops at inference).

Average pooling has no NetX layer. It is linear, so it is folded exactly into
the next layer: into a Linear layer through its adjoint (``W' = W P``), into a
Conv2d as one strided convolution with a larger kernel (pool ``k_p, s_p``
then conv ``k, s, p, d`` equals a conv with stride ``s * s_p``, padding
``p * s_p`` and kernel ``(k - 1) * d * s_p + k_p``). Each fold is checked
numerically against PyTorch; its synapse cost is logged and recorded. A ReLU
right after pooling non-negative activations is the identity and is dropped.
Two Linear layers with no activation between them are merged exactly.
"""

from __future__ import annotations

import logging
import math
import operator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from .errors import CalibrationError, UnsupportedModuleError
from .ir import AnnGraph, AnnLayer, ConvGeometry
from .layers import QCFS, ThresholdReLU

log = logging.getLogger(__name__)

SUPPORTED = (
    "nn.Linear, nn.Conv2d, nn.ReLU (or F.relu / torch.relu), lava_convert.ThresholdReLU, "
    "lava_convert.QCFS, nn.BatchNorm1d/2d after Linear/Conv2d (folded), nn.AvgPool2d, "
    "nn.AdaptiveAvgPool2d, nn.Flatten (or torch.flatten), nn.Dropout, nn.Identity"
)
_NOOP_MODULES = (nn.Dropout, nn.Identity, nn.Flatten)
_RELU_FUNCTIONS = {F.relu, torch.relu}
_NOOP_FUNCTIONS = {torch.flatten, F.dropout}
_POOL_FUNCTIONS = {F.avg_pool2d, F.adaptive_avg_pool2d}
_HINTS = {
    nn.MaxPool2d: "use nn.AvgPool2d, which converts exactly",
    nn.MaxPool1d: "use average pooling, which converts exactly",
    nn.Sigmoid: "use nn.ReLU or ThresholdReLU; IF neurons can only express ReLU-like units",
    nn.Tanh: "use nn.ReLU or ThresholdReLU; IF neurons can only express ReLU-like units",
    nn.GELU: "use nn.ReLU or ThresholdReLU; IF neurons can only express ReLU-like units",
    nn.LeakyReLU: "use nn.ReLU or ThresholdReLU; IF neurons have no negative slope",
}


def _unsupported(where: str, what: str, hint: str = "") -> UnsupportedModuleError:
    fix = hint or f"supported: {SUPPORTED}"
    return UnsupportedModuleError(f"cannot convert {what} at '{where}': {fix}")


def _as_array(t: torch.Tensor | None, shape: tuple[int, ...], where: str) -> np.ndarray:
    if t is None:
        return np.zeros(shape)
    a = t.detach().to("cpu", torch.float64).numpy().copy()
    if not np.all(np.isfinite(a)):
        raise UnsupportedModuleError(
            f"parameters of '{where}' contain NaN or inf: retrain or repair the weights before "
            "converting"
        )
    return a


class _Tracer(fx.Tracer):
    """Keeps lava-convert's own layers as leaves (torch's are leaves already)."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, (ThresholdReLU, QCFS)) or super().is_leaf_module(m, qualname)


_SUPPORTED_MODULES = (nn.Linear, nn.Conv2d, ThresholdReLU, QCFS, nn.ReLU, nn.BatchNorm1d,
                      nn.BatchNorm2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d) + _NOOP_MODULES


def _check_modules(gm: fx.GraphModule) -> None:
    """Name the first unsupported module before shapes are computed (clearer than a shape error)."""
    modules = dict(gm.named_modules())
    for node in gm.graph.nodes:
        if node.op == "call_module" and not isinstance(modules[node.target], _SUPPORTED_MODULES):
            mod = modules[node.target]
            hint = next((h for cls, h in _HINTS.items() if isinstance(mod, cls)), "")
            raise _unsupported(str(node.target), f"module {type(mod).__name__}", hint)


def _trace(model: nn.Module, input_shape: tuple[int, ...]) -> fx.GraphModule:
    try:
        gm = fx.GraphModule(model, _Tracer().trace(model))
    except Exception as exc:  # fx raises many types for untraceable code
        raise UnsupportedModuleError(
            f"torch.fx could not trace {type(model).__name__}: {exc}. Write forward() as a "
            "plain chain of supported modules (no data-dependent control flow), or wrap the "
            "layers in nn.Sequential"
        ) from exc
    _check_modules(gm)
    _propagate_shapes(gm, input_shape)
    return gm


class _ShapeProp(ShapeProp):
    """ShapeProp that remembers the node it failed on."""

    failed: fx.Node | None = None

    def run_node(self, n: fx.Node):
        try:
            return super().run_node(n)
        except Exception:
            self.failed = self.failed or n
            raise


def _propagate_shapes(gm: fx.GraphModule, input_shape: tuple[int, ...]) -> None:
    """Record every node's output shape; a mismatch names the layer and what it expects."""
    prop = _ShapeProp(gm)
    try:
        with torch.no_grad():
            prop.propagate(torch.zeros(2, *input_shape))
    except Exception as exc:
        root = exc
        while root.__cause__ is not None:
            root = root.__cause__
        where = "the model"
        if prop.failed is not None:
            where = f"layer '{prop.failed.target}'"
            if prop.failed.op == "call_module":
                where += f" ({gm.get_submodule(prop.failed.target)})"
        raise CalibrationError(
            f"samples of shape {tuple(input_shape)} do not fit {where}: "
            f"{str(root).splitlines()[0] if str(root) else type(root).__name__}. Pass "
            "calibration data shaped (samples, *input shape of the model)"
        ) from exc


def _shape(node: fx.Node) -> tuple[int, ...]:
    """Per-sample shape of a node's output (batch dimension dropped)."""
    return tuple(node.meta["tensor_meta"].shape[1:])


@dataclass
class _Pool:
    """A pending average pooling: a linear map from ``in_shape`` to ``out_shape``."""

    where: str
    fn: object  # callable on (N, C, H, W) tensors
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    kernel: tuple[int, int] | None  # for folding into a conv: kernel == stride, no padding


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _avg_pool(where: str, module_or_fn, args, kwargs, in_shape, out_shape) -> _Pool:
    """Describe an AvgPool2d / AdaptiveAvgPool2d (module or functional call) as a _Pool."""
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
        k, s, p = _pair(k), _pair(s or k), _pair(p)
        if p != (0, 0) or ceil or divisor:
            raise _unsupported(where, "average pooling with padding, ceil_mode or "
                               "divisor_override", "use plain nn.AvgPool2d(kernel, stride)")

        def fn(t):
            return F.avg_pool2d(t, k, s)
        return _Pool(where, fn, in_shape, out_shape, k if k == s else None)
    size = module_or_fn.output_size if isinstance(module_or_fn, nn.AdaptiveAvgPool2d) else (
        args[0] if args else kwargs["output_size"])

    def fn(t):
        return F.adaptive_avg_pool2d(t, size)
    h, w = in_shape[1:]
    oh, ow = out_shape[1:]
    kernel = (h // oh, w // ow) if h % oh == 0 and w % ow == 0 else None
    return _Pool(where, fn, in_shape, out_shape, kernel)


class _Builder:
    """Collects layers while walking the traced graph."""

    def __init__(self) -> None:
        self.layers: list[dict] = []
        self.pools: list[_Pool] = []
        self.notes: list[str] = []

    @property
    def last(self) -> dict | None:
        return self.layers[-1] if self.layers else None

    def open_layer(self) -> bool:
        """True if the last layer has no activation yet (and no pooling came after it)."""
        return self.last is not None and self.last["activation"] is None and not self.pools

    def add_activation(self, kind: str, clip: float | None, where: str,
                       levels: int | None = None) -> None:
        if self.pools and kind == "relu" and self.last is not None \
                and self.last["activation"] is not None:
            self.notes.append(f"{where}: ReLU after average pooling of non-negative "
                              "activations is the identity; dropped")
            log.info(self.notes[-1])
            return
        if self.pools:
            raise _unsupported(where, f"a {kind} activation after average pooling",
                               "pool after the activation (pooling is folded into the next "
                               "layer), or use ReLU, which is exact there")
        if not self.open_layer():
            raise _unsupported(where, f"an activation ({kind}) that does not follow a "
                               "Linear or Conv2d layer", "put activations right after a layer")
        self.last.update(activation=kind, clip=clip, activation_name=where, levels=levels)

    def fold_batchnorm(self, bn: nn.modules.batchnorm._BatchNorm, where: str) -> None:
        """y = (z - mean) * gamma / sqrt(var + eps) + beta, folded into the layer before it."""
        if not self.open_layer():
            raise _unsupported(where, f"a {type(bn).__name__} that does not directly follow a "
                               "Linear or Conv2d layer", "put batch norm right after the layer "
                               "(before the activation)")
        if bn.running_mean is None or bn.running_var is None:
            raise _unsupported(where, f"a {type(bn).__name__} without running statistics",
                               "use track_running_stats=True and train the model first")
        n = bn.num_features
        g = (_as_array(bn.weight, (n,), where) if bn.affine else np.ones(n)) / np.sqrt(
            _as_array(bn.running_var, (n,), where) + bn.eps)
        beta = _as_array(bn.bias, (n,), where) if bn.affine else np.zeros(n)
        last = self.last
        w = last["weight"]
        last.update(weight=w * g.reshape((n,) + (1,) * (w.ndim - 1)),
                    bias=last["bias"] * g + beta - _as_array(bn.running_mean, (n,), where) * g)
        self.notes.append(f"folded batch norm {where} into {last['name']}")
        log.info(self.notes[-1])

    def add_linear(self, mod: nn.Linear, where: str, in_shape: tuple[int, ...]) -> None:
        w = _as_array(mod.weight, (), where)
        b = _as_array(mod.bias, (mod.out_features,), where)
        if self.pools:
            w = self._fold_pools_into_dense(w, where)
            in_shape = self.pools[0].in_shape
            self.pools = []
        if self.open_layer() and self.last["kind"] == "dense":
            prev = self.last
            log.info("merging consecutive linear layers %s and %s", prev["name"], where)
            prev.update(weight=w @ prev["weight"], bias=w @ prev["bias"] + b,
                        name=f"{prev['name']}+{where}", out_shape=(mod.out_features,))
            return
        self._check_chain(where)
        self.layers.append(dict(name=where, kind="dense", weight=w, bias=b, activation=None,
                                clip=None, activation_name=None, levels=None,
                                in_shape=tuple(in_shape), out_shape=(mod.out_features,),
                                conv=ConvGeometry()))

    def add_conv(self, mod: nn.Conv2d, where: str, in_shape, out_shape) -> None:
        if mod.padding_mode != "zeros":
            raise _unsupported(where, f"Conv2d with padding_mode={mod.padding_mode!r}",
                               "use zero padding (padding_mode='zeros')")
        k, d = _pair(mod.kernel_size), _pair(mod.dilation)
        if isinstance(mod.padding, str):
            if mod.padding == "valid":
                pad = (0, 0)
            elif any((d[i] * (k[i] - 1)) % 2 for i in range(2)):
                raise _unsupported(where, "Conv2d padding='same' with an even kernel extent "
                                   "(asymmetric padding)", "use an odd kernel or explicit padding")
            else:
                pad = tuple(d[i] * (k[i] - 1) // 2 for i in range(2))
        else:
            pad = _pair(mod.padding)
        geometry = ConvGeometry(_pair(mod.stride), pad, d, int(mod.groups))
        w = _as_array(mod.weight, (), where)
        b = _as_array(mod.bias, (mod.out_channels,), where)
        if self.pools:
            w, geometry, in_shape = self._fold_pools_into_conv(w, b, geometry, where, out_shape)
            self.pools = []
        self._check_chain(where)
        self.layers.append(dict(name=where, kind="conv", weight=w, bias=b, activation=None,
                                clip=None, activation_name=None, levels=None,
                                in_shape=tuple(in_shape), out_shape=tuple(out_shape),
                                conv=geometry))

    def _check_chain(self, where: str) -> None:
        if self.last is not None and self.last["activation"] is None:
            raise _unsupported(where, f"a layer directly after '{self.last['name']}' with no "
                               "activation between them", "add an activation (only two Linear "
                               "layers can be merged)")

    def add_pool(self, pool: _Pool) -> None:
        if self.last is not None and self.last["activation"] is None:
            raise _unsupported(pool.where, "average pooling of a layer without activation",
                               "pool after the activation")
        self.pools.append(pool)

    def _apply_pools(self, t: torch.Tensor) -> torch.Tensor:
        for pool in self.pools:
            t = pool.fn(t)
        return t

    def _fold_pools_into_dense(self, w: np.ndarray, where: str) -> np.ndarray:
        """W' = W P, computed exactly as the adjoint of the pooling applied to W's rows."""
        first = self.pools[0]
        x = torch.zeros((len(w), *first.in_shape), dtype=torch.float64, requires_grad=True)
        y = self._apply_pools(x).reshape(len(w), -1)
        if y.shape[1] != w.shape[1]:
            raise _unsupported(where, f"a Linear layer with {w.shape[1]} inputs after pooling "
                               f"to {tuple(y.shape[1:])}", "check the layer sizes")
        (y * torch.as_tensor(w)).sum().backward()
        folded = x.grad.reshape(len(w), -1).numpy()
        names = ", ".join(p.where for p in self.pools)
        self.notes.append(f"folded average pooling {names} into {where}: synapses "
                          f"{w.size} -> {folded.size}")
        log.info(self.notes[-1])
        return folded

    def _fold_pools_into_conv(self, w, b, g: ConvGeometry, where, out_shape):
        """pool(k_p = s_p) then conv(k, s, p, d) == conv(stride s*s_p, pad p*s_p, larger kernel)."""
        if len(self.pools) != 1 or self.pools[0].kernel is None:
            raise _unsupported(where, "a Conv2d after overlapping, chained or non-uniform "
                               "average pooling", "use one nn.AvgPool2d(k) with stride = kernel")
        pool = self.pools[0]
        kp = pool.kernel
        k = w.shape[2:]
        size = tuple((k[i] - 1) * g.dilation[i] * kp[i] + kp[i] for i in range(2))
        fused = np.zeros(w.shape[:2] + size)
        for m in range(k[0]):
            for n in range(k[1]):
                r, c = m * g.dilation[0] * kp[0], n * g.dilation[1] * kp[1]
                fused[:, :, r:r + kp[0], c:c + kp[1]] += \
                    w[:, :, m:m + 1, n:n + 1] / (kp[0] * kp[1])
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
            raise _unsupported(where, f"average pooling {pool.where} followed by this Conv2d "
                               "(the pool drops border rows that the conv's padding would "
                               "replace)", "use conv padding 0, or a pool size that divides the "
                               "input size")
        before = w.size * math.prod(out_shape[1:])  # synapses: kernel taps x output positions
        after = fused.size * math.prod(out_shape[1:])
        self.notes.append(f"folded average pooling {pool.where} into {where}: kernel "
                          f"{tuple(k)} -> {size}, stride {g.stride} -> {geometry.stride}, "
                          f"synapses {before} -> {after}")
        log.info(self.notes[-1])
        return fused, geometry, pool.in_shape


def trace(model: nn.Module, input_shape: tuple[int, ...]) -> AnnGraph:
    """Trace ``model`` (per-sample input shape ``input_shape``) into an AnnGraph.

    Raises:
        UnsupportedModuleError: a module or call that cannot be converted, named
            by its path, with the supported set or a suggested replacement.
    """
    gm = _trace(model, tuple(input_shape))
    modules = dict(gm.named_modules())
    b = _Builder()
    previous: fx.Node | None = None
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            previous = node
            continue
        if node.op == "get_attr":
            raise _unsupported(str(node.target), "a parameter used directly in forward()")
        if node.op == "output":
            break
        inputs = list(node.all_input_nodes)
        if len(inputs) != 1 or inputs[0] is not previous:
            raise _unsupported(
                str(node.target), "a non-sequential connection (branch, skip or add)",
                "only chains of layers are supported by this version",
            )
        in_shape, out_shape = _shape(inputs[0]), _shape(node)
        previous = node
        if node.op == "call_module":
            mod, where = modules[node.target], str(node.target)
            if isinstance(mod, nn.Linear):
                b.add_linear(mod, where, in_shape)
            elif isinstance(mod, nn.Conv2d):
                b.add_conv(mod, where, in_shape, out_shape)
            elif isinstance(mod, ThresholdReLU):
                b.add_activation("clip", float(mod.threshold.detach()), where)
            elif isinstance(mod, QCFS):
                b.add_activation("qcfs", float(mod.threshold.detach()), where, mod.levels)
            elif isinstance(mod, nn.ReLU):
                b.add_activation("relu", None, where)
            elif isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
                b.fold_batchnorm(mod, where)
            elif isinstance(mod, (nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
                b.add_pool(_avg_pool(where, mod, (), {}, in_shape, out_shape))
            elif isinstance(mod, _NOOP_MODULES):
                continue
            else:
                hint = next((h for cls, h in _HINTS.items() if isinstance(mod, cls)), "")
                raise _unsupported(where, f"module {type(mod).__name__}", hint)
        elif node.op == "call_function":
            if node.target in _RELU_FUNCTIONS:
                b.add_activation("relu", None, f"{node.name} (functional relu)")
            elif node.target in _POOL_FUNCTIONS:
                b.add_pool(_avg_pool(node.name, node.target, node.args[1:], node.kwargs,
                                     in_shape, out_shape))
            elif node.target in _NOOP_FUNCTIONS:
                continue
            elif node.target is operator.getitem:
                raise _unsupported(node.name, "indexing in forward()")
            else:
                fname = getattr(node.target, "__name__", node.target)
                hint = "use nn.AvgPool2d, which converts exactly" if "max_pool" in str(fname) \
                    else ""
                raise _unsupported(node.name, f"function {fname}", hint)
        elif node.op == "call_method":
            if node.target == "relu":
                b.add_activation("relu", None, f"{node.name} (Tensor.relu)")
            elif node.target == "flatten":
                continue
            else:
                raise _unsupported(node.name, f"Tensor.{node.target}()",
                                   "use nn.Flatten for reshaping")

    if not b.layers:
        raise _unsupported(type(model).__name__, "a model without Linear or Conv2d layers")
    if b.pools:
        raise _unsupported(b.pools[-1].where, "average pooling after the last layer",
                           "end the model with a Linear or Conv2d layer")
    if b.last["activation"] is not None:
        log.warning("output layer %s has an activation (%s); the SNN reads the pre-activation "
                    "potential", b.last["name"], b.last["activation"])
        b.last.update(activation=None, clip=None)
    return AnnGraph(input_shape=tuple(int(s) for s in input_shape),
                    layers=tuple(AnnLayer(**d) for d in b.layers), notes=tuple(b.notes))
