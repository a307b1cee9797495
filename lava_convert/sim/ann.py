"""The traced ANN evaluated in float64: the reference every conversion is measured against."""

from __future__ import annotations

import numpy as np
import torch

from ..ir import AnnGraph
from ..layers import activate
from .synapse import layer_current, prepare_weight


def forward(graph: AnnGraph, x: np.ndarray) -> list[np.ndarray]:
    """Activations of every layer of ``graph`` for ``x`` ``(batch, *input_shape)`` (float64);
    the last entry is the logits."""
    h = torch.as_tensor(np.asarray(x, dtype=np.float64)).reshape(len(x), *graph.input_shape)
    outs: list[np.ndarray] = []
    with torch.no_grad():
        for layer in graph.layers:
            # a folded pooling runs as sum pooling and its small kernel (prepare_weight)
            weight = prepare_weight(layer.synapse, tuple(h.shape[1:]), torch.float64, "cpu")
            h = layer_current(layer, h, [torch.as_tensor(outs[k.source]) for k in layer.skips],
                              weight)
            if layer.activation is not None:
                h = activate(layer.activation, h, layer.clip, layer.levels)
            outs.append(h.numpy())
    return outs


def logits(graph: AnnGraph, x: np.ndarray) -> np.ndarray:
    """The ANN's output for ``x``."""
    return forward(graph, x)[-1]
