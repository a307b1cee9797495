"""What the tracer supports: the modules and calls it recognises, the hints for those it
refuses, and the refusal itself (:func:`unsupported`)."""

from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UnsupportedModuleError
from ..layers import QCFS, ThresholdReLU

SUPPORTED = (
    "nn.Linear, nn.Conv2d, nn.ReLU (or F.relu / torch.relu), lava_convert.ThresholdReLU, "
    "lava_convert.QCFS, nn.BatchNorm1d/2d after Linear/Conv2d (folded), nn.AvgPool2d, "
    "nn.AdaptiveAvgPool2d, nn.Flatten (or torch.flatten), nn.Dropout, nn.Identity, residual "
    "adds (a + b) of a Conv2d/Linear output and a shortcut"
)
NOOP_MODULES = (nn.Dropout, nn.Identity, nn.Flatten)
RELU_FUNCTIONS = {F.relu, torch.relu}
NOOP_FUNCTIONS = {torch.flatten, F.dropout}
POOL_FUNCTIONS = {F.avg_pool2d, F.adaptive_avg_pool2d}
ADD_FUNCTIONS = {operator.add, operator.iadd, torch.add}
SOFTMAX_MODULES = (nn.Softmax, nn.LogSoftmax)
SOFTMAX_FUNCTIONS = {F.softmax, F.log_softmax, torch.softmax, torch.log_softmax}
CLAMP_FUNCTIONS = {torch.clamp, torch.clip, F.hardtanh, F.relu6}
RESHAPE_METHODS = {"view", "reshape"}
MEAN_FUNCTIONS = {torch.mean}
CONCAT_FUNCTIONS = {torch.cat, torch.concat, torch.stack}
MAXPOOL_HINT = ("replace it with nn.AvgPool2d (same kernel and stride), which converts "
                 "exactly, then retrain or fine-tune the model: the trained weights expect "
                 "max pooling (lc.swap_maxpool(model) swaps them; `lava-convert train "
                 "--swap-maxpool MODEL` swaps and fine-tunes)")
HINTS = {
    nn.MaxPool2d: MAXPOOL_HINT,
    nn.MaxPool1d: "use average pooling, which converts exactly",
    nn.Sigmoid: "use nn.ReLU or ThresholdReLU; IF neurons can only express ReLU-like units",
    nn.Tanh: "use nn.ReLU or ThresholdReLU; IF neurons can only express ReLU-like units",
    nn.GELU: "use nn.ReLU or ThresholdReLU; IF neurons can only express ReLU-like units",
    nn.LeakyReLU: "use nn.ReLU or ThresholdReLU; IF neurons have no negative slope",
}


def unsupported(where: str, what: str, hint: str = "") -> UnsupportedModuleError:
    fix = hint or f"supported: {SUPPORTED}"
    return UnsupportedModuleError(f"cannot convert {what} at '{where}': {fix}")


SUPPORTED_MODULES = (nn.Linear, nn.Conv2d, ThresholdReLU, QCFS, nn.ReLU, nn.ReLU6,
                      nn.Hardtanh, nn.BatchNorm1d, nn.BatchNorm2d, nn.AvgPool2d,
                      nn.AdaptiveAvgPool2d) + NOOP_MODULES + SOFTMAX_MODULES
