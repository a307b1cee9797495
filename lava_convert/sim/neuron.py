"""The one definition of the neuron step, shared by every simulator.

Two arithmetic flavours of the same integrate-and-fire (IF/LIF) neuron:

* :func:`float_step`: real-valued, in the units of the converted network
  (threshold ``vth``, input current per step ``I``)::

      u = u * (1 - du) + I
      v = v * (1 - dv) + u + bias
      s = v > vth                      (strict, binary)
      v = v - vth * s   (soft reset)   or   v = v * (1 - s)   (hard reset)

* :func:`fixed_step`: bit-accurate to Lava's ``fixed_pt`` LIF models
  (``lava/proc/lif/models.py``, ``AbstractPyLifModelFixed``), with integer
  state in "Lava units" (the integer current unit shifted left by 6 bits)::

      u = wrap24( trunc0(u * (4096 - du - 1) / 4096) + (a_in << 6) )
      v = sat24 ( trunc0(v * (4096 - dv) / 4096) + u + (bias_mant << bias_exp) )
      s = v > (vth << 6)
      v = v - (vth << 6) * s   (soft)   or   v = 0 where s   (hard, Lava's LIF)

  ``trunc0`` truncates toward zero; ``wrap24`` is Lava's two's complement wrap
  (values above 2**23 lose 2**24, values at or below -2**23 gain 2**24);
  ``sat24`` clips to ``[-(2**23 - 1), 2**23 - 1]``. ``du = 4095, dv = 0`` is a
  non-leaky IF neuron whose ``u`` is this step's input only.

The spike rule (:func:`fires`, strict ``>``) and the reset rule (:func:`apply_reset`) are
written once here; the Lava process model (:mod:`lava_convert.lava.procs.models`)
calls them and runs Lava's own code for the sub-threshold part; the tests check
it against these functions.
Both functions work on torch tensors (any device) and return new tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..hw.loihi import BIAS_EXP, DECAY_UNITY, IF_DU, IF_DV, STATE_SHIFT, U_WRAP, V_MAX
from ..ir.snn import ResetMode


@dataclass(frozen=True)
class NeuronState:
    """Membrane state of a layer: current ``u`` and voltage ``v`` (same shape)."""

    u: torch.Tensor
    v: torch.Tensor

    @classmethod
    def zeros(cls, shape, *, dtype, device=None, v0=0) -> NeuronState:
        """``u = 0`` and ``v = v0`` for a batch of ``shape``; ``v0`` is one number, one per
        neuron of a sample (``shape[1:]``) or, for a conv layer, one per channel."""
        u = torch.zeros(shape, dtype=dtype, device=device)
        if np.ndim(v0) == 0:
            return cls(u=u, v=torch.full_like(u, v0))
        start = torch.as_tensor(np.asarray(v0), device=device).to(dtype)
        if start.ndim == 1 and len(shape) == 4:  # one per channel of a conv layer
            start = start.view(-1, 1, 1)
        return cls(u=u, v=u + start)


def _trunc_decay(x: torch.Tensor, keep: int) -> torch.Tensor:
    """``trunc0(x * keep / 4096)`` on integers (sign * (|x*keep| >> 12)), product in int64."""
    if keep == DECAY_UNITY:
        return x
    if keep == 0:
        return torch.zeros_like(x)
    y = x.to(torch.int64) * keep
    return (torch.sign(y) * (torch.abs(y) >> 12)).to(x.dtype)


def _wrap24(x: torch.Tensor) -> torch.Tensor:
    """Lava's wrap of ``u``: ``x > 2**23 -> x - 2**24``; ``x <= -2**23 -> x + 2**24``."""
    y = torch.where(x > U_WRAP, x - 2 * U_WRAP, x)
    return torch.where(y <= -U_WRAP, x + 2 * U_WRAP, y)


def effective_bias(bias, bias_exp: int):
    """Lava's bias in state units: ``bias_mant << bias_exp`` (right shift if negative)."""
    if bias_exp == 0:
        return bias
    return bias << bias_exp if bias_exp > 0 else bias >> -bias_exp


def fixed_step(
    state: NeuronState,
    a_in: torch.Tensor,
    *,
    vth: int,
    bias: torch.Tensor | int = 0,
    bias_exp: int = BIAS_EXP,
    du: int = IF_DU,
    dv: int = IF_DV,
    reset: ResetMode = "soft",
    wrap_u: bool = True,
) -> tuple[NeuronState, torch.Tensor]:
    """One Lava fixed-point LIF step on integer tensors; returns (new state, spikes as bool).

    ``a_in`` is the integer synaptic input of this step (sum of weights times
    payloads), ``bias`` the bias mantissa, ``vth`` the threshold mantissa. With
    int32 tensors the sums wrap at 32 bits exactly as Lava's int32 numpy
    arithmetic does; int64 tensors give the same result wherever those sums fit.
    ``wrap_u=False`` skips the 24-bit wrap of ``u``: only for callers that
    have proven ``|u| <= 2**23`` (it is then a no-op).
    """
    u = a_in << STATE_SHIFT
    if du != IF_DU:  # du = 4095: the old current decays to exactly zero
        u = _trunc_decay(state.u, DECAY_UNITY - (du + 1)) + u
    if wrap_u:
        u = _wrap24(u)
    v = _trunc_decay(state.v, DECAY_UNITY - dv) + u + effective_bias(bias, bias_exp)
    v = torch.clamp(v, -V_MAX, V_MAX)
    vth_eff = vth << STATE_SHIFT
    spikes = fires(v, vth_eff)
    return NeuronState(u=u, v=apply_reset(v, spikes, vth_eff, reset)), spikes


def whole_float_if_step(v: torch.Tensor, current: torch.Tensor, *, vth: int,
                        reset: ResetMode = "soft") -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`fixed_step` of a non-leaky IF neuron (``du = IF_DU, dv = IF_DV``) whose ``u``
    never wraps, on ``v`` held as whole numbers in a float tensor; returns (new ``v``,
    spikes as 0/1 of ``v``'s dtype). ``current`` is this step's
    ``(a_in << STATE_SHIFT) + bias`` (bias already shifted). ``v`` is updated in place
    (four passes over it in all).

    Equal to :func:`fixed_step` while ``|current| < 2**24`` in float32 (``2**53`` in
    float64): ``v`` leaves every step a whole number of magnitude at most ``V_MAX``, so
    ``v + current`` is exact wherever it lies within ``2**24``; beyond that it exceeds
    ``V_MAX`` however float32 rounds it (rounding is monotonic), and the clamp saturates
    it exactly as Lava does.
    """
    v = torch.clamp_(v.add_(current), -V_MAX, V_MAX)
    vth_eff = vth << STATE_SHIFT
    spikes = fires(v, vth_eff, out=torch.empty_like(v))
    return apply_reset(v, spikes, vth_eff, reset), spikes


def float_step(
    state: NeuronState,
    current: torch.Tensor,
    *,
    vth: float,
    bias: torch.Tensor | float = 0.0,
    du: float = 1.0,
    dv: float = 0.0,
    reset: ResetMode = "soft",
) -> tuple[NeuronState, torch.Tensor]:
    """One real-valued LIF step; ``du = 1, dv = 0`` is the IF neuron of conversion."""
    u = state.u * (1.0 - du) + current
    v = state.v * (1.0 - dv) + u + bias
    spikes = fires(v, vth)
    return NeuronState(u=u, v=apply_reset(v, spikes, vth, reset)), spikes


def fires(v, vth, out=None):
    """The spike rule: a neuron fires when ``v > vth`` (strict), numpy or torch. With a
    torch tensor ``out`` the spikes are written there as 0/1 of its dtype."""
    return v > vth if out is None else torch.gt(v, vth, out=out)


def apply_reset(v, spikes, vth, mode: ResetMode):
    """The reset rule, numpy or torch: where ``spikes``, ``v - vth`` (``"soft"``: the
    residual charge is kept) or ``0`` (``"hard"``, Lava's LIF); elsewhere ``v``.
    Returns a new array of ``v``'s dtype; torch ``spikes`` given as 0/1 of ``v``'s
    dtype update ``v`` in place instead (one pass for the soft reset)."""
    if isinstance(v, torch.Tensor):
        if spikes.dtype == v.dtype:
            return v.sub_(spikes, alpha=vth) if mode == "soft" else v.mul_(1 - spikes)
        return torch.where(spikes, v - vth if mode == "soft" else torch.zeros_like(v), v)
    return np.where(spikes, v - vth if mode == "soft" else 0, v).astype(v.dtype, copy=False)
