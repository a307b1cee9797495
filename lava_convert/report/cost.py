"""Operation counts of a run and an energy estimate for Loihi, next to the ANN's MACs.

Per sample and layer:

* ``spikes``: spikes the layer's neurons emit (sigma-delta neurons: non-zero graded
  messages; the input: non-zero graded payloads, one per pixel and step);
* ``synops``: synaptic operations, ``sum_n spikes_n * fanout_n`` where
  ``fanout_n`` counts the non-zero synapses neuron ``n`` drives in the next
  layer (exact for conv layers: every output it reaches through the kernel);
* ``neuron_updates``: ``neurons * T`` (every neuron is updated every step);
* ``ann_macs``: multiply-accumulates of the same (folded) layer in the ANN,
  once per sample.

The energy estimate built on these counts (dynamic lower bound, static-inclusive
figure, int8 and float32 ANN baselines, each constant with its source) is in
:mod:`lava_convert.report.energy`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..ir import FixedLayer, FixedNetwork, Synapse
from ..sim.inputs import quantize_input
from ..sim.results import RunResult
from .energy import EnergyEstimate, EnergyModel, estimate_energy


@dataclass(frozen=True)
class LayerCost:
    """Counts per sample for one layer (see the module docstring)."""

    name: str
    neurons: int
    spikes: float
    synops: float
    neuron_updates: int
    ann_macs: int


@dataclass(frozen=True)
class RunCost:
    """Counts per sample of a run and the energy estimate built on them."""

    timesteps: int
    layers: tuple[LayerCost, ...]
    energy: EnergyEstimate

    @property
    def synops(self) -> float:
        return sum(layer.synops for layer in self.layers)

    @property
    def ann_macs(self) -> int:
        return sum(layer.ann_macs for layer in self.layers)

    def to_dict(self) -> dict:
        return {"timesteps": self.timesteps, "layers": [asdict(l) for l in self.layers],
                "synops": self.synops, "ann_macs": self.ann_macs,
                "energy": self.energy.to_dict()}


def fanout(synapse: Synapse, in_shape: tuple[int, ...]) -> np.ndarray:
    """Non-zero synapses each input neuron of ``synapse`` drives, flattened in C,H,W order."""
    if synapse.kind == "dense":
        return (np.asarray(synapse.weight) != 0).sum(axis=0).astype(np.float64)
    mask = torch.as_tensor((np.asarray(synapse.weight) != 0).astype(np.float64))
    # d(sum of all outputs)/d(input) = per input position, the connections it feeds
    g = synapse.geometry
    x = torch.ones((1, *in_shape), dtype=torch.float64, requires_grad=True)
    F.conv2d(x, mask, stride=g.stride, padding=g.padding, dilation=g.dilation,
             groups=g.groups).sum().backward()
    return x.grad.reshape(-1).numpy()


def macs(layer: FixedLayer) -> int:
    """Multiply-accumulates of the layer in an ANN (non-zero weights times output positions,
    shortcut synapses included)."""
    if layer.synapse is None:
        return 0
    positions = int(np.prod(layer.shape[1:])) if len(layer.shape) == 3 else 1
    return sum(int(np.count_nonzero(syn.weight)) * (positions if syn.kind == "conv" else 1)
               for syn in (layer.synapse, *layer.skips))


def synapses_by_source(net: FixedNetwork):
    """Every synapse of ``net`` (main and shortcuts) with the index of the presynaptic
    population it reads: 0 for the network input, ``i + 1`` for layer ``i``'s spikes."""
    for i, layer in enumerate(net.layers):
        if layer.synapse is not None:
            yield layer.synapse, i
        for skip in layer.skips:
            yield skip, skip.source + 1


def run_cost(net: FixedNetwork, result: RunResult, x,
             energy: EnergyModel | None = None) -> RunCost:
    """Counts and the energy estimate (with ``energy``'s constants, default
    :class:`~lava_convert.report.energy.EnergyModel`) per sample for ``result``, a run of
    ``net`` on samples ``x``."""
    T = result.timesteps
    x_int = quantize_input(net, x)
    # presynaptic populations: the graded input (one event per non-zero pixel and step),
    # then every layer; population i drives layer i, the last one drives nothing
    names = ["input"] + [l.name for l in net.layers]
    shapes = [tuple(net.input_shape)] + [l.shape for l in net.layers]
    spikes = [(x_int != 0).astype(np.float64) * T] + [
        np.asarray(result.spike_counts[l.name], dtype=np.float64) for l in net.layers]
    synops = [0.0] * len(spikes)
    for i, layer in enumerate(net.layers):  # an input layer passes its payloads on as they are
        if layer.synapse is None and layer.neuron == "lif":  # (a Delta input layer takes
            synops[i] += float(spikes[i].sum(axis=1).mean())  # them as its state: none)
    for synapse, src in synapses_by_source(net):
        synops[src] += float((spikes[src] @ fanout(synapse, shapes[src])).mean())
    layers = [None] + list(net.layers)
    rows = tuple(LayerCost(
        name=name, neurons=int(np.prod(shape)), spikes=float(s.sum(axis=1).mean()),
        synops=ops, neuron_updates=0 if layer is None else layer.size * T,
        ann_macs=0 if layer is None else macs(layer))
        for name, shape, s, ops, layer in zip(names, shapes, spikes, synops, layers))
    updates = sum(r.neuron_updates for r in rows)
    return RunCost(timesteps=T, layers=rows, energy=estimate_energy(
        sum(synops), updates, sum(r.ann_macs for r in rows), T, energy))
