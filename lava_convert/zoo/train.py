"""Small, seeded training utilities for conversion-ready models."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .data import load_dataset
from .models import mlp

#: Trainings of more batches than this show a progress bar by default.
PROGRESS_MIN_BATCHES = 2000


def digits_mlp(hidden: tuple[int, ...] = (128, 64), threshold: float = 1.0,
               seed: int = 0) -> nn.Sequential:
    """A conversion-ready MLP for 8x8 digits: Flatten, then Linear + ThresholdReLU blocks."""
    return mlp((1, 8, 8), hidden, 10, "threshold", threshold, seed=seed)


def train_classifier(model: nn.Module, x: np.ndarray, y: np.ndarray, *, epochs: int = 60,
                     lr: float = 3e-3, batch_size: int = 64, weight_decay: float = 1e-4,
                     seed: int = 0, progress: bool | None = None) -> nn.Module:
    """Train ``model`` with Adam and cross-entropy; deterministic for a given ``seed``.

    ``progress`` shows a bar over the batches (default: when there are more than
    ``PROGRESS_MIN_BATCHES``).
    """
    from tqdm.auto import tqdm

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    xt, yt = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.int64)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    batches = epochs * -(-len(xt) // batch_size)
    show = batches > PROGRESS_MIN_BATCHES if progress is None else progress
    with tqdm(total=batches, desc="training", unit="batch", leave=False, disable=not show) as bar:
        for epoch in range(epochs):
            bar.set_postfix(epoch=f"{epoch + 1}/{epochs}")
            for idx in torch.randperm(len(xt), generator=gen).split(batch_size):
                opt.zero_grad()
                loss = loss_fn(model(xt[idx]), yt[idx])
                loss.backward()
                opt.step()
                bar.update()
            sched.step()
    model.eval()
    return model


@torch.no_grad()
def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of ``model`` on ``x`` (evaluation mode)."""
    model.eval()
    logits = model(torch.as_tensor(x, dtype=torch.float32))
    return float((logits.argmax(1).numpy() == np.asarray(y)).mean())


def train_model(dataset: str = "digits", *, act: str = "threshold",
                hidden: tuple[int, ...] = (128, 64), threshold: float = 1.0, levels: int = 8,
                epochs: int = 60, lr: float = 3e-3, batch_size: int = 64, seed: int = 0,
                data_dir=None, progress: bool | None = None) -> tuple[nn.Module, dict]:
    """Train an MLP on ``dataset``; return the model and a summary (factory, kwargs, accuracy)."""
    data = load_dataset(dataset, data_dir)
    kwargs = dict(input_shape=tuple(data.x_train.shape[1:]), hidden=tuple(hidden),
                  classes=data.num_classes, act=act, threshold=threshold, levels=levels,
                  seed=seed)
    model = train_classifier(mlp(**kwargs), data.x_train, data.y_train, epochs=epochs, lr=lr,
                             batch_size=batch_size, seed=seed, progress=progress)
    info = dict(dataset=dataset, epochs=epochs, lr=lr, batch_size=batch_size,
                test_accuracy=accuracy(model, data.x_test, data.y_test))
    return model, dict(factory="lava_convert.zoo.models:mlp", kwargs=kwargs, info=info)


def finetune_without_maxpool(model: nn.Module, data, *, epochs: int = 2, lr: float = 5e-4,
                             batch_size: int = 128, seed: int = 0,
                             progress: bool | None = None) -> dict[str, float]:
    """Swap ``model``'s MaxPool2d for AvgPool2d (:func:`~lava_convert.layers.swap_maxpool`)
    and fine-tune it on ``data`` (a :class:`~lava_convert.zoo.data.Dataset`), in place.

    Returns the test accuracy with max pooling, right after the swap, and after
    fine-tuning (``"max_pool"``, ``"swapped"``, ``"fine_tuned"``) and the swap count.
    """
    from ..errors import ConfigError
    from ..layers import swap_maxpool

    before = accuracy(model, data.x_test, data.y_test)
    swapped = swap_maxpool(model)
    if not swapped:
        raise ConfigError(f"{type(model).__name__} has no nn.MaxPool2d modules to swap (a "
                          "functional F.max_pool2d cannot be swapped: use nn.MaxPool2d)")
    right_after = accuracy(model, data.x_test, data.y_test)
    train_classifier(model, data.x_train, data.y_train, epochs=epochs, lr=lr,
                     batch_size=batch_size, seed=seed, progress=progress)
    return {"max_pool": before, "swapped": right_after,
            "fine_tuned": accuracy(model, data.x_test, data.y_test), "modules": swapped}
