"""Tracing models into the IR: what converts, and the errors for what does not."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import lava_convert as lc
from lava_convert.frontend.torch_fx import trace
from lava_convert.sim.ann import forward


class ClassMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(6, 5), nn.Linear(5, 3)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        return self.fc2(self.drop(F.relu(self.fc1(torch.flatten(x, 1)))))


def test_class_model_with_functional_relu_traces_as_relu():
    graph = trace(ClassMLP(), (2, 3))
    assert [l.name for l in graph.layers] == ["fc1", "fc2"]
    assert graph.layers[0].activation == "relu" and graph.layers[1].activation is None


def test_graph_forward_matches_torch():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 8), lc.ThresholdReLU(0.7), nn.Linear(8, 4))
    x = torch.rand(10, 2, 3)
    graph = trace(model, (2, 3))
    np.testing.assert_allclose(forward(graph, x.numpy())[-1], model(x).detach().numpy(),
                               rtol=1e-5, atol=1e-6)
    assert graph.layers[0].clip == pytest.approx(0.7)


def test_consecutive_linears_merge_exactly():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 2))
    graph = trace(model, (4,))
    assert len(graph.layers) == 2 and graph.layers[0].name == "0+1"
    x = torch.rand(7, 4)
    np.testing.assert_allclose(forward(graph, x.numpy())[-1], model(x).detach().numpy(),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("module, fragment", [
    (nn.MaxPool1d(2), "MaxPool1d"),
    (nn.Sigmoid(), "IF neurons can only express ReLU-like units"),
    (nn.LSTM(4, 4), "LSTM"),
])
def test_unsupported_modules_name_path_and_fix(module, fragment):
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), module, nn.Linear(4, 2))
    with pytest.raises(lc.UnsupportedModuleError) as err:
        trace(model, (4,))
    assert "'2'" in str(err.value) and fragment in str(err.value)
    assert "supported" in str(err.value) or "use" in str(err.value)


def test_maxpool2d_suggests_average_pooling():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.MaxPool2d(2))
    with pytest.raises(lc.UnsupportedModuleError, match=r"AvgPool2d.*lc.swap_maxpool\(model\)"
                       r".*lava-convert train --swap-maxpool MODEL"):
        trace(model, (4,))


def test_skip_connection_is_rejected_not_dropped():
    class Skip(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 2)

        def forward(self, x):
            return self.b(F.relu(self.a(x)) + x)

    with pytest.raises(lc.UnsupportedModuleError, match="an add of two activations"):
        trace(Skip(), (4,))


def test_input_size_mismatch_and_non_finite_weights():
    model = nn.Sequential(nn.Linear(5, 3), nn.ReLU(), nn.Linear(3, 2))
    with pytest.raises(lc.CalibrationError, match=r"shape \(4,\) do not fit layer '0' "
                       r"\(Linear\(in_features=5.*mat1 and mat2.*Pass calibration data shaped"):
        trace(model, (4,))
    with torch.no_grad():
        model[0].weight[0, 0] = float("nan")
    with pytest.raises(lc.UnsupportedModuleError, match="'0'.*NaN"):
        trace(model, (5,))
