"""NeuroBench's metrics (Yik et al., Nature Communications 2025; ``neurobench`` 2.3) for
the ANN and for a run of a converted network, by NeuroBench's own definitions, so that
our figures stand beside other converters' and chips':

* **footprint**: bytes of the network's parameters and buffers. For the ANN, as
  NeuroBench counts a torch model (``numel * element_size`` of every parameter and
  buffer). For the converted network, the integers it holds at Loihi's widths: one byte
  per weight (8-bit mantissas), two per bias (13-bit mantissas) and per initial
  potential, four per threshold;
* **connection sparsity**: the share of zero weights in the Linear and Conv synapses;
* **activation sparsity**: the share of zero outputs of the activation layers over all
  samples and time steps (the ANN: its ReLU-like activations, one step; the converted
  network: the spikes of every spiking layer, T steps);
* **synaptic operations** per sample, per synapse and time step as NeuroBench's
  ``single_layer_MACs`` counts them: *dense*, every connection (weights and inputs taken
  as all ones; zero padding adds none); *effective*, the connections whose weight and
  input are both non-zero. A synapse's effective operations are ACs when every input
  value it sees is in {-1, 0, 1}, MACs otherwise: spikes are ACs, the graded input,
  sigma-delta messages (and every ANN layer) MACs.

Membrane updates are not reported: NeuroBench counts them through snnTorch's hooks,
which a Loihi neuron does not have; every neuron is updated every step (``neurons * T``,
:mod:`.cost`). The tests check these figures against the ``neurobench`` package's own
functions where it is installed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from ..ir import FixedNetwork, Synapse
from ..sim.inputs import quantize_input
from ..sim.results import RunResult
from .cost import fanout, synapses_by_source

#: Bytes per stored integer of the converted network (Loihi's widths, rounded up).
WEIGHT_BYTES, BIAS_BYTES, V0_BYTES, VTH_BYTES = 1, 2, 2, 4


@dataclass(frozen=True)
class NeuroBenchRow:
    """NeuroBench's metrics for one network (per sample where a count)."""

    network: str
    footprint_bytes: int
    connection_sparsity: float
    activation_sparsity: float
    dense_synops: float
    effective_macs: float
    effective_acs: float


def _dense_connections(synapse: Synapse, in_shape: tuple[int, ...]) -> float:
    """Connections of a synapse with every weight and input one (NeuroBench's dense)."""
    ones = dataclasses.replace(synapse, weight=np.ones_like(np.asarray(synapse.weight)))
    return float(fanout(ones, in_shape).sum())


def snn_metrics(net: FixedNetwork, result: RunResult, x, name: str = "SNN") -> NeuroBenchRow:
    """NeuroBench's metrics of ``result``, a run of ``net`` on samples ``x`` (see the
    module docstring)."""
    T, n = result.timesteps, len(x)
    x_int = quantize_input(net, x).reshape(n, -1)
    graded_ac = bool(np.all(np.isin(x_int, (-1, 0, 1))))
    shapes = [tuple(net.input_shape)] + [layer.shape for layer in net.layers]
    counts = [(x_int != 0).astype(np.float64) * T] + [
        np.asarray(result.spike_counts[layer.name], dtype=np.float64) for layer in net.layers]
    dense = macs = acs = 0.0
    weights = zeros = 0
    for synapse, source in synapses_by_source(net):
        ops = float((counts[source] @ fanout(synapse, shapes[source])).mean())
        if (source == 0 and not graded_ac) or net.neuron_model == "sdnn":
            macs += ops  # graded values (sigma-delta messages are graded too)
        else:
            acs += ops
        dense += T * _dense_connections(synapse, shapes[source])
        weights += int(np.size(synapse.weight))
        zeros += int(np.size(synapse.weight) - np.count_nonzero(synapse.weight))
    spiking = [layer for layer in net.layers if layer.spiking]
    outputs = sum(layer.size for layer in spiking) * T * n
    fired = sum(float(result.spike_counts[layer.name].sum()) for layer in spiking)
    footprint = sum(
        WEIGHT_BYTES * sum(int(np.size(s.weight)) for s in (layer.synapse, *layer.skips)
                           if s is not None)
        + BIAS_BYTES * int(np.size(layer.bias)) + V0_BYTES * int(np.size(layer.v0))
        + VTH_BYTES * int(np.size(layer.vth))
        for layer in net.layers)
    return NeuroBenchRow(name, footprint, zeros / weights if weights else 0.0,
                         1 - fired / outputs if outputs else 0.0, dense, macs, acs)


@torch.no_grad()
def ann_metrics(model: torch.nn.Module, x, name: str = "ANN") -> NeuroBenchRow:
    """NeuroBench's metrics of a torch ANN on samples ``x`` (one step; every Linear and
    Conv layer's inputs are activations: MACs unless all in {-1, 0, 1})."""
    model = model.eval()
    inputs: list[tuple[torch.nn.Module, torch.Tensor]] = []
    outputs: list[torch.Tensor] = []
    stateless = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)
    activations = (torch.nn.ReLU, torch.nn.ReLU6, torch.nn.Hardtanh)

    def on_input(module, args, _):
        inputs.append((module, args[0].detach()))

    def on_output(_, __, out):
        outputs.append(out.detach())

    from ..layers import QCFS, ThresholdReLU

    hooks = []
    for module in model.modules():
        if isinstance(module, stateless):
            hooks.append(module.register_forward_hook(on_input))
        elif isinstance(module, (*activations, QCFS, ThresholdReLU)):
            hooks.append(module.register_forward_hook(on_output))
    try:
        model(torch.as_tensor(np.asarray(x), dtype=torch.float32))
    finally:
        for hook in hooks:
            hook.remove()
    n = len(x)
    dense = macs = acs = 0.0
    for module, inp in inputs:
        effective = _layer_ops(module, (inp != 0).to(inp.dtype), nonzero_weights=True)
        dense += _layer_ops(module, torch.ones_like(inp), nonzero_weights=False)
        if bool(torch.all((inp == 0) | (inp == 1) | (inp == -1))):
            acs += effective
        else:
            macs += effective
    layers = dict.fromkeys(m for m, _ in inputs)  # each layer once, however often it ran
    weights = sum(m.weight.numel() for m in layers)
    zeros = sum(int((m.weight == 0).sum()) for m in layers)
    total = sum(o.numel() for o in outputs)
    fired = sum(int(torch.count_nonzero(o)) for o in outputs)
    footprint = sum(p.numel() * p.element_size() for p in model.parameters()) + sum(
        b.numel() * b.element_size() for b in model.buffers())
    return NeuroBenchRow(name, footprint, zeros / weights if weights else 0.0,
                         1 - fired / total if total else 0.0, dense / n, macs / n, acs / n)


def _layer_ops(module: torch.nn.Module, inp: torch.Tensor, nonzero_weights: bool) -> float:
    """Connections of ``module`` on 0/1 input ``inp``: through its non-zero weights, or
    through all of them (bias left out, as NeuroBench does)."""
    weight = (module.weight != 0) if nonzero_weights else torch.ones_like(module.weight)
    weight = weight.to(inp.dtype)
    if isinstance(module, torch.nn.Linear):
        return float(torch.nn.functional.linear(inp, weight).sum())
    conv = {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d,
            3: torch.nn.functional.conv3d}[weight.dim() - 2]
    return float(conv(inp, weight, stride=module.stride, padding=module.padding,
                      dilation=module.dilation, groups=module.groups).sum())


def neurobench_line(row: NeuroBenchRow | dict) -> str:
    """One line: the NeuroBench figures of ``row`` (or of its fields, as a summary's JSON
    holds them)."""
    if isinstance(row, dict):
        row = NeuroBenchRow(**row)
    def count(v: float) -> str:
        return f"{v:,.0f}" if v < 1e9 else f"{v:.3g}"

    return (f"{row.network}: footprint {row.footprint_bytes:,} B, connection sparsity "
            f"{row.connection_sparsity:.3f}, activation sparsity "
            f"{row.activation_sparsity:.3f}, synaptic operations per sample: dense "
            f"{count(row.dense_synops)}, effective MACs {count(row.effective_macs)}, "
            f"effective ACs {count(row.effective_acs)}")


