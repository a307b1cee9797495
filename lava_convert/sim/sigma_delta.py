"""Sigma-delta networks (NetX ``SDNN``) in Lava's fixed point, step by step.

What stock ``netx.hdf5.Network`` builds for ``SDNN`` neurons, as Lava 0.10's fixed-point
models compute it (``lava/proc/sdn/models.py``), with ``E = SDNN_SPIKE_EXP +
SDNN_STATE_EXP`` (12) and every quantity an int32 that wraps like numpy's:

* input layer (``Delta``): ``a = x << E``; ``delta = a - act + residue``;
* other layers (``SigmaDelta``, ReLU): ``sigma += a_in``;
  ``a = max(sigma + (bias << E), 0)``; ``delta = a - act + residue``;
* both then send ``delta >> SDNN_STATE_EXP`` where ``|delta| >= vth << E`` (else 0, and
  ``delta`` stays as ``residue``); ``act = a``;
* a layer with ``sigma_output`` (``Sigma``, ``spiking`` false): ``sigma += a_in``, sent
  every step.

``a_in`` is the layer's synapse on the previous layer's messages of the step before
(Lava's ``Dense`` and ``Conv`` send what they computed one step earlier): ``W m`` for
dense layers, with NetX's pre-shifted weights summed in an int32 accumulator
(:func:`dense_preshift`), and the 24-bit wrapped correlation for conv layers. Every
layer starts at rest on every sample (a fresh network in Lava: stock NetX does not reset
sigma-delta neurons between samples). The output is the last layer's accumulated input
(``Sigma``: its ``sigma``; ``SigmaDelta``: the sum of its messages, what a ``Sigma``
after it would hold).
"""

from __future__ import annotations

import time

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import InputError
from ..hw.loihi import (
    CONV_WRAP,
    DENSE_WEIGHT_MIN,
    SDNN_SPIKE_EXP,
    SDNN_STATE_EXP,
    WEIGHT_MAX,
)
from ..ir import FixedLayer, FixedNetwork
from .batching import batch_size as _batch_size
from .inputs import quantize_input
from .kernels import current_bound
from .results import BatchRecordings, RunResult
from .synapse import current, prepare_weight

#: Fractional bits a sigma-delta threshold and bias are shifted by.
SDNN_EXP = SDNN_SPIKE_EXP + SDNN_STATE_EXP
#: float64 holds every whole number of magnitude below this exactly.
FLOAT64_WHOLE = 2**53
#: Largest message magnitude: an int32 ``delta`` shifted right by the state exponent.
MESSAGE_MAX = 2**(31 - SDNN_STATE_EXP)


def wrap32(t: torch.Tensor) -> torch.Tensor:
    """int64 whole numbers as numpy's int32 arithmetic leaves them (two's complement)."""
    return ((t + 2**31) & (2**32 - 1)) - 2**31


def dense_preshift(weight: np.ndarray) -> int:
    """Bits NetX's ``optimize_weight_bits`` shifts a dense layer's integer weights left
    by before Lava's bit-accurate ``Dense`` sums them in int32 and shifts the sum back:
    ``floor(log2(scale)) + signed``, where ``scale`` takes the largest weight to 127
    (-128 for the smallest) with mixed signs, to 255 (-256) with one sign."""
    w = np.asarray(weight)
    top, low = int(w.max()), int(w.min())
    if top > WEIGHT_MAX and low < 0 or low < DENSE_WEIGHT_MIN and top > 0:
        top, low = min(top, WEIGHT_MAX), max(low, DENSE_WEIGHT_MIN)  # NetX clips them first
    if top < 0:
        scale, signed = -256 / low, 0
    elif low >= 0:
        if top == 0:
            return 0  # an all-zero matrix: every sum is 0 whatever the shift
        scale, signed = 255 / top, 0
    else:
        scale, signed = min(127 / top if top else np.inf, -128 / low), 1
    return int(np.floor(np.log2(scale))) + signed


class SigmaDeltaLayer:
    """One layer's synapse and neurons for a run (see the module docstring)."""

    def __init__(self, layer: FixedLayer, in_shape: tuple[int, ...], device) -> None:
        self.layer = layer
        self.input = layer.synapse is None
        self.vth = int(layer.vth) << SDNN_EXP
        self.bias = torch.as_tensor(layer.full_bias(), dtype=torch.int64,
                                    device=device) << SDNN_EXP
        self.weight = None
        self.preshift = 0
        if not self.input:
            bound = current_bound(layer.synapse, MESSAGE_MAX)
            if bound >= FLOAT64_WHOLE:
                raise InputError(f"layer {layer.name}: sums of messages up to {bound:.3g} "
                                 "are beyond the exact range of the reference (2**53)")
            self.weight = prepare_weight(layer.synapse, in_shape, torch.float64, device)
            if layer.kind == "dense":
                self.preshift = dense_preshift(layer.synapse.weight)

    def start(self, batch: int, device) -> dict[str, torch.Tensor]:
        zeros = torch.zeros((batch, *self.layer.shape), dtype=torch.int64, device=device)
        return {"sigma": zeros, "act": zeros, "residue": zeros}

    def synapse(self, messages: torch.Tensor) -> torch.Tensor:
        """``a_in`` for the neurons from the previous layer's messages (int64)."""
        out = current(self.layer.synapse, messages.to(torch.float64), self.weight)
        out = out.round().to(torch.int64).reshape(len(messages), *self.layer.shape)
        if self.layer.kind == "conv":  # Lava's Conv wraps its sums to 24 bits
            return ((out + CONV_WRAP // 2) & (CONV_WRAP - 1)) - CONV_WRAP // 2
        # Dense: the pre-shifted weights' int32 sum, shifted back (arithmetic shift)
        return wrap32(out << self.preshift) >> self.preshift

    def step(self, state: dict[str, torch.Tensor], a_in: torch.Tensor) -> torch.Tensor:
        """One step: updates ``state``; returns the messages sent (int64)."""
        if not self.layer.spiking:  # Sigma: its sum, every step
            state["sigma"] = wrap32(state["sigma"] + a_in)
            return state["sigma"]
        if self.input:  # Delta
            act = wrap32(a_in << SDNN_EXP)
        else:  # SigmaDelta with ReLU
            state["sigma"] = wrap32(state["sigma"] + a_in)
            act = torch.clamp(wrap32(state["sigma"] + self.bias), min=0)
        delta = wrap32(act - state["act"] + state["residue"])
        sent = torch.where(delta.abs() >= self.vth, delta, 0)
        state["residue"] = wrap32(delta - sent)
        state["act"] = act
        return sent >> SDNN_STATE_EXP


def message_unit(layer: FixedLayer) -> float:
    """A sigma-delta output layer's units per real unit: its accumulated messages carry
    ``SDNN_SPIKE_EXP`` fractional bits, a ``Sigma``'s sum ``SDNN_EXP`` (times the
    layer's ``scale``)."""
    return 2.0 ** (SDNN_SPIKE_EXP if layer.spiking else SDNN_EXP) * layer.scale


def readout(layer: FixedLayer, trains: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores (real units, ``(samples, neurons)``) and predictions after every step
    (``(T, samples)``) from an output layer's messages ``(samples, T, neurons)``: what a
    ``Sigma`` after it would hold (the running sum of its messages; a ``Sigma`` sends its
    own). The readout of :func:`simulate_sigma_delta` and of the Lava runs alike."""
    totals = np.cumsum(trains, axis=1) if layer.spiking else trains
    return totals[:, -1] / message_unit(layer), np.argmax(totals, axis=2).T


def simulate_sigma_delta(net: FixedNetwork, x: np.ndarray, T: int, dev: torch.device, *,
                         batch_size: int | None = None, record_trains: bool = False,
                         progress: bool = False) -> RunResult:
    """Run the sigma-delta network ``net`` on samples ``x`` (checked by
    :func:`~lava_convert.sim.reference.simulate_fixed`, which calls this) for ``T`` steps
    each, from rest, on ``dev``, exactly as Lava's fixed-point models (module docstring).
    ``spike_counts`` count each neuron's non-zero messages; with ``record_trains``,
    ``spike_trains`` holds every message (int64, ``(samples, T, neurons)``)."""
    if net.layers[0].synapse is not None:
        raise InputError(f"layer {net.layers[0].name}: a sigma-delta network starts with an "
                         "input layer (Lava's Delta), which this one lacks; add one")
    start = time.perf_counter()
    shapes = [net.input_shape] + [layer.shape for layer in net.layers[:-1]]
    layers = [SigmaDeltaLayer(layer, shape, dev) for layer, shape in zip(net.layers, shapes)]
    last = net.layers[-1]
    recordings = BatchRecordings(net.layer_names, record_trains)
    batch_size = _batch_size(batch_size, dev, 3 * sum(layer.size for layer in net.layers))
    bar = tqdm(total=len(x), desc="reference", unit="sample", disable=not progress,
               leave=False)
    for lo in range(0, len(x), batch_size):
        xb = torch.as_tensor(np.asarray(quantize_input(net, x[lo:lo + batch_size]),
                                        dtype=np.int64), device=dev)
        B = len(xb)
        states = [layer.start(B, dev) for layer in layers]
        sent = [torch.zeros((B, *layer.shape), dtype=torch.int64, device=dev)
                for layer in net.layers]  # last step's messages
        n_sent = [torch.zeros_like(s) for s in sent]
        batch_trains = [[] for _ in net.layers]
        readout_train = []  # the last layer's messages
        for _ in range(T):
            a_in = [xb.reshape(B, *net.input_shape)] + [
                layer.synapse(sent[i]) for i, layer in enumerate(layers[1:])]
            sent = [layer.step(state, a) for layer, state, a in zip(layers, states, a_in)]
            for i, s in enumerate(sent):
                n_sent[i] += s != 0
                if record_trains:
                    batch_trains[i].append(s.reshape(B, -1).cpu().numpy())
            readout_train.append(sent[-1].reshape(B, -1).cpu().numpy())
        recordings.add(*readout(last, np.stack(readout_train, axis=1)),
                       [c.reshape(B, -1).cpu().numpy() for c in n_sent], batch_trains)
        bar.update(B)
    bar.close()
    return recordings.result("reference-fixed", T, time.perf_counter() - start,
                             {"device": str(dev), "neurons": "sdnn", "state_max": None})
