"""Capturing a torch model as an fx graph with every node's output shape; modules that
cannot convert are named before shapes are computed."""

from __future__ import annotations

import contextlib
import io

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from ..errors import CalibrationError, UnsupportedModuleError
from ..layers import QCFS, ThresholdReLU
from .support import HINTS, SUPPORTED_MODULES, unsupported


class Tracer(fx.Tracer):
    """Keeps lava-convert's own layers as leaves (torch's are leaves already)."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, (ThresholdReLU, QCFS)) or super().is_leaf_module(m, qualname)


def check_modules(gm: fx.GraphModule) -> None:
    """Name the first unsupported module before shapes are computed (clearer than a shape error)."""
    modules = dict(gm.named_modules())
    for node in gm.graph.nodes:
        if node.op == "call_module" and not isinstance(modules[node.target], SUPPORTED_MODULES):
            mod = modules[node.target]
            hint = next((h for cls, h in HINTS.items() if isinstance(mod, cls)), "")
            raise unsupported(str(node.target), f"module {type(mod).__name__}", hint)


def capture(model: nn.Module, input_shape: tuple[int, ...]) -> fx.GraphModule:
    try:
        gm = fx.GraphModule(model, Tracer().trace(model))
    except Exception as exc:  # fx raises many types for untraceable code
        raise UnsupportedModuleError(
            f"torch.fx could not trace {type(model).__name__}: {exc}. Write forward() as a "
            "plain chain of supported modules (no data-dependent control flow), or wrap the "
            "layers in nn.Sequential"
        ) from exc
    check_modules(gm)
    propagate_shapes(gm, input_shape)
    return gm


class RecordingShapeProp(ShapeProp):
    """ShapeProp that remembers the node it failed on."""

    failed: fx.Node | None = None

    def run_node(self, n: fx.Node):
        try:
            return super().run_node(n)
        except Exception:
            self.failed = self.failed or n
            raise


def propagate_shapes(gm: fx.GraphModule, input_shape: tuple[int, ...]) -> None:
    """Record every node's output shape; a mismatch names the layer and what it expects."""
    prop = RecordingShapeProp(gm)
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


def node_shape(node: fx.Node) -> tuple[int, ...]:
    """Per-sample shape of a node's output (batch dimension dropped)."""
    tensor = node.meta.get("tensor_meta")
    if tensor is None or not hasattr(tensor, "shape"):
        raise unsupported(node.name, f"{node.op} {node.target!r}, whose output is not one "
                           "tensor", "return one tensor from each step of forward()")
    return tuple(tensor.shape[1:])
