"""Conversion-aware ANN layers (PyTorch modules)."""

from __future__ import annotations

import torch
from torch import nn


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
        if not threshold > 0:
            raise ValueError(f"ThresholdReLU threshold must be > 0, got {threshold}")
        value = torch.tensor(float(threshold))
        if trainable:
            self.threshold = nn.Parameter(value)
        else:
            self.register_buffer("threshold", value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.minimum(torch.relu(x), self.threshold)

    def extra_repr(self) -> str:
        trainable = isinstance(self.threshold, nn.Parameter)
        return f"threshold={float(self.threshold):.4g}, trainable={trainable}"
