"""Small, seeded training utilities for conversion-ready models."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .layers import ThresholdReLU


def digits_mlp(hidden: tuple[int, ...] = (128, 64), threshold: float = 1.0,
               seed: int = 0) -> nn.Sequential:
    """A conversion-ready MLP for 8x8 digits: Flatten, then Linear + ThresholdReLU blocks.

    Weights are initialised from ``seed`` without touching the global RNG.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _mlp(hidden, threshold)


def _mlp(hidden: tuple[int, ...], threshold: float) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Flatten()]
    width = 64
    for h in hidden:
        layers += [nn.Linear(width, h), ThresholdReLU(threshold)]
        width = h
    layers.append(nn.Linear(width, 10))
    return nn.Sequential(*layers)


def train_classifier(model: nn.Module, x: np.ndarray, y: np.ndarray, *, epochs: int = 60,
                     lr: float = 3e-3, batch_size: int = 64, weight_decay: float = 1e-4,
                     seed: int = 0) -> nn.Module:
    """Train ``model`` with Adam and cross-entropy; deterministic for a given ``seed``."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    xt, yt = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.int64)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(xt), generator=gen).split(batch_size):
            opt.zero_grad()
            loss_fn(model(xt[idx]), yt[idx]).backward()
            opt.step()
        sched.step()
    model.eval()
    return model


@torch.no_grad()
def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of ``model`` on ``x`` (evaluation mode)."""
    model.eval()
    logits = model(torch.as_tensor(x, dtype=torch.float32))
    return float((logits.argmax(1).numpy() == np.asarray(y)).mean())
