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

import logging
import operator

import torch
from torch import fx, nn

from ..ir import AnnGraph, AnnLayer
from ..layers import QCFS, ThresholdReLU
from .builder import Builder, Open, Out, clamp
from .calls import SHAPE, add_operands, avg_pool, clip_bounds, is_flatten, mean_pool
from .capture import capture, node_shape
from .support import (
    CONCAT_FUNCTIONS,
    HINTS,
    MAXPOOL_HINT,
    NOOP_FUNCTIONS,
    NOOP_MODULES,
    POOL_FUNCTIONS,
    RELU_FUNCTIONS,
    RESHAPE_METHODS,
    SOFTMAX_FUNCTIONS,
    SOFTMAX_MODULES,
    unsupported,
)

log = logging.getLogger(__name__)


def trace(model: nn.Module, input_shape: tuple[int, ...]) -> AnnGraph:
    """Trace ``model`` (per-sample input shape ``input_shape``) into an AnnGraph.

    Raises:
        UnsupportedModuleError: a module or call that cannot be converted, named
            by its path, with the supported set or a suggested replacement.
    """
    gm = capture(model, tuple(input_shape))
    modules = dict(gm.named_modules())
    for node in gm.graph.nodes:  # named before the branches it joins confuse the builder
        if node.op == "call_function" and node.target in CONCAT_FUNCTIONS:
            raise unsupported(node.name, f"concatenation ({node.target.__name__})",
                               "NetX layers sum their inputs and cannot concatenate them: "
                               "use residual adds (a + b), or one wider layer instead of "
                               "parallel branches")
    b = Builder()
    values: dict[fx.Node, Out | Open] = {}
    result = None
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            values[node] = Out(-1)
            continue
        if node.op == "get_attr":
            raise unsupported(str(node.target), "a parameter used directly in forward()")
        if node.op == "output":
            result = values.get(node.args[0]) if isinstance(node.args[0], fx.Node) else None
            if result is None:
                raise unsupported("output", "a model that returns several tensors",
                                   "return one tensor of class scores")
            break
        if "tensor_meta" not in node.meta:  # x.size(0), x.shape[0], ...: not a tensor
            values[node] = SHAPE
            continue
        operands = add_operands(node)
        if operands is not None:
            values[node] = b.add(values[operands[0]], values[operands[1]], node.name)
            continue
        inputs = [n for n in node.all_input_nodes if values.get(n) is not SHAPE]
        if len(inputs) != 1:
            raise unsupported(str(node.target), "a call with several tensor inputs",
                               "only residual adds (a + b) may join two paths")
        value = values[inputs[0]]
        if isinstance(value, Open) and len(inputs[0].users) > 1:
            raise unsupported(str(node.target), f"the output of '{value.name}' before its "
                               "activation used in several places", "branch after the "
                               "activation")
        in_shape, out_shape = node_shape(inputs[0]), node_shape(node)
        values[node] = _step(b, node, modules, value, in_shape, out_shape)

    if not b.layers and not isinstance(result, Open):
        raise unsupported(type(model).__name__, "a model without Linear or Conv2d layers")
    if isinstance(result, Out):
        if result.pools:
            raise unsupported(result.pools[-1].where, "average pooling after the last layer",
                               "end the model with a Linear or Conv2d layer")
        last = b.layers[-1]
        if result.index != len(b.layers) - 1:
            raise unsupported("output", "a model whose output is not its last layer",
                               "return the last layer's output")
        log.warning("output layer %s has an activation (%s); the SNN reads the pre-activation "
                    "potential", last["name"], last["activation"])
        last.update(activation=None, clip=None)
    else:
        b.close(result, "output")
    return AnnGraph(input_shape=tuple(int(s) for s in input_shape),
                    layers=tuple(AnnLayer(**d) for d in b.layers), notes=tuple(b.notes))


def _step(b: Builder, node: fx.Node, modules: dict, value, in_shape, out_shape):
    """The value of one single-input node of the traced graph."""
    bounds = clip_bounds(node, modules)
    if bounds is not None:
        return clamp(b, value, bounds, str(node.target) if node.op == "call_module"
                      else node.name)
    pool = mean_pool(node, in_shape, out_shape)
    if pool is not None:
        return b.pool(value, pool)
    softmax = (node.op == "call_module" and isinstance(modules[node.target], SOFTMAX_MODULES)
               ) or (node.op == "call_function" and node.target in SOFTMAX_FUNCTIONS) or (
               node.op == "call_method" and node.target in ("softmax", "log_softmax"))
    if softmax:
        if [u.op for u in node.users] != ["output"]:
            raise unsupported(node.name, "a softmax inside the network",
                               "use softmax only on the output (the SNN reads its argmax)")
        b.note(f"{node.name}: final softmax dropped (it keeps the argmax the SNN reads)")
        return value
    if (node.op == "call_method" and node.target in RESHAPE_METHODS) or (
            node.op == "call_function" and node.target is torch.reshape):
        if is_flatten(in_shape, out_shape):
            return value
        raise unsupported(node.name, f"a reshape from {tuple(in_shape)} to {tuple(out_shape)}",
                           "only flattening converts: x.view(x.size(0), -1), x.flatten(1), "
                           "nn.Flatten")
    if isinstance(value, Out) and value.index < 0 and not value.pools and (
            node.op == "call_function" and node.target in (operator.sub, operator.truediv,
                                                           operator.mul, operator.add)):
        raise unsupported(node.name, "arithmetic on the input inside forward() (an input "
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
            return b.pool(value, avg_pool(where, mod, (), {}, in_shape, out_shape))
        if isinstance(mod, NOOP_MODULES):
            return value
        hint = next((h for cls, h in HINTS.items() if isinstance(mod, cls)), "")
        raise unsupported(where, f"module {type(mod).__name__}", hint)
    if node.op == "call_function":
        if node.target in RELU_FUNCTIONS:
            return b.activation(value, "relu", None, f"{node.name} (functional relu)")
        if node.target in POOL_FUNCTIONS:
            return b.pool(value, avg_pool(node.name, node.target, node.args[1:], node.kwargs,
                                           in_shape, out_shape))
        if node.target in NOOP_FUNCTIONS:
            return value
        if node.target is operator.getitem:
            raise unsupported(node.name, "indexing in forward()")
        fname = getattr(node.target, "__name__", node.target)
        hint = MAXPOOL_HINT if "max_pool" in str(fname) else ""
        raise unsupported(node.name, f"function {fname}", hint)
    if node.target == "relu":
        return b.activation(value, "relu", None, f"{node.name} (Tensor.relu)")
    if node.target == "flatten":
        return value
    raise unsupported(node.name, f"Tensor.{node.target}()", "use nn.Flatten for reshaping")
