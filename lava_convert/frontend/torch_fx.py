"""Trace a PyTorch model into an :class:`~lava_convert.ir.AnnGraph`.

The model is traced with ``torch.fx`` (so models written as classes convert,
not only ``nn.Sequential``) and shapes are propagated with an example input.
Supported: ``nn.Linear``, ``nn.Conv2d`` (stride, padding,
dilation, groups, bias; zero padding), ``nn.ReLU`` / ``F.relu`` /
``torch.relu``, :class:`~lava_convert.layers.ThresholdReLU`,
:class:`~lava_convert.layers.QCFS`, ``nn.BatchNorm1d`` / ``nn.BatchNorm2d``
right after a Linear / Conv2d (folded with running statistics:
``W' = W * g``, ``b' = (b - mean) * g + beta``, ``g = gamma / sqrt(var + eps)``),
``nn.AvgPool2d`` / ``nn.AdaptiveAvgPool2d`` (and their functional forms, and
``x.mean((2, 3))``), every flatten idiom (``nn.Flatten``, ``flatten(1)``,
``view``/``reshape`` keeping the batch), clamp-style activations as clips (``ReLU6``,
``Hardtanh(0, a)``, ``clamp(0, a)``), a final softmax (dropped), and ``nn.Dropout`` /
``nn.Identity`` (no-ops at inference). Nodes that compute sizes (``x.size(0)``,
``x.shape[0]``) are followed as shape values, not layers.

Average pooling has no NetX layer. It is linear, so it is folded exactly into
the next layer, as is BatchNorm, and two Linear layers with no activation
between them are merged: the folds are pure functions in
:mod:`lava_convert.frontend.folds`; this module decides where they apply and
records a note for each (logged and written to the sidecar). A ReLU right after
pooling non-negative activations is the identity and is dropped.

Residual adds (``a + b``, ``a += b``, ``torch.add``): every node's value is either a
layer's activated output or a current ``sum_k W_k s_k + b`` not yet through an
activation. An add sums currents (an activated output joins as an identity
synapse: a 1x1 conv or dense eye); BatchNorm folds into every synapse of the
current; the activation makes a layer whose main synapse reads the previous
layer and whose other synapses become shortcuts (:class:`~lava_convert.ir.Synapse`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import math
import operator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from ..errors import CalibrationError, UnsupportedModuleError
from ..ir import AnnGraph, AnnLayer, ConvGeometry, Synapse
from ..layers import QCFS, ThresholdReLU
from .folds import (
    FoldError,
    Pool,
    batchnorm_affine,
    conv_synapses,
    fold_batchnorm,
    fold_pool_into_conv,
    fold_pools_into_dense,
    merge_linear,
)

log = logging.getLogger(__name__)

SUPPORTED = (
    "nn.Linear, nn.Conv2d, nn.ReLU (or F.relu / torch.relu), lava_convert.ThresholdReLU, "
    "lava_convert.QCFS, nn.BatchNorm1d/2d after Linear/Conv2d (folded), nn.AvgPool2d, "
    "nn.AdaptiveAvgPool2d, nn.Flatten (or torch.flatten), nn.Dropout, nn.Identity, residual "
    "adds (a + b) of a Conv2d/Linear output and a shortcut"
)
_NOOP_MODULES = (nn.Dropout, nn.Identity, nn.Flatten)
_RELU_FUNCTIONS = {F.relu, torch.relu}
_NOOP_FUNCTIONS = {torch.flatten, F.dropout}
_POOL_FUNCTIONS = {F.avg_pool2d, F.adaptive_avg_pool2d}
_ADD_FUNCTIONS = {operator.add, operator.iadd, torch.add}
_SOFTMAX_MODULES = (nn.Softmax, nn.LogSoftmax)
_SOFTMAX_FUNCTIONS = {F.softmax, F.log_softmax, torch.softmax, torch.log_softmax}
_CLAMP_FUNCTIONS = {torch.clamp, torch.clip, F.hardtanh, F.relu6}
_RESHAPE_METHODS = {"view", "reshape"}
_MEAN_FUNCTIONS = {torch.mean}
_CONCAT_FUNCTIONS = {torch.cat, torch.concat, torch.stack}
_MAXPOOL_HINT = ("replace it with nn.AvgPool2d (same kernel and stride), which converts "
                 "exactly, then retrain or fine-tune the model: the trained weights expect "
                 "max pooling")
_HINTS = {
    nn.MaxPool2d: _MAXPOOL_HINT,
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


_SUPPORTED_MODULES = (nn.Linear, nn.Conv2d, ThresholdReLU, QCFS, nn.ReLU, nn.ReLU6,
                      nn.Hardtanh, nn.BatchNorm1d, nn.BatchNorm2d, nn.AvgPool2d,
                      nn.AdaptiveAvgPool2d) + _NOOP_MODULES + _SOFTMAX_MODULES


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
        # torch's ShapeProp prints the traceback of a failing node itself: keep it quiet,
        # the error below names the layer and the fix
        with torch.no_grad(), contextlib.redirect_stderr(io.StringIO()):
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
    tensor = node.meta.get("tensor_meta")
    if tensor is None or not hasattr(tensor, "shape"):
        raise _unsupported(node.name, f"{node.op} {node.target!r}, whose output is not one "
                           "tensor", "return one tensor from each step of forward()")
    return tuple(tensor.shape[1:])


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _avg_pool(where: str, module_or_fn, args, kwargs, in_shape, out_shape) -> Pool:
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
        k, s, p = _pair(k), _pair(s or k), _pair(p)
        if p != (0, 0) or ceil or divisor:
            raise _unsupported(where, "average pooling with padding, ceil_mode or "
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


@dataclass
class _Out:
    """A node whose value is layer ``index``'s activated output (-1: the network input),
    with average poolings still to fold into the next synapse."""

    index: int
    pools: tuple[Pool, ...] = ()


@dataclass
class _Term:
    """One synapse feeding a layer under construction (``synapse.source``: the layer whose
    output it reads, -1 the network input), with the module path it came from."""

    where: str
    synapse: Synapse
    in_shape: tuple[int, ...]

    @property
    def source(self) -> int:
        return self.synapse.source

    def with_weight(self, weight: np.ndarray) -> _Term:
        return dataclasses.replace(self, synapse=dataclasses.replace(self.synapse, weight=weight))


@dataclass
class _Open:
    """A node whose value is a current ``sum(terms) + bias`` not yet through an activation."""

    name: str
    terms: list[_Term]
    bias: np.ndarray
    out_shape: tuple[int, ...]


class _Builder:
    """Collects layers while walking the traced graph; every node gets a value
    (:class:`_Out` or :class:`_Open`) and a layer is made when an activation closes
    an :class:`_Open` current."""

    def __init__(self) -> None:
        self.layers: list[dict] = []
        self.notes: list[str] = []

    def note(self, text: str) -> None:
        self.notes.append(text)
        log.info(text)

    def _name(self, index: int) -> str:
        return "the network input" if index < 0 else f"'{self.layers[index]['name']}'"

    def activation(self, value, kind: str, clip: float | None, where: str,
                   levels: int | None = None) -> _Out:
        if isinstance(value, _Out):
            if value.pools and kind == "relu" and value.index >= 0:
                self.note(f"{where}: ReLU after average pooling of non-negative activations "
                          "is the identity; dropped")
                return value
            if value.pools:
                raise _unsupported(where, f"a {kind} activation after average pooling",
                                   "pool after the activation (pooling is folded into the "
                                   "next layer), or use ReLU, which is exact there")
            raise _unsupported(where, f"an activation ({kind}) that does not follow a Linear "
                               "or Conv2d layer", "put activations right after a layer")
        self.close(value, where, activation=kind, clip=clip, activation_name=where,
                   levels=levels)
        return _Out(len(self.layers) - 1)

    def close(self, value: _Open, where: str, **activation) -> None:
        """Make a layer of ``value``: its main synapse reads the last layer made, the other
        terms become shortcut synapses (:class:`~lava_convert.ir.Skip`)."""
        if len(value.terms) > 1 and any(t.source < 0 for t in value.terms):
            raise _unsupported(where, "a shortcut from the network input",
                               "shortcuts carry spikes: begin the network with a layer "
                               "(e.g. a stem Conv2d + ReLU) before the first residual add")
        last = len(self.layers) - 1
        main = [t for t in value.terms if t.source == last]
        if len(main) != 1:
            what = "no input from" if not main else "two synapses from"
            raise _unsupported(where, f"a layer with {what} the layer just before it "
                               f"({self._name(last)})", "residual blocks must be chains with "
                               "shortcuts that add into the block's last layer (a shortcut "
                               "may hold one Conv2d/Linear with BatchNorm, no activation)")
        skips = []
        for t in value.terms:
            if t is main[0]:
                continue
            skips.append(t.synapse)
            self.note(f"residual add into {value.name}: shortcut {t.where} from "
                      f"{self._name(t.source)}")
        m = main[0]
        layer = dict(name=value.name, synapse=m.synapse, bias=value.bias,
                     activation=None, clip=None, activation_name=None, levels=None,
                     in_shape=m.in_shape, out_shape=value.out_shape, skips=tuple(skips))
        layer.update(activation)
        self.layers.append(layer)

    def fold_batchnorm(self, value, bn: nn.modules.batchnorm._BatchNorm, where: str) -> _Open:
        """y = (z - mean) * gamma / sqrt(var + eps) + beta, folded into every synapse of z."""
        if not isinstance(value, _Open):
            raise _unsupported(where, f"a {type(bn).__name__} that does not directly follow a "
                               "Linear or Conv2d layer", "put batch norm right after the layer "
                               "(before the activation)")
        if bn.running_mean is None or bn.running_var is None:
            raise _unsupported(where, f"a {type(bn).__name__} without running statistics",
                               "use track_running_stats=True and train the model first")
        n = bn.num_features
        g, c = batchnorm_affine(
            _as_array(bn.weight, (n,), where) if bn.affine else np.ones(n),
            _as_array(bn.bias, (n,), where) if bn.affine else np.zeros(n),
            _as_array(bn.running_mean, (n,), where), _as_array(bn.running_var, (n,), where),
            bn.eps)
        weights, bias = fold_batchnorm([t.synapse.weight for t in value.terms], value.bias, g, c)
        terms = [t.with_weight(w) for t, w in zip(value.terms, weights)]
        self.note(f"folded batch norm {where} into {', '.join(t.where for t in terms)}")
        return _Open(value.name, terms, bias, value.out_shape)

    def linear(self, value, mod: nn.Linear, where: str, in_shape) -> _Open:
        w = _as_array(mod.weight, (), where)
        b = _as_array(mod.bias, (mod.out_features,), where)
        if isinstance(value, _Open):
            if any(t.synapse.kind != "dense" for t in value.terms):
                raise self._no_activation(value, where)
            log.info("merging consecutive linear layers %s and %s", value.name, where)
            weights, bias = merge_linear([t.synapse.weight for t in value.terms], value.bias,
                                         w, b)
            return _Open(f"{value.name}+{where}",
                         [t.with_weight(wk) for t, wk in zip(value.terms, weights)], bias,
                         (mod.out_features,))
        if value.pools:
            folded = self._fold(where, fold_pools_into_dense, value.pools, w)
            self.note(f"folded average pooling {', '.join(p.where for p in value.pools)} into "
                      f"{where}: synapses {w.size} -> {folded.size}")
            w, in_shape = folded, value.pools[0].in_shape
        term = _Term(where, Synapse("dense", w, value.index), tuple(in_shape))
        return _Open(where, [term], b, (mod.out_features,))

    def conv(self, value, mod: nn.Conv2d, where: str, in_shape, out_shape) -> _Open:
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
        if isinstance(value, _Open):
            raise self._no_activation(value, where)
        if value.pools:
            if len(value.pools) != 1:
                raise _unsupported(where, "a Conv2d after chained average poolings",
                                   "use one nn.AvgPool2d(k) with stride = kernel")
            pool = value.pools[0]
            fused, folded = self._fold(where, fold_pool_into_conv, pool, w, b, geometry)
            self.note(f"folded average pooling {pool.where} into {where}: kernel "
                      f"{tuple(w.shape[2:])} -> {tuple(fused.shape[2:])}, stride "
                      f"{geometry.stride} -> {folded.stride}, synapses "
                      f"{conv_synapses(w, out_shape)} -> {conv_synapses(fused, out_shape)}")
            w, geometry, in_shape = fused, folded, pool.in_shape
        term = _Term(where, Synapse("conv", w, value.index, geometry), tuple(in_shape))
        return _Open(where, [term], b, tuple(out_shape))

    @staticmethod
    def _no_activation(value: _Open, where: str) -> UnsupportedModuleError:
        return _unsupported(where, f"a layer directly after '{value.name}' with no activation "
                            "between them", "add an activation (only two Linear layers can be "
                            "merged)")

    def add(self, a, b, where: str) -> _Open:
        """A residual add: currents add; an activated output joins as an identity synapse."""
        if isinstance(a, _Out) and isinstance(b, _Out):
            raise _unsupported(where, "an add of two activations", "add a Conv2d/Linear "
                               "output before its activation, e.g. relu(bn2(conv2(h)) + x)")
        if isinstance(a, _Out):
            a, b = b, a
        if isinstance(b, _Out):
            b = self._identity(b, a.out_shape, where)
        if tuple(a.out_shape) != tuple(b.out_shape):
            raise _unsupported(where, f"an add of shapes {a.out_shape} and {b.out_shape}",
                               "give the shortcut a 1x1 Conv2d with the main path's stride")
        return _Open(a.name, a.terms + b.terms, a.bias + b.bias, a.out_shape)

    def _identity(self, value: _Out, shape: tuple[int, ...], where: str) -> _Open:
        """An identity shortcut as a synapse with unit weights: 1x1 conv or dense eye."""
        if value.pools:
            raise _unsupported(where, "a pooled identity shortcut",
                               "use a strided 1x1 Conv2d on the shortcut instead of pooling")
        n = shape[0]
        if len(shape) == 3:
            synapse = Synapse("conv", np.eye(n)[:, :, None, None], value.index)
        else:
            synapse = Synapse("dense", np.eye(n), value.index)
        term = _Term(where, synapse, tuple(shape))
        return _Open(where, [term], np.zeros(n), tuple(shape))

    @staticmethod
    def pool(value, pool: Pool) -> _Out:
        if isinstance(value, _Open):
            raise _unsupported(pool.where, "average pooling of a layer without activation",
                               "pool after the activation")
        return _Out(value.index, value.pools + (pool,))

    @staticmethod
    def _fold(where: str, fold, *args):
        """Run a fold of :mod:`~lava_convert.frontend.folds`; name the layer if it refuses."""
        try:
            return fold(*args)
        except FoldError as exc:
            raise _unsupported(where, str(exc), exc.fix) from exc


def _add_operands(node: fx.Node) -> tuple[fx.Node, fx.Node] | None:
    """The two tensors of a residual add (``a + b``, ``a += b``, ``torch.add``,
    ``a.add(b)``), or None if ``node`` is not one."""
    is_add = (node.op == "call_function" and node.target in _ADD_FUNCTIONS) or (
        node.op == "call_method" and node.target in ("add", "add_"))
    if not is_add:
        return None
    args = [a for a in node.args if isinstance(a, fx.Node)]
    alpha = node.kwargs.get("alpha", 1)
    if len(node.args) != 2 or len(args) != 2 or alpha != 1 or set(node.kwargs) - {"alpha"}:
        raise _unsupported(node.name, "an add that is not the sum of two tensors",
                           "write the residual add as a + b")
    return args[0], args[1]


def trace(model: nn.Module, input_shape: tuple[int, ...]) -> AnnGraph:
    """Trace ``model`` (per-sample input shape ``input_shape``) into an AnnGraph.

    Raises:
        UnsupportedModuleError: a module or call that cannot be converted, named
            by its path, with the supported set or a suggested replacement.
    """
    gm = _trace(model, tuple(input_shape))
    modules = dict(gm.named_modules())
    for node in gm.graph.nodes:  # named before the branches it joins confuse the builder
        if node.op == "call_function" and node.target in _CONCAT_FUNCTIONS:
            raise _unsupported(node.name, f"concatenation ({node.target.__name__})",
                               "NetX layers sum their inputs and cannot concatenate them: "
                               "use residual adds (a + b), or one wider layer instead of "
                               "parallel branches")
    b = _Builder()
    values: dict[fx.Node, _Out | _Open] = {}
    result = None
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            values[node] = _Out(-1)
            continue
        if node.op == "get_attr":
            raise _unsupported(str(node.target), "a parameter used directly in forward()")
        if node.op == "output":
            result = values.get(node.args[0]) if isinstance(node.args[0], fx.Node) else None
            if result is None:
                raise _unsupported("output", "a model that returns several tensors",
                                   "return one tensor of class scores")
            break
        if "tensor_meta" not in node.meta:  # x.size(0), x.shape[0], ...: not a tensor
            values[node] = _SHAPE
            continue
        operands = _add_operands(node)
        if operands is not None:
            values[node] = b.add(values[operands[0]], values[operands[1]], node.name)
            continue
        inputs = [n for n in node.all_input_nodes if values.get(n) is not _SHAPE]
        if len(inputs) != 1:
            raise _unsupported(str(node.target), "a call with several tensor inputs",
                               "only residual adds (a + b) may join two paths")
        value = values[inputs[0]]
        if isinstance(value, _Open) and len(inputs[0].users) > 1:
            raise _unsupported(str(node.target), f"the output of '{value.name}' before its "
                               "activation used in several places", "branch after the "
                               "activation")
        in_shape, out_shape = _shape(inputs[0]), _shape(node)
        values[node] = _step(b, node, modules, value, in_shape, out_shape)

    if not b.layers and not isinstance(result, _Open):
        raise _unsupported(type(model).__name__, "a model without Linear or Conv2d layers")
    if isinstance(result, _Out):
        if result.pools:
            raise _unsupported(result.pools[-1].where, "average pooling after the last layer",
                               "end the model with a Linear or Conv2d layer")
        last = b.layers[-1]
        if result.index != len(b.layers) - 1:
            raise _unsupported("output", "a model whose output is not its last layer",
                               "return the last layer's output")
        log.warning("output layer %s has an activation (%s); the SNN reads the pre-activation "
                    "potential", last["name"], last["activation"])
        last.update(activation=None, clip=None)
    else:
        b.close(result, "output")
    return AnnGraph(input_shape=tuple(int(s) for s in input_shape),
                    layers=tuple(AnnLayer(**d) for d in b.layers), notes=tuple(b.notes))


#: The value of a node that computes a size or a shape, not a tensor (``x.size(0)``).
_SHAPE = object()


def _is_flatten(in_shape, out_shape) -> bool:
    """A reshape that keeps the batch and flattens the rest (C,H,W order, as nn.Flatten)."""
    return tuple(out_shape) == (math.prod(in_shape),)


def _clip_bounds(node: fx.Node, modules: dict) -> tuple[float, float] | None:
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


def _clamp(b: _Builder, value, bounds, where: str):
    low, high = bounds
    if low != 0.0:
        raise _unsupported(where, f"a clamp to [{low}, {high}]", "IF neurons express "
                           "clip(z, 0, theta): clamp at 0 from below (ReLU6, clamp(0, a))")
    if high is None:
        return b.activation(value, "relu", None, f"{where} (clamp at 0)")
    b.note(f"{where}: clamp(z, 0, {high:g}) converted as a ThresholdReLU with theta {high:g}")
    return b.activation(value, "clip", float(high), where)


def _mean_pool(node: fx.Node, in_shape, out_shape) -> Pool | None:
    """``x.mean((2, 3))`` (or ``(-2, -1)``, keepdim or not) as a global average pool."""
    if node.op == "call_method" and node.target == "mean":
        args, kwargs = node.args[1:], node.kwargs
    elif node.op == "call_function" and node.target in _MEAN_FUNCTIONS:
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


def _step(b: _Builder, node: fx.Node, modules: dict, value, in_shape, out_shape):
    """The value of one single-input node of the traced graph."""
    bounds = _clip_bounds(node, modules)
    if bounds is not None:
        return _clamp(b, value, bounds, str(node.target) if node.op == "call_module"
                      else node.name)
    pool = _mean_pool(node, in_shape, out_shape)
    if pool is not None:
        return b.pool(value, pool)
    softmax = (node.op == "call_module" and isinstance(modules[node.target], _SOFTMAX_MODULES)
               ) or (node.op == "call_function" and node.target in _SOFTMAX_FUNCTIONS) or (
               node.op == "call_method" and node.target in ("softmax", "log_softmax"))
    if softmax:
        if [u.op for u in node.users] != ["output"]:
            raise _unsupported(node.name, "a softmax inside the network",
                               "use softmax only on the output (the SNN reads its argmax)")
        b.note(f"{node.name}: final softmax dropped (it keeps the argmax the SNN reads)")
        return value
    if (node.op == "call_method" and node.target in _RESHAPE_METHODS) or (
            node.op == "call_function" and node.target is torch.reshape):
        if _is_flatten(in_shape, out_shape):
            return value
        raise _unsupported(node.name, f"a reshape from {tuple(in_shape)} to {tuple(out_shape)}",
                           "only flattening converts: x.view(x.size(0), -1), x.flatten(1), "
                           "nn.Flatten")
    if isinstance(value, _Out) and value.index < 0 and not value.pools and (
            node.op == "call_function" and node.target in (operator.sub, operator.truediv,
                                                           operator.mul, operator.add)):
        raise _unsupported(node.name, "arithmetic on the input inside forward() (an input "
                           "normalisation such as (x - mean) / std)", "normalise the data "
                           "before calling the model, and pass normalised calibration data")
    if node.op == "call_module":
        mod, where = modules[node.target], str(node.target)
        if isinstance(mod, nn.Linear):
            return b.linear(value, mod, where, in_shape)
        if isinstance(mod, nn.Conv2d):
            return b.conv(value, mod, where, in_shape, out_shape)
        if isinstance(mod, ThresholdReLU):
            return b.activation(value, "clip", float(mod.threshold.detach()), where)
        if isinstance(mod, QCFS):
            return b.activation(value, "qcfs", float(mod.threshold.detach()), where, mod.levels)
        if isinstance(mod, nn.ReLU):
            return b.activation(value, "relu", None, where)
        if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
            return b.fold_batchnorm(value, mod, where)
        if isinstance(mod, (nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
            return b.pool(value, _avg_pool(where, mod, (), {}, in_shape, out_shape))
        if isinstance(mod, _NOOP_MODULES):
            return value
        hint = next((h for cls, h in _HINTS.items() if isinstance(mod, cls)), "")
        raise _unsupported(where, f"module {type(mod).__name__}", hint)
    if node.op == "call_function":
        if node.target in _RELU_FUNCTIONS:
            return b.activation(value, "relu", None, f"{node.name} (functional relu)")
        if node.target in _POOL_FUNCTIONS:
            return b.pool(value, _avg_pool(node.name, node.target, node.args[1:], node.kwargs,
                                           in_shape, out_shape))
        if node.target in _NOOP_FUNCTIONS:
            return value
        if node.target is operator.getitem:
            raise _unsupported(node.name, "indexing in forward()")
        fname = getattr(node.target, "__name__", node.target)
        hint = _MAXPOOL_HINT if "max_pool" in str(fname) else ""
        raise _unsupported(node.name, f"function {fname}", hint)
    if node.target == "relu":
        return b.activation(value, "relu", None, f"{node.name} (Tensor.relu)")
    if node.target == "flatten":
        return value
    raise _unsupported(node.name, f"Tensor.{node.target}()", "use nn.Flatten for reshaping")
