"""How the fixed-point reference computes each layer, chosen once per run from bounds.

Every layer runs Lava's arithmetic exactly; what varies is the cheapest number format
that proves it so:

* synaptic sums run in float32 where the largest possible sum is a whole number below
  ``2**24`` (else float64), and a conv's 24-bit wrap is skipped where the bound shows it
  a no-op;
* a non-leaky IF layer whose ``u`` provably never wraps and whose whole step current
  (``a_in << STATE_SHIFT`` plus bias) stays below ``2**24`` keeps ``v`` as whole numbers
  in float32 (:func:`~lava_convert.sim.neuron.whole_float_if_step`): the shift is folded
  into the weights and the bias into the synaptic sum, which saves elementwise passes
  over the state every step; every other layer keeps int32 state like Lava's
  (:func:`~lava_convert.sim.neuron.fixed_step`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ConfigError, InputError
from ..hw.loihi import (
    ACCUMULATOR_LIMIT,
    CONV_WRAP,
    IF_DU,
    IF_DV,
    STATE_SHIFT,
    U_WRAP,
    WEIGHT_PRESHIFT_BITS,
)
from ..ir import FixedLayer, FixedNetwork, Synapse
from .inputs import check_recording_memory
from .neuron import NeuronState, effective_bias, fixed_step, whole_float_if_step
from .synapse import PooledWeight, current, lava_input, pooled_form, prepare_weight

log = logging.getLogger(__name__)

#: float32 holds every whole number of magnitude up to this exactly.
FLOAT32_WHOLE = 2**24


def current_bound(synapse: Synapse | None, max_input: float) -> float:
    """Largest |partial sum| of a synapse's input (``None``: an input layer) for payloads
    of magnitude <= ``max_input``, in any order of summation: ``max_input`` times the
    largest row sum of ``|w|``."""
    if synapse is None:
        return float(max_input)
    pos, neg = _sign_sums(torch.as_tensor(np.asarray(synapse.weight)).reshape(
        len(synapse.weight), -1))
    return float((pos - neg).max()) * max_input


def box_bound(weight: np.ndarray, bias, lo, hi, skips=()) -> float:
    """Largest |W s + b + sum_k W_k s_k| over inputs with lo <= s <= hi and shortcut spikes
    0 <= s_k <= 1 (exact for a box; conv: per channel, ``lo``/``hi`` scalars; zero
    padding lies inside the box when lo <= 0 <= hi). Spikes are never negative, so for
    them a row reaches at most its positive weights and at least minus its negative ones,
    about half of :func:`current_bound`. The quantizer sizes its scales with it; the
    reference uses it to prove that ``u`` cannot wrap."""
    w = torch.as_tensor(np.asarray(weight)).reshape(len(weight), -1)
    if np.ndim(lo) == 0 and np.ndim(hi) == 0 and lo <= hi:
        # scalar box: each row's sums of each sign (exact for integer weights), then the box
        pos, neg = _sign_sums(w)
        top, bottom = pos * hi + neg * lo + bias, pos * lo + neg * hi + bias
    else:  # one range per input (a dense first layer)
        w = w.numpy().astype(np.float64, copy=False)
        top = np.maximum(w * hi, w * lo).sum(axis=1) + bias
        bottom = np.minimum(w * hi, w * lo).sum(axis=1) + bias
    for skip in skips:
        k_pos, k_neg = _sign_sums(torch.as_tensor(np.asarray(skip.weight)).reshape(
            len(skip.weight), -1))
        top, bottom = top + k_pos, bottom + k_neg
    return float(max(np.abs(top).max(), np.abs(bottom).max()))


def _sign_sums(w: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Each row's sum of its positive and of its negative entries (int64 for integers,
    float64 otherwise), in torch: on every core, without float copies of integers."""
    w = w.to(torch.float64 if w.is_floating_point() else torch.int64)
    return w.clamp(min=0).sum(dim=1).numpy(), w.clamp(max=0).sum(dim=1).numpy()


def exact_dtype(bound: float) -> torch.dtype:
    """float32 if every partial sum is an integer below 2**24 in magnitude, else float64."""
    return torch.float32 if bound < FLOAT32_WHOLE else torch.float64


@dataclass(frozen=True)
class LayerKernel:
    """One layer's arithmetic for a run: its tensors on the device and its number format.

    ``whole_float``: ``v`` is a float32 tensor of whole numbers and :meth:`current`
    returns ``(a_in << STATE_SHIFT) + bias``; otherwise the state is an int32
    :class:`NeuronState` and :meth:`current` returns the int32 ``a_in``.
    """

    layer: FixedLayer
    whole_float: bool
    dtype: torch.dtype  # of the payloads and synaptic sums
    weight: torch.Tensor | PooledWeight | None  # whole_float: times 2**STATE_SHIFT
    skip_weights: tuple[torch.Tensor | PooledWeight, ...]
    bias: torch.Tensor  # effective (state units); float32 when whole_float
    conv_wrap: bool
    skip_wrap: tuple[bool, ...]
    wrap_u: bool

    def start(self, batch: int, device) -> NeuronState | torch.Tensor:
        """The state before the first step (``v = v0``)."""
        shape = (batch, *self.layer.shape)
        state = NeuronState.zeros(shape, dtype=torch.float32 if self.whole_float else torch.int32,
                                  device=device, v0=self.layer.v0)
        return state.v if self.whole_float else state

    def current(self, payload: torch.Tensor, skip_spikes=()) -> torch.Tensor:
        """This step's input for the neurons, from the main synapse's ``payload`` and each
        shortcut's source spikes."""
        layer, B = self.layer, payload.shape[0]
        if self.whole_float:
            if layer.synapse is None:
                out = payload.reshape(B, *layer.shape) * (1 << STATE_SHIFT) + self.bias
            elif layer.kind == "conv" and self.bias.dim() == 1:  # channel-wise: conv adds it
                out = current(layer.synapse, payload, self.weight, self.bias)
            else:
                out = current(layer.synapse, payload, self.weight) + self.bias
            for skip, w, s in zip(layer.skips, self.skip_weights, skip_spikes):
                out = out + current(skip, s.to(w.dtype), w)
            return out
        out = lava_input(layer, payload, self.weight, self.conv_wrap)
        for skip, w, wrap, s in zip(layer.skips, self.skip_weights, self.skip_wrap,
                                    skip_spikes):
            out = out + lava_input(skip, s.to(w.dtype), w, wrap)
        return out

    def step(self, state, current_in: torch.Tensor):
        """One step: (new state, spikes: 0/1 float32 if ``whole_float``, else bool)."""
        layer = self.layer
        if self.whole_float:
            return whole_float_if_step(state, current_in, vth=layer.vth, reset=layer.reset)
        return fixed_step(state, current_in, vth=layer.vth, bias=self.bias, bias_exp=0,
                          du=layer.du, dv=layer.dv, reset=layer.reset, wrap_u=self.wrap_u)

    def peaks(self, state, current_in: torch.Tensor) -> torch.Tensor:
        """int64 ``[max |u|, max |v|, -min v]`` after a step with input ``current_in``
        (what :meth:`current` returned); in whole numbers ``u`` is that input less the
        bias, exactly (both are whole numbers below ``2**24``)."""
        if self.whole_float:
            bias = self.bias
            if self.layer.kind == "conv" and bias.dim() == 1:
                bias = bias.view(-1, 1, 1)
            u, v = current_in - bias, state
        else:
            u, v = state.u, state.v
        return torch.stack([u.abs().max(), v.abs().max(), -v.min()]).to(torch.int64)

    def voltage(self, state) -> torch.Tensor:
        """``v`` (whole numbers, int32 or float32)."""
        return state if self.whole_float else state.v


def plan_kernels(net: FixedNetwork, max_input: float, device, *,
                 allow_whole_float: bool = True) -> list[LayerKernel]:
    """Each layer's :class:`LayerKernel`; payloads of the first layer are at most
    ``max_input`` in magnitude (negative too where ``net.input_signed``), later layers
    receive binary spikes. A conv whose kernel is a folded average pooling computes as
    sum pooling and the smaller kernel (:func:`~lava_convert.sim.synapse.pooled_form`)."""
    kernels = []

    def in_shape(source: int) -> tuple[int, ...]:
        return net.input_shape if source < 0 else net.layers[source].shape

    for i, layer in enumerate(net.layers):
        payload = max_input if i == 0 else 1
        main = current_bound(layer.synapse, payload)
        # the finished sum (u's input), main synapse and shortcuts together
        signed = i == 0 and net.input_signed
        reach = (float(payload) if layer.synapse is None else
                 box_bound(layer.synapse.weight, 0.0, -payload if signed else 0, payload,
                           layer.skips))
        # NetX pre-shifts dense weights; Lava's int32 accumulator then wraps where we
        # would not. Converted networks stay far below this.
        if layer.kind == "dense" and main * 2**WEIGHT_PRESHIFT_BITS >= ACCUMULATOR_LIMIT:
            log.warning("layer %s: synaptic sums up to %.3g may overflow Lava's int32 "
                        "accumulator; the reference is exact only below %d", layer.name, main,
                        U_WRAP)
        skips = [current_bound(k, 1) for k in layer.skips]
        total = main + sum(skips)  # all synapses together
        bias = effective_bias(torch.as_tensor(layer.full_bias(), dtype=torch.int32,
                                              device=device), layer.bias_exp)
        bias_max = int(bias.abs().max()) if bias.numel() else 0
        # with du = IF_DU, u is this step's input alone: no wrap if reach << 6 <= U_WRAP
        wrap_u = not (layer.du == IF_DU and reach * (1 << STATE_SHIFT) <= U_WRAP)
        conv_wrap, skip_wrap = main >= CONV_WRAP // 2, tuple(b >= CONV_WRAP // 2 for b in skips)
        whole = (allow_whole_float and layer.du == IF_DU and layer.dv == IF_DV
                 and not (wrap_u or conv_wrap or any(skip_wrap))
                 and total * (1 << STATE_SHIFT) + bias_max < FLOAT32_WHOLE)
        gain = (1 << STATE_SHIFT) if whole else 1
        dtype = torch.float32 if whole else exact_dtype(main)
        weight = (None if layer.synapse is None else
                  prepare_weight(layer.synapse, in_shape(i - 1), dtype, device, gain))
        skip_weights = tuple(
            prepare_weight(k, in_shape(k.source), torch.float32 if whole else exact_dtype(b),
                           device, gain)
            for k, b in zip(layer.skips, skips))
        kernels.append(LayerKernel(
            layer=layer, whole_float=whole, dtype=dtype, weight=weight,
            skip_weights=skip_weights, bias=_whole_float_bias(layer, bias) if whole else bias,
            conv_wrap=conv_wrap, skip_wrap=skip_wrap, wrap_u=wrap_u))
    return kernels


def _whole_float_bias(layer: FixedLayer, bias: torch.Tensor) -> torch.Tensor:
    """The effective bias as float32, one value per channel where a conv layer's bias is
    channel-wise (the convolution then adds it), else one per neuron."""
    if layer.kind == "conv" and np.shape(layer.bias) == (layer.shape[0],):
        bias = bias[:, 0, 0]
    return bias.to(torch.float32)


def products_per_step(net: FixedNetwork) -> int:
    """Multiplications one time step of one sample costs the reference: each synapse's
    weights times its output positions, folded poolings counted in their pooled form
    (:func:`~lava_convert.sim.synapse.pooled_form`). The measure of a network's size that
    passes use to fit their sample counts to a budget."""
    total = 0
    for i, layer in enumerate(net.layers):
        positions = int(np.prod(layer.shape[1:])) if len(layer.shape) == 3 else 1
        for synapse in ((layer.synapse,) if layer.synapse is not None else ()) + layer.skips:
            source = i - 1 if synapse is layer.synapse else synapse.source
            shape = net.input_shape if source < 0 else net.layers[source].shape
            pooled = pooled_form(synapse, shape)
            weights = (pooled[0] if pooled is not None else synapse.weight).size
            total += weights * (positions if synapse.kind == "conv" else 1)
    return total


#: Multiply-accumulates a run may declare (products per step x T x samples) before it is
#: refused unasked: a file is untrusted, and a small one can declare days of work. About
#: three hours of the reference at the CIFAR VGG-16's rate in the ``scaling`` section of
#: benchmarks/RESULTS.md (3.1e8 products per step; 10,000 of its images at T=32 declare
#: 1.0e14). The environment variable raises it (``0``: no limit).
MAX_WORK = 2**50
MAX_WORK_ENV = "LAVA_CONVERT_MAX_WORK"


def check_run_size(net: FixedNetwork, timesteps: int, samples: int, where: str) -> None:
    """Refuse, before anything runs, a run of ``net`` on ``samples`` samples whose spike
    counts would not fit the memory available
    (:func:`~lava_convert.sim.inputs.check_recording_memory`) or whose multiply-accumulates
    (:func:`products_per_step` x ``timesteps`` x ``samples``) pass :data:`MAX_WORK` or
    ``$LAVA_CONVERT_MAX_WORK``."""
    check_recording_memory(sum(layer.size for layer in net.layers), samples, where)
    env = os.environ.get(MAX_WORK_ENV)
    try:
        limit = MAX_WORK if env is None else int(float(env))
        if limit < 0:
            raise ValueError(limit)
    except (ValueError, OverflowError) as exc:
        raise ConfigError(f"{MAX_WORK_ENV}={env!r} is not a number of multiply-accumulates "
                          "(0: no limit)") from exc
    per_step = products_per_step(net)
    work = per_step * timesteps * samples
    if limit > 0 and work > limit:
        fits = limit // max(1, per_step * timesteps)
        raise InputError(
            f"{where}: {samples:,} samples x T={timesteps:,} x {per_step:,} multiply-"
            f"accumulates per step is {work:.3g}, past the limit of {limit:.3g}: run fewer "
            f"samples at a time (at most {fits:,}; the command line: --limit) or fewer time "
            f"steps, or raise the limit with {MAX_WORK_ENV}=N (0: none) if you mean it")
