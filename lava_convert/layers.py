"""Conversion-aware ANN layers (PyTorch modules)."""

from __future__ import annotations

import torch
from torch import nn


def _set_threshold(module: nn.Module, threshold: float, trainable: bool) -> None:
    """Register ``module.threshold`` (> 0) as a parameter or a buffer."""
    if not threshold > 0:
        raise ValueError(f"{type(module).__name__} threshold must be > 0, got {threshold}")
    value = torch.tensor(float(threshold))
    if trainable:
        module.threshold = nn.Parameter(value)
    else:
        module.register_buffer("threshold", value)


def activate(kind: str, x: torch.Tensor, theta=None, levels: int | None = None,
             floor=torch.floor) -> torch.Tensor:
    """The ANN activations, defined once (the modules below and the IR's ANN simulator call
    this): ``"relu"``; ``"clip"``, ``min(relu(x), theta)``; ``"qcfs"``, ``theta *
    clip(floor(x * L / theta + 1/2) / L, 0, 1)`` with ``L = levels``. ``floor`` may be a
    straight-through estimator for training."""
    if kind == "relu":
        return torch.relu(x)
    theta = torch.as_tensor(theta, dtype=x.dtype, device=x.device)
    if kind == "clip":
        return torch.minimum(torch.relu(x), theta)
    if kind == "qcfs":
        return theta * torch.clamp(floor(x * levels / theta + 0.5) / levels, 0.0, 1.0)
    raise ValueError(f"unknown activation {kind!r}: use relu, clip or qcfs")


def _describe_threshold(module: nn.Module) -> str:
    trainable = isinstance(module.threshold, nn.Parameter)
    return f"threshold={float(module.threshold.detach()):.4g}, trainable={trainable}"


class ThresholdReLU(nn.Module):
    """Clipped ReLU ``y = clip(x, 0, theta)`` (Deng & Gu's threshold ReLU).

    An IF neuron with threshold ``theta`` and soft reset fires at most once per
    step, so its rate times ``theta`` saturates at ``theta``: training with this
    clip makes the ANN see the same ceiling. The gradient is 1 inside
    ``[0, theta]`` and 0 outside; with ``trainable=True`` ``theta`` is a
    parameter and receives the gradient of the clipped part.

    Args:
        threshold: ``theta`` (> 0), in the units of the layer's activations.
        trainable: Learn ``theta`` by gradient descent.
    """

    def __init__(self, threshold: float = 1.0, trainable: bool = False) -> None:
        super().__init__()
        _set_threshold(self, threshold, trainable)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return activate("clip", x, self.threshold)

    def extra_repr(self) -> str:
        return _describe_threshold(self)


def _floor_ste(x: torch.Tensor) -> torch.Tensor:
    """floor(x) forward, identity gradient backward (straight-through estimator)."""
    return x + (torch.floor(x) - x).detach()


class QCFS(nn.Module):
    """Quantization-clip-floor-shift activation (Bu et al., ICLR 2022).

    ``y = theta * clip(floor(x * L / theta + 1/2) / L, 0, 1)``: an ``L``-level
    staircase of the clipped ReLU, shifted by half a step. An IF neuron with
    threshold ``theta``, soft reset and initial potential ``theta / 2`` run for
    ``T = L`` steps reproduces it exactly, so conversion with ``shift="v0"``
    loses nothing at ``T = L``. ``floor`` passes gradients straight through;
    ``theta`` (per layer) is trainable by default.

    Args:
        levels: ``L``, the number of quantization steps (>= 1).
        threshold: Initial ``theta`` (> 0).
        trainable: Learn ``theta``.
    """

    def __init__(self, levels: int = 8, threshold: float = 1.0, trainable: bool = True) -> None:
        super().__init__()
        if not (isinstance(levels, int) and levels >= 1):
            raise ValueError(f"QCFS levels must be a positive integer, got {levels!r}")
        self.levels = levels
        _set_threshold(self, threshold, trainable)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return activate("qcfs", x, self.threshold, self.levels, floor=_floor_ste)

    def extra_repr(self) -> str:
        return f"levels={self.levels}, {_describe_threshold(self)}"


def replace_relus(model: nn.Module, kind: str = "threshold", *, threshold: float = 1.0,
                  levels: int = 8, trainable: bool = True) -> nn.Module:
    """Swap every ``nn.ReLU`` module of ``model`` (in place) for a conversion-aware activation.

    Args:
        kind: ``"threshold"`` (:class:`ThresholdReLU`) or ``"qcfs"`` (:class:`QCFS`).
        threshold: Initial clip threshold of each new activation.
        levels: QCFS quantization levels.
        trainable: Whether each layer learns its threshold.

    Returns:
        ``model`` itself; weights are untouched. Raises ``ValueError`` if no
        ``nn.ReLU`` module is found (functional ``F.relu`` calls cannot be swapped:
        use ``nn.ReLU`` modules).
    """
    if kind not in ("threshold", "qcfs"):
        raise ValueError(f"kind must be 'threshold' or 'qcfs', got {kind!r}")
    swapped = 0
    for parent in model.modules():
        for name, child in parent.named_children():
            if type(child) is nn.ReLU:
                new = (ThresholdReLU(threshold, trainable=trainable) if kind == "threshold"
                       else QCFS(levels, threshold, trainable=trainable))
                setattr(parent, name, new)
                swapped += 1
    if not swapped:
        raise ValueError(
            f"{type(model).__name__} has no nn.ReLU modules to replace; if forward() calls "
            "F.relu, use nn.ReLU modules instead"
        )
    return model


def swap_maxpool(model: nn.Module) -> int:
    """Replace every ``nn.MaxPool2d`` of ``model`` (in place) by an ``nn.AvgPool2d`` with the
    same kernel, stride and padding, which converts exactly; returns how many. The trained
    weights expect max pooling: fine-tune afterwards
    (:func:`lava_convert.zoo.train.finetune_without_maxpool`). Functional
    ``F.max_pool2d`` calls cannot be swapped: use ``nn.MaxPool2d`` modules.
    """
    swapped = 0
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.MaxPool2d):
                if child.dilation not in (1, (1, 1)) or child.return_indices:
                    raise ValueError(f"{name}: MaxPool2d with dilation or return_indices has "
                                     "no average-pooling counterpart")
                setattr(parent, name, nn.AvgPool2d(child.kernel_size, child.stride,
                                                   child.padding, ceil_mode=child.ceil_mode))
                swapped += 1
    return swapped
