"""The paper's CIFAR networks in the zoo: their published shapes, and that they convert."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lava_convert as lc
from lava_convert.errors import ConfigError
from lava_convert.layers import QCFS
from lava_convert.zoo.models import resnet20, vgg11, vgg16


def _count(model, kind):
    return sum(isinstance(m, kind) for m in model.modules())


def _k3(*pairs):  # 3x3 weights of convs (c_in, c_out, how many)
    return sum(9 * a * b * n for a, b, n in pairs)


@pytest.mark.parametrize("factory, convs, weights3x3", [
    # Simonyan & Zisserman's configuration A: 64, 128, 256x2, 512x4
    (vgg11, 8, _k3((3, 64, 1), (64, 128, 1), (128, 256, 1), (256, 256, 1), (256, 512, 1),
                   (512, 512, 3))),
    # configuration D: 64x2, 128x2, 256x3, 512x6
    (vgg16, 13, _k3((3, 64, 1), (64, 64, 1), (64, 128, 1), (128, 128, 1), (128, 256, 1),
                    (256, 256, 2), (256, 512, 1), (512, 512, 5))),
    # He et al.: a 16-channel stem, 3 stages x 3 blocks x 2 convs, 2 strided 1x1 shortcuts
    (resnet20, 21, _k3((3, 16, 1), (16, 16, 6), (16, 32, 1), (32, 32, 5), (32, 64, 1),
                       (64, 64, 5))),
])
def test_layouts(factory, convs, weights3x3):
    model = factory(act="relu")
    assert _count(model, torch.nn.Conv2d) == convs
    assert weights3x3 == sum(m.weight.numel() for m in model.modules()
                             if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3))
    out = model.eval()(torch.zeros(2, 3, 32, 32))
    assert out.shape == (2, 10)
    assert _count(factory(act="qcfs", classes=100), QCFS) > 0
    assert factory(act="relu", classes=100).eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 100)


def test_a_quarter_width_vgg_has_a_quarter_of_the_channels():
    convs = [m for m in vgg11(act="relu", width=0.25).modules()
             if isinstance(m, torch.nn.Conv2d)]
    assert [m.out_channels for m in convs] == [16, 32, 64, 64, 128, 128, 128, 128]
    assert convs[1].in_channels == 16
    with pytest.raises(ConfigError, match="width=0"):
        vgg11(width=0)


def test_vgg_refuses_images_too_small():
    with pytest.raises(ConfigError, match="at least 32x32"):
        vgg11(input_shape=(3, 16, 16))


def test_resnet20_converts_and_runs(tmp_path):
    model = resnet20(act="qcfs", levels=4).eval()
    x = np.random.default_rng(0).random((16, 3, 32, 32), dtype=np.float32)
    snn = lc.convert(model, calibration=x, timesteps=4, progress=False)
    assert len(snn.fixed.layers) == 20  # 19 conv layers with neurons + the readout
    # untrained, a layer stays silent on these inputs: per-channel maxima cannot be set
    # there, and auto measures the rules that can
    choice = snn.balancing_choice
    assert choice.skipped and all("never activates" in s for s in choice.skipped)
    assert choice.chosen in [c.settings for c in choice.candidates]
    ref = lc.simulate(snn, x[:4], timesteps=4)
    assert ref.output.shape == (4, 10)
