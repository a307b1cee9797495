"""Layer-by-layer calibration: walk the float SNN one layer at a time, letting a
correction replace each hidden spiking layer given the (already corrected) layers
before it.

The spike trains entering each layer (and its shortcuts) are kept until no later
layer reads them, so a walk simulates each layer a few times (once per candidate the
correction tries, and once after it) rather than the whole network once per layer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from ..ir import AnnGraph, SnnNetwork, SpikingLayer
from ..sim.ann import forward
from ..sim.reference import float_layer_trains

#: Samples simulated together (small batches run faster on CPU).
CALIBRATION_CHUNK = 64
#: Arithmetic of the layer simulations: float32 runs convolutions several times faster
#: than float64 on CPU (measured against float64: the ``calibration_dtype`` section of
#: benchmarks/RESULTS.md).
CALIBRATION_DTYPE = torch.float32


@dataclass(frozen=True)
class LayerProblem:
    """What a correction sees of one hidden spiking layer.

    Attributes:
        target: The ANN's activation of the layer, ``(samples, neurons)``.
        rates: ``rates(layer, v0s=None)``: the layer's spike rate in real units per
            neuron (counts / T times what one spike stands for), ``(samples, neurons)``,
            when ``layer`` (a variant of this one) is driven by the calibrated layers
            before; with ``v0s``, one such array per initial potential,
            ``(len(v0s), samples, neurons)``, at about the cost of one.
    """

    target: np.ndarray
    rates: Callable[..., np.ndarray]

    def error(self, layer: SpikingLayer) -> np.ndarray:
        """``target - rates(layer)``: the layer's conversion error per sample and neuron."""
        return self.target - self.rates(layer)


#: A correction: the layer to keep, given the layer and its problem.
Correction = Callable[[SpikingLayer, LayerProblem], SpikingLayer]


def calibrate_layers(graph: AnnGraph, snn: SnnNetwork, x: np.ndarray, correct: Correction,
                     *, rounds: int = 1, desc: str = "calibration",
                     progress: bool = False) -> SnnNetwork:
    """Walk ``snn``'s layers ``rounds`` times in order; replace each hidden spiking
    layer (not the readout, whose ANN target, the logits, is no spike rate) by
    ``correct(layer, problem)``. Float simulation on ``x``."""
    T = snn.timesteps
    activations = forward(graph, x)
    xt = torch.as_tensor(np.asarray(x, dtype=np.float64)).reshape(len(x), *snn.input_shape)
    chunks = torch.split(xt, CALIBRATION_CHUNK)
    last_use = _last_uses(snn.layers)

    def trains_of(i, layer, trains, v0s=None):
        skips = [trains[k.source] for k in layer.skips]
        return [float_layer_trains(layer, inp, [s[c] for s in skips], v0s,
                                   dtype=CALIBRATION_DTYPE)
                for c, inp in enumerate(trains[i - 1])]

    def rates_of(i, layer, trains, v0s=None):
        lead = 1 if v0s is None else 2  # (samples, ...) or (starts, samples, ...)
        counts = torch.cat([t.sum(dim=0).reshape(*t.shape[1:1 + lead], -1)
                            for t in trains_of(i, layer, trains, v0s)], dim=lead - 1).numpy()
        amplitude = layer.amplitudes()  # real units per spike (per channel)
        if np.ndim(amplitude):
            amplitude = np.repeat(amplitude, counts.shape[-1] // len(amplitude))
        return counts / T * amplitude

    bar = tqdm(total=rounds * len(snn.layers), desc=desc, unit="layer", disable=not progress,
               leave=False)
    for _ in range(rounds):
        trains = {-1: [c.expand(T, *c.shape) for c in chunks]}  # by layer index, -1 the input
        layers = list(snn.layers)
        for i, layer in enumerate(layers):
            if layer.spiking and i < len(layers) - 1:  # hidden layers: clipped-ReLU targets
                problem = LayerProblem(
                    target=activations[i].reshape(len(x), -1),
                    rates=lambda candidate, v0s=None, i=i, trains=trains: rates_of(
                        i, candidate, trains, v0s))
                layer = layers[i] = correct(layer, problem)
            if i + 1 < len(layers):
                trains[i] = trains_of(i, layer, trains)
            for j in [j for j in trains if last_use.get(j, j + 1) <= i]:
                del trains[j]  # no later layer reads these spikes
            bar.update()
        snn = dataclasses.replace(snn, layers=tuple(layers))
    bar.close()
    return snn


def per_channel(layer: SpikingLayer, values: np.ndarray) -> np.ndarray:
    """Mean of ``values`` ``(samples, neurons)`` over samples, and over positions for a
    conv layer (one value per channel), shaped like the layer's bias."""
    if layer.kind == "conv":
        mean = values.reshape(len(values), layer.out_shape[0], -1).mean(axis=(0, 2))
    else:
        mean = values.mean(axis=0)
    return mean.reshape(np.shape(layer.bias))


def _last_uses(layers) -> dict[int, int]:
    """For each layer index (-1: the input), the last layer that reads its output."""
    last = {}
    for t, layer in enumerate(layers):
        last[t - 1] = t
        for k in layer.skips:
            last[k.source] = max(last.get(k.source, t), t)
    return last
