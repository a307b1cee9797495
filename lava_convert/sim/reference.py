"""Reference simulator: batched over samples in torch, on CPU or GPU.

``mode="fixed"`` reproduces Lava's fixed-point run of a NetX file step by
step (:func:`lava_convert.sim.neuron.fixed_step`), including the graded input
quantization, the wrap of ``u`` and saturation of ``v``. ``mode="float"``
runs the same network in real arithmetic (:func:`~lava_convert.sim.neuron.float_step`).

Timing. In Lava every synaptic layer delays its input by one step, and each
layer's reset follows the data (see :mod:`lava_convert.lava.runtime`), so every
layer sees exactly the ``T`` steps of the previous layer's output for the same
sample. Residual shortcuts are delayed in Lava until they arrive together with
the main path (:func:`~lava_convert.ir.fixed.skip_delays`), so a shortcut adds the
current of its source's spikes of the same step. Simulating all layers in the
same step index is therefore exact.
Only the current state is kept: memory does not grow with ``T``.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import ConfigError
from ..hw.loihi import (
    BIAS_EXP,
    STATE_SHIFT,
    payload_max,
)
from ..ir import FixedLayer, FixedNetwork, SnnNetwork, SpikingLayer, Synapse
from . import readout
from .batching import batch_size as _batch_size
from .batching import device as _device
from .inputs import (
    check_input,
    check_input_range,
    check_recording_memory,
    check_timesteps,
    quantize_input,
)
from .kernels import check_run_size, plan_kernels
from .neuron import NeuronState, float_step
from .results import BatchRecordings, RunResult
from .sigma_delta import simulate_sigma_delta
from .synapse import layer_current, prepare_weight


def simulate_fixed(net: FixedNetwork, x, timesteps: int, *, device=None,
                   batch_size: int | None = None, record_trains: bool = False,
                   track_state: bool = False, progress: bool = False,
                   whole_float: bool = True) -> RunResult:
    """Run ``net`` in Lava's fixed-point arithmetic on samples ``x``.

    Each layer runs in the cheapest number format a bound proves exact
    (:mod:`lava_convert.sim.kernels`): int32 state like Lava's, or whole numbers in
    float32 for IF layers whose currents stay small. The first layer's input is the
    same on every step of a sample, so its current is computed once per batch. With
    ``record_trains`` the result also holds every layer's spikes at every step
    (``spike_trains``, memory grows with T); otherwise only counts. With
    ``track_state`` ``info["state_max"]`` holds per layer the largest ``|u|``
    and ``|v|`` after each step and the lowest ``v`` (``"v_min"``, at most 0;
    for headroom reports and the 24-bit floor; three reductions per step).
    ``whole_float=False`` keeps every layer in int32 state like Lava's (same results,
    slower; for comparisons). A sigma-delta network (NetX ``SDNN``) runs in
    :func:`~lava_convert.sim.sigma_delta.simulate_sigma_delta`.
    """
    if net.neuron_model == "sdnn" and track_state:
        raise ConfigError("track_state: sigma-delta networks keep no LIF state to track")
    T = check_timesteps(timesteps)
    x = check_input(x, net.input_shape, "simulate")
    check_run_size(net, T, len(x), "simulate")
    check_input_range(net, x, "simulate")
    dev = _device(device)
    if net.neuron_model == "sdnn":
        return simulate_sigma_delta(net, x, T, dev, batch_size=batch_size,
                                    record_trains=record_trains, progress=progress)
    start = time.perf_counter()
    max_in = payload_max(net.input_bits, net.input_signed)
    kernels = plan_kernels(net, max_in, dev, allow_whole_float=whole_float)
    recordings = BatchRecordings(net.layer_names, record_trains)
    state_max = np.zeros((len(net.layers), 3), dtype=np.int64)  # largest |u|, |v|, -v
    batch_size = _batch_size(batch_size, dev, sum(l.size for l in net.layers))
    bar = tqdm(total=len(x), desc="reference", unit="sample", disable=not progress,
               leave=False)
    for lo in range(0, len(x), batch_size):
        xb = torch.as_tensor(quantize_input(net, x[lo:lo + batch_size]),
                             dtype=kernels[0].dtype, device=dev).reshape(-1, *net.input_shape)
        B = len(xb)
        first_input = kernels[0].current(xb)  # the same on every step of a sample
        states = [k.start(B, dev) for k in kernels]
        n_spikes = [torch.zeros((B, *l.shape), device=dev,
                                dtype=torch.float32 if k.whole_float else torch.int32)
                    for l, k in zip(net.layers, kernels)]  # float32 counts <= T are exact
        per_step, batch_trains = [], [[] for _ in net.layers]
        peak = [torch.zeros(3, dtype=torch.int64, device=dev) for _ in net.layers]
        for _ in range(T):
            s, spikes = None, []
            for i, (layer, kernel) in enumerate(zip(net.layers, kernels)):
                a_in = first_input if i == 0 else kernel.current(
                    s.to(kernel.dtype), [spikes[k.source] for k in layer.skips])
                states[i], s = kernel.step(states[i], a_in)
                n_spikes[i] += s
                spikes.append(s)
                if track_state:
                    peak[i] = torch.maximum(peak[i], kernel.peaks(states[i], a_in))
                if record_trains:
                    batch_trains[i].append(s.reshape(B, -1).bool().cpu().numpy())
            scores = _fixed_scores(net.layers[-1], n_spikes[-1],
                                   kernels[-1].voltage(states[-1]), T)
            per_step.append(torch.argmax(scores, dim=1))
        recordings.add(scores.cpu().numpy(), torch.stack(per_step).cpu().numpy(),
                       [c.reshape(B, -1).cpu().numpy().astype(np.int64) for c in n_spikes],
                       batch_trains)
        state_max = np.maximum(state_max, torch.stack(peak).cpu().numpy())
        bar.update(B)
    bar.close()
    return recordings.result(
        "reference-fixed", T, time.perf_counter() - start,
        {"device": str(dev),
         "state_max": {l.name: {"u": int(m[0]), "v": int(m[1]), "v_min": -int(m[2])}
                       for l, m in zip(net.layers, state_max)} if track_state else None})


def float_layer_step(layer, state: NeuronState, inp: torch.Tensor, skip_inputs,
                     weight: torch.Tensor, bias: torch.Tensor):
    """One real-valued step of a layer: its current (main synapse on ``inp``, shortcuts on
    ``skip_inputs``), then the neuron; returns (new state, spikes). With ``du == 1`` the
    bias is part of the current; otherwise Lava adds it to ``v`` (not to the decaying
    current), and so does this."""
    vth = layer.threshold if layer.spiking else float("inf")
    if layer.du == 1.0:
        current = layer_current(layer, inp, skip_inputs, weight, bias)
        return float_step(state, current, vth=vth, reset=layer.reset, dv=layer.dv)
    current = layer_current(layer, inp, skip_inputs, weight, torch.zeros_like(bias))
    if layer.kind == "conv" and bias.ndim == 1:
        bias = bias.view(1, -1, 1, 1)
    return float_step(state, current, vth=vth, bias=bias, du=layer.du, dv=layer.dv,
                      reset=layer.reset)


def simulate_float(snn: SnnNetwork, x, timesteps: int, *, device=None,
                   batch_size: int | None = None, record_trains: bool = False,
                   dtype: torch.dtype = torch.float64) -> RunResult:
    """Run ``snn`` in real-valued arithmetic (no quantization) on samples ``x``. With
    ``record_trains`` the result holds every layer's spikes at every step. ``dtype``:
    float64 (the default) or float32, several times faster for convolutions on CPU
    (a potential within rounding of the threshold may then fire one step apart)."""
    T = check_timesteps(timesteps)
    if dtype not in (torch.float32, torch.float64):
        raise ConfigError(f"dtype={dtype} is not supported: pass torch.float32 or "
                          "torch.float64")
    x = check_input(x, snn.input_shape, "simulate")
    check_recording_memory(sum(int(np.prod(l.out_shape)) for l in snn.layers), len(x),
                           "simulate")
    dev = _device(device)
    start = time.perf_counter()
    weights = [prepare_weight(l.synapse, snn.input_shape if i == 0 else
                              snn.layers[i - 1].out_shape or (), dtype, dev)
               for i, l in enumerate(snn.layers)]
    biases = [torch.as_tensor(l.bias, dtype=dtype, device=dev) for l in snn.layers]
    recordings = BatchRecordings([l.name for l in snn.layers], record_trains)
    batch_size = _batch_size(batch_size, dev, sum(int(np.prod(l.out_shape or (1,)))
                                                  for l in snn.layers))
    for lo in range(0, len(x), batch_size):
        xb = torch.as_tensor(x[lo:lo + batch_size], dtype=dtype, device=dev)
        B = len(xb)
        states, n_spikes, per_step = [None] * len(snn.layers), [0] * len(snn.layers), []
        trains = [[] for _ in snn.layers]
        output_shapes = _float_output_shapes(snn, xb, weights, biases)
        for _ in range(T):
            inp, spikes = xb, []
            for i, layer in enumerate(snn.layers):
                if states[i] is None:
                    states[i] = NeuronState.zeros(output_shapes[i], dtype=dtype,
                                                  device=dev, v0=layer.v0)
                states[i], s = float_layer_step(layer, states[i], inp,
                                                [spikes[k.source] for k in layer.skips],
                                                weights[i], biases[i])
                n_spikes[i] = n_spikes[i] + s.to(torch.int64)
                if record_trains:
                    trains[i].append(s.reshape(B, -1).cpu().numpy())
                inp = s.to(dtype)
                spikes.append(inp)
            last = snn.layers[-1]
            score = readout.scores(n_spikes[-1].reshape(B, -1).to(torch.float64),
                                   states[-1].v.reshape(B, -1).to(torch.float64),
                                   spiking=last.spiking, timesteps=T, vth=last.threshold)
            per_step.append(torch.argmax(score, dim=1))
        recordings.add(score.cpu().numpy(), torch.stack(per_step).cpu().numpy(),
                       [c.reshape(B, -1).cpu().numpy() for c in n_spikes], trains)
    return recordings.result("reference-float", T, time.perf_counter() - start,
                             {"device": str(dev)})


def _float_output_shapes(snn: SnnNetwork, xb: torch.Tensor, weights, biases) -> list:
    """Each layer's output shape (batch first) for the batch ``xb``, from one pass with
    all-zero spikes."""
    shapes, inp, outs = [], xb, []
    for i, layer in enumerate(snn.layers):
        out = layer_current(layer, inp, [outs[k.source] for k in layer.skips], weights[i],
                            biases[i])
        shapes.append(out.shape)
        inp = torch.zeros_like(out)
        outs.append(inp)
    return shapes


def float_layer_trains(layer, inputs: torch.Tensor, skip_inputs=(),
                       v0s: np.ndarray | None = None,
                       dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Spike trains ``(T, batch, *out_shape)`` of one real-valued layer driven by
    ``inputs`` ``(T, batch, *in_shape)`` and, for its shortcuts, ``skip_inputs`` (the
    source layers' trains): the per-layer form of :func:`simulate_float` (same
    neuron, same order), for passes that revisit one layer at a time. With ``v0s``
    (``K`` initial potentials instead of ``layer.v0``) the trains of each,
    ``(T, K, batch, *out_shape)``: the current does not depend on the start, so each
    step's is computed once. ``dtype`` as in :func:`simulate_float`."""
    weight = prepare_weight(layer.synapse, tuple(inputs.shape[2:]), dtype, inputs.device)
    bias = torch.as_tensor(layer.bias, dtype=dtype, device=inputs.device)
    state, trains = None, []
    for t, inp in enumerate(inputs):
        if state is None:
            shape = layer_current(layer, inp.to(dtype), [s[t] for s in skip_inputs],
                                  weight, bias).shape
            state = NeuronState.zeros(shape, dtype=dtype, device=inputs.device,
                                      v0=layer.v0)
            if v0s is not None:
                starts = torch.as_tensor(np.asarray(v0s, dtype=np.float64), dtype=dtype,
                                         device=inputs.device)
                state = NeuronState(u=state.u, v=starts.view(-1, *[1] * len(shape)) + state.u)
        state, s = float_layer_step(layer, state, inp.to(dtype),
                                    [s[t] for s in skip_inputs], weight, bias)
        trains.append(s)
    return torch.stack(trains)


def dequantize(net: FixedNetwork) -> SnnNetwork:
    """The real-valued network a FixedNetwork approximates (weights divided by scales)."""
    net.require_lif("mode='float'", "simulate it with mode='fixed', Lava's arithmetic")
    if any(layer.kind != "dense" for layer in net.layers):
        raise ConfigError("mode='float' of a file supports dense networks only; simulate the "
                          "ConvertedNetwork from lc.convert instead")
    layers, previous = [], 1.0 / net.input_scale
    for layer in net.layers:
        s = layer.scale
        layers.append(SpikingLayer(
            name=layer.name, synapse=Synapse("dense", layer.weight / s / previous),
            bias=layer.bias * 2.0 ** (layer.bias_exp - BIAS_EXP) / s,
            threshold=layer.vth / s if layer.spiking else 0.0, spiking=layer.spiking,
            reset=layer.reset, v0=layer.v0 / (1 << STATE_SHIFT) / s, out_shape=layer.shape,
        ))
        previous = 1.0  # later layers receive spikes of amplitude 1
    amplitude = payload_max(net.input_bits, net.input_signed) / net.input_scale
    return SnnNetwork(input_shape=net.input_shape, layers=tuple(layers), timesteps=net.timesteps,
                      input_range=(-amplitude if net.input_signed else 0.0, amplitude))



def _fixed_scores(last: FixedLayer, n_spikes: torch.Tensor, v: torch.Tensor,
                  T: int) -> torch.Tensor:
    """Class scores of the fixed-point readout layer (:func:`~lava_convert.sim.readout.scores`)."""
    B = n_spikes.shape[0]
    return readout.scores(n_spikes.reshape(B, -1).to(torch.float64),
                          v.reshape(B, -1).to(torch.float64), spiking=last.spiking, timesteps=T,
                          vth=last.vth << STATE_SHIFT, unit=readout.fixed_unit(last.scale))
