"""A small CNN with plain ReLUs on the digits, trained once for the pass tests."""

from __future__ import annotations

import pytest
import torch
from torch import nn


@pytest.fixture(scope="session")
def relu_cnn(digits):
    from lava_convert.zoo.train import train_classifier

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(256, 10))
    return train_classifier(model, digits.x_train, digits.y_train, epochs=20)
