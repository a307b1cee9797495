"""Models written the way users write them: every flatten idiom, clamp-style activations,
global average pooling by mean, a final softmax; and refusals in their own words."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import lava_convert as lc
from lava_convert.frontend.torch_fx import trace
from lava_convert.sim.ann import forward


class SmallCNN(nn.Module):
    """conv -> act -> pool -> flatten (by ``flatten``) -> fc -> act -> fc."""

    def __init__(self, flatten, act=F.relu):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc1 = nn.Linear(4 * 4 * 4, 16)
        self.fc2 = nn.Linear(16, 3)
        self.flatten, self.act = flatten, act

    def forward(self, x):
        h = F.avg_pool2d(self.act(self.conv(x)), 2)
        return self.fc2(self.act(self.fc1(self.flatten(h))))


FLATTENS = {
    "x.view(x.size(0), -1)": lambda h: h.view(h.size(0), -1),
    "x.reshape(x.shape[0], -1)": lambda h: h.reshape(h.shape[0], -1),
    "x.view(-1, 64)": lambda h: h.view(-1, 64),
    "x.flatten(1)": lambda h: h.flatten(1),
    "torch.flatten(x, 1)": lambda h: torch.flatten(h, 1),
    "torch.reshape(x, (len, -1))": lambda h: torch.reshape(h, (h.shape[0], -1)),
}
ACTIVATIONS = {
    "F.relu6": F.relu6, "x.clamp(0, 2)": lambda h: h.clamp(0, 2.0),
    "torch.clamp(x, min=0, max=1.5)": lambda h: torch.clamp(h, min=0, max=1.5),
    "x.clamp(min=0)": lambda h: h.clamp(min=0), "F.hardtanh(x, 0, 3)": lambda h:
    F.hardtanh(h, 0.0, 3.0),
}


def same_function(model, shape=(1, 8, 8)):
    torch.manual_seed(0)
    graph = trace(model.eval(), shape)
    x = torch.rand(6, *shape) * 3
    np.testing.assert_allclose(forward(graph, x.numpy())[-1], model(x).detach().numpy(),
                               rtol=1e-5, atol=1e-5)
    return graph


@pytest.mark.parametrize("name", FLATTENS)
def test_every_flatten_idiom_converts(name):
    torch.manual_seed(0)
    graph = same_function(SmallCNN(FLATTENS[name]))
    assert [l.kind for l in graph.layers] == ["conv", "dense", "dense"]


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_clamp_style_activations_convert_as_clips(name):
    torch.manual_seed(0)
    graph = same_function(SmallCNN(lambda h: h.flatten(1), ACTIVATIONS[name]))
    assert graph.layers[0].activation in ("clip", "relu")


def test_relu6_module_is_a_threshold_relu_of_6():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.ReLU6(), nn.Linear(8, 3))
    graph = same_function(model)
    assert (graph.layers[0].activation, graph.layers[0].clip) == ("clip", 6.0)


class MeanHead(nn.Module):
    def __init__(self, keepdim=False):
        super().__init__()
        self.conv, self.fc, self.keepdim = nn.Conv2d(1, 5, 3), nn.Linear(5, 3), keepdim

    def forward(self, x):
        return self.fc(F.relu(self.conv(x)).mean((2, 3), keepdim=self.keepdim).flatten(1))


@pytest.mark.parametrize("keepdim", [False, True])
def test_global_average_pooling_by_mean(keepdim):
    same_function(MeanHead(keepdim))


def test_a_final_softmax_is_dropped_and_said():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 3),
                          nn.LogSoftmax(dim=1))
    graph = trace(model.eval(), (1, 8, 8))
    x = torch.rand(6, 1, 8, 8)
    np.testing.assert_array_equal(forward(graph, x.numpy())[-1].argmax(1),
                                  model(x).argmax(1).numpy())
    assert any("softmax dropped" in n for n in graph.notes)


class Concat(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Linear(4, 3), nn.Linear(4, 3), nn.Linear(6, 2)

    def forward(self, x):
        return self.c(torch.cat([F.relu(self.a(x)), F.relu(self.b(x))], dim=1))


class Normalised(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc((x - 0.5) / 0.25)


@pytest.mark.parametrize("model, shape, fragment", [
    (Concat(), (4,), r"concatenation \(cat\).*cannot concatenate"),
    (Normalised(), (4,), r"input normalisation.*normalise the data before"),
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                   nn.Linear(18, 2)), (1, 8, 8), r"AvgPool2d.*retrain or fine-tune"),
    (SmallCNN(lambda h: h.view(h.size(0), 1, 64)), (1, 8, 8), r"only flattening converts"),
])
def test_refusals_name_the_idiom_and_the_fix(model, shape, fragment):
    with pytest.raises(lc.UnsupportedModuleError, match=fragment):
        trace(model.eval(), shape)


def test_a_shape_mismatch_is_one_clean_error(capfd):
    model = nn.Sequential(nn.Flatten(), nn.Linear(10, 4), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(lc.CalibrationError, match=r"do not fit layer '1'"):
        lc.convert(model, np.zeros((4, 1, 8, 8)))
    assert "Traceback" not in capfd.readouterr().err
