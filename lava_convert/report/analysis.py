"""What a report needs from a run: rates, ideal rates, a raster, accuracy per step, costs.

The *ideal rate* of a neuron is the spike rate the conversion aims at: the
activation of the clipped-ReLU network the file encodes, in spikes per step,
``r_l = clip((W_l r_{l-1} + b_l) / V_th^l, 0, 1)`` computed layer by
layer in the file's own integer units (``W_l`` and ``b_l`` as stored,
the input as graded payloads; a spike carries one unit of integer weight). Comparing
it with the measured SNN rate shows where conversion loses information.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ..ir import FixedNetwork
from ..sim.inputs import quantize_input
from ..sim.reference import simulate_fixed
from ..sim.results import RunResult
from ..sim.synapse import layer_current
from .cost import run_cost
from .neurobench import snn_metrics
from .summary import LayerSummary, RunSummary

#: Points per layer kept for the rate scatter; neurons and steps kept for the raster.
SCATTER_POINTS, RASTER_NEURONS = 2000, 40


def ideal_rates(net: FixedNetwork, x) -> list[np.ndarray]:
    """Per layer ``(samples, neurons)`` ideal spike rates (see module docstring)."""
    inp = torch.as_tensor(quantize_input(net, np.asarray(x)).reshape(len(x), *net.input_shape),
                          dtype=torch.float64)
    rates, shaped = [], []
    for layer in net.layers:
        bias = torch.as_tensor(layer.bias_units(), dtype=torch.float64)
        if layer.synapse is None:
            current = inp.reshape(len(x), *layer.shape) + bias
        else:
            bias = bias if layer.kind == "dense" else bias[:, 0, 0]  # per channel
            current = layer_current(layer, inp, [shaped[k.source] for k in layer.skips],
                                    bias=bias)
        if not layer.spiking:
            rates.append(current.reshape(len(x), -1).numpy() / layer.scale)  # logits
            break
        rate = torch.clamp(current / layer.vth, 0.0, 1.0)
        rates.append(rate.reshape(len(x), -1).numpy())
        inp = rate  # a spike carries one unit of the next layer's integer weight
        shaped.append(rate)
    return rates


def run_summary(net: FixedNetwork, result: RunResult, x, y, *, ann_accuracy: float | None = None,
                ann_samples: int | None = None,
                seed: int = 0, network: str | None = None,
                dataset: str | None = None) -> RunSummary:
    """A :class:`RunSummary` of ``result`` (a run of ``net`` on ``x`` with labels ``y``)."""
    rng = np.random.default_rng(seed)
    T = result.timesteps
    ideal = ideal_rates(net, x)
    layers = []
    for i, layer in enumerate(net.layers):
        counts = np.asarray(result.spike_counts[layer.name], dtype=np.float64)
        checked = net.check.layer(layer.name) if net.check is not None else None
        entry = dict(name=layer.name, kind=layer.kind, neurons=layer.size,
                     spiking=layer.spiking, spikes_per_sample=float(counts.sum(axis=1).mean()),
                     rate=float(counts.mean() / T),
                     rate_error_quantization=None if checked is None else checked.rate_error)
        if layer.spiking:
            measured, target = (counts / T).reshape(-1), ideal[i].reshape(-1)
            pick = rng.choice(measured.size, min(SCATTER_POINTS, measured.size), replace=False)
            entry["scatter"] = {"ideal": target[pick].round(5).tolist(),
                                "snn": measured[pick].round(5).tolist()}
            entry["rate_correlation"] = (float(np.corrcoef(measured, target)[0, 1])
                                         if measured.std() > 0 and target.std() > 0 else None)
            entry["rate_mae"] = float(np.abs(measured - target).mean())
        layers.append(LayerSummary(**entry))
    first = simulate_fixed(net, np.asarray(x)[:1], T, record_trains=True)
    raster = {}
    for layer in net.layers:
        if layer.spiking:
            train = first.spike_trains[layer.name][0]  # (T, neurons)
            active = np.flatnonzero(train.any(axis=0))[:RASTER_NEURONS]
            raster[layer.name] = [np.flatnonzero(train[:, n]).tolist() for n in active]
    return RunSummary(
        backend=result.backend, samples=result.num_samples, timesteps=T,
        accuracy=result.accuracy(y), ann_accuracy=ann_accuracy, ann_samples=ann_samples,
        spikes_per_sample=result.spikes_per_sample(), wall_time_s=result.wall_time_s,
        layers=tuple(layers), raster_first_sample=raster,
        cost=run_cost(net, result, x).to_dict(),
        neurobench=dataclasses.asdict(snn_metrics(net, result, x, f"SNN T={T}")),
        accuracy_per_step=None if result.predictions_per_step is None
        else result.accuracy_curve(y).tolist(),
        network=network, dataset=dataset)
