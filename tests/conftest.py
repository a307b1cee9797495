"""Shared fixtures: the digits data, a trained MLP and its conversion (built once)."""

from __future__ import annotations

import os
import signal

import pytest

import lava_convert as lc
from lava_convert.zoo.data import load_digits
from lava_convert.zoo.train import digits_mlp, train_classifier

SLOW = os.environ.get("LAVA_CONVERT_SLOW") == "1"

# Tests press Ctrl-C (SIGINT) on the runs they start. A shell starts background jobs
# (`make test &`) with SIGINT ignored, and programs they start inherit that; with Python's
# own handler here, they start with the default, as from a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(config, items):
    if SLOW:
        return
    skip = pytest.mark.skip(reason="slow: set LAVA_CONVERT_SLOW=1 (make test-all)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def digits():
    return load_digits()


@pytest.fixture(scope="session")
def digits_model(digits):
    return train_classifier(digits_mlp(), digits.x_train, digits.y_train)


@pytest.fixture(scope="session")
def digits_snn(digits, digits_model):
    return lc.convert(digits_model, calibration=digits.x_train, timesteps=32)


@pytest.fixture(scope="session")
def digits_net(digits_snn, tmp_path_factory):
    return digits_snn.export(tmp_path_factory.mktemp("export") / "digits.net")
