"""Trace a PyTorch model into an :class:`~lava_convert.ir.AnnGraph`.

The model is traced with ``torch.fx`` so that models written as classes (not
only ``nn.Sequential``) convert. Supported, in a chain: ``nn.Linear``,
``nn.ReLU`` / ``F.relu`` / ``torch.relu``, :class:`~lava_convert.layers.ThresholdReLU`,
``nn.Flatten`` / ``torch.flatten``, ``nn.Dropout`` / ``nn.Identity`` (no-ops
at inference) and ``nn.BatchNorm1d`` right after a Linear layer (folded into it
with its running statistics: ``W' = W * g``, ``b' = (b - mean) * g + beta``,
``g = gamma / sqrt(var + eps)``). Two linear layers with no activation between them are merged
exactly (``W = W2 W1``, ``b = W2 b1 + b2``).
"""

from __future__ import annotations

import logging
import math
import operator

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn

from .errors import UnsupportedModuleError
from .ir import AnnDense, AnnGraph
from .layers import QCFS, ThresholdReLU

log = logging.getLogger(__name__)

SUPPORTED = (
    "nn.Linear, nn.ReLU (or F.relu / torch.relu), lava_convert.ThresholdReLU, lava_convert.QCFS, "
    "nn.Flatten (or torch.flatten), nn.Dropout, nn.Identity, nn.BatchNorm1d after nn.Linear "
    "(folded)"
)
_NOOP_MODULES = (nn.Dropout, nn.Identity, nn.Flatten)
_RELU_FUNCTIONS = {F.relu, torch.relu}
_NOOP_FUNCTIONS = {torch.flatten, F.dropout}
_HINTS = {
    nn.MaxPool2d: "use nn.AvgPool2d, which converts exactly",
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


def _trace(model: nn.Module) -> fx.GraphModule:
    try:
        graph = _Tracer().trace(model)
        return fx.GraphModule(model, graph)
    except Exception as exc:  # fx raises many types for untraceable code
        raise UnsupportedModuleError(
            f"torch.fx could not trace {type(model).__name__}: {exc}. Write forward() as a "
            "plain chain of supported modules (no data-dependent control flow), or wrap the "
            "layers in nn.Sequential"
        ) from exc


def trace(model: nn.Module, input_shape: tuple[int, ...]) -> AnnGraph:
    """Trace ``model`` (per-sample input shape ``input_shape``) into an AnnGraph.

    Raises:
        UnsupportedModuleError: a module or call that cannot be converted, named
            by its path, with the supported set or a suggested replacement.
    """
    gm = _trace(model)
    modules = dict(gm.named_modules())
    layers: list[dict] = []
    previous: fx.Node | None = None

    def add_activation(kind: str, clip: float | None, where: str, levels: int | None = None,
                       ) -> None:
        if not layers or layers[-1]["activation"] is not None:
            raise _unsupported(where, f"an activation ({kind}) that does not follow a Linear layer",
                               "put activations right after nn.Linear layers")
        layers[-1].update(activation=kind, clip=clip, activation_name=where, levels=levels)

    def fold_batchnorm(bn: nn.BatchNorm1d, where: str) -> None:
        """y = (z - mean) * gamma / sqrt(var + eps) + beta, folded into the Linear before it."""
        if not layers or layers[-1]["activation"] is not None:
            raise _unsupported(where, "a BatchNorm1d that does not directly follow nn.Linear",
                               "put BatchNorm1d right after nn.Linear (before the activation)")
        if bn.running_mean is None or bn.running_var is None:
            raise _unsupported(where, "a BatchNorm1d without running statistics",
                               "use track_running_stats=True and train the model first")
        n = bn.num_features
        scale = (_as_array(bn.weight, (n,), where) if bn.affine else np.ones(n)) / np.sqrt(
            _as_array(bn.running_var, (n,), where) + bn.eps)
        shift = (_as_array(bn.bias, (n,), where) if bn.affine else np.zeros(n)) \
            - _as_array(bn.running_mean, (n,), where) * scale
        last = layers[-1]
        last.update(weight=last["weight"] * scale[:, None], bias=last["bias"] * scale + shift)
        log.info("folded batch norm %s into %s", where, last["name"])

    for node in gm.graph.nodes:
        if node.op in ("placeholder", "get_attr"):
            if node.op == "get_attr":
                raise _unsupported(node.target, "a parameter used directly in forward()")
            previous = node
            continue
        if node.op == "output":
            break
        inputs = [a for a in node.all_input_nodes]
        if len(inputs) != 1 or inputs[0] is not previous:
            raise _unsupported(
                str(node.target), "a non-sequential connection (branch, skip or add)",
                "only chains of layers are supported by this version",
            )
        previous = node
        if node.op == "call_module":
            mod = modules[node.target]
            where = str(node.target)
            if isinstance(mod, nn.Linear):
                w = _as_array(mod.weight, (), where)
                b = _as_array(mod.bias, (mod.out_features,), where)
                if layers and layers[-1]["activation"] is None:
                    prev = layers[-1]
                    log.info("merging consecutive linear layers %s and %s", prev["name"], where)
                    prev.update(weight=w @ prev["weight"], bias=w @ prev["bias"] + b,
                                name=f"{prev['name']}+{where}")
                else:
                    layers.append(dict(name=where, weight=w, bias=b, activation=None, clip=None,
                                       activation_name=None, levels=None))
            elif isinstance(mod, ThresholdReLU):
                add_activation("clip", float(mod.threshold.detach()), where)
            elif isinstance(mod, QCFS):
                add_activation("qcfs", float(mod.threshold.detach()), where, levels=mod.levels)
            elif isinstance(mod, nn.BatchNorm1d):
                fold_batchnorm(mod, where)
            elif isinstance(mod, nn.ReLU):
                add_activation("relu", None, where)
            elif isinstance(mod, _NOOP_MODULES):
                continue
            else:
                hint = next((h for cls, h in _HINTS.items() if isinstance(mod, cls)), "")
                raise _unsupported(where, f"module {type(mod).__name__}", hint)
        elif node.op == "call_function":
            if node.target in _RELU_FUNCTIONS:
                add_activation("relu", None, f"{node.name} (functional relu)")
            elif node.target in _NOOP_FUNCTIONS:
                continue
            elif node.target is operator.getitem:
                raise _unsupported(node.name, "indexing in forward()")
            else:
                fname = getattr(node.target, "__name__", node.target)
                raise _unsupported(node.name, f"function {fname}")
        elif node.op == "call_method":
            if node.target == "relu":
                add_activation("relu", None, f"{node.name} (Tensor.relu)")
            elif node.target == "flatten":
                continue
            else:
                raise _unsupported(node.name, f"Tensor.{node.target}()",
                                   "use nn.Flatten for reshaping")

    if not layers:
        raise _unsupported(type(model).__name__, "a model without nn.Linear layers")
    n_in = math.prod(input_shape)
    if layers[0]["weight"].shape[1] != n_in:
        raise UnsupportedModuleError(
            f"first layer '{layers[0]['name']}' expects {layers[0]['weight'].shape[1]} inputs but "
            f"samples have shape {tuple(input_shape)} ({n_in} values): pass calibration data "
            "shaped like the model's input"
        )
    if layers[-1]["activation"] is not None:
        log.warning("output layer %s has an activation (%s); the SNN reads the pre-activation "
                    "potential", layers[-1]["name"], layers[-1]["activation"])
        layers[-1].update(activation=None, clip=None)
    return AnnGraph(input_shape=tuple(int(s) for s in input_shape),
                    layers=tuple(AnnDense(**d) for d in layers))
