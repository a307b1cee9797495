"""Loihi's fixed-point ranges as Lava 0.10 / NetX (lava-dl 0.6) implement them: the one
place these numbers are written.

* Lava left-shifts the synaptic input, the threshold and (NetX) the bias by
  ``STATE_SHIFT`` bits; NetX always loads the bias exponent as ``BIAS_EXP``, so
  one bias unit equals one unit of synaptic current.
* State is 24 bit: ``v`` saturates at ``+-V_MAX``, ``u`` wraps at ``U_WRAP``,
  so ``v`` holds ``STATE_LIMIT`` current units.
* The threshold mantissa is unsigned 17 bit, the bias mantissa signed 13 bit.
* Decays are 12 bit (``DECAY_UNITY`` = 4096); ``IF_DU, IF_DV`` make a
  non-leaky integrate-and-fire neuron.
* Dense weights: NetX re-expresses integers up to ``WEIGHT_MAX`` as an 8-bit
  mantissa with a shared exponent (``optimize_weight_bits``); conv weights go
  to Lava's ``Conv`` unchanged (8-bit signed, ``CONV_WEIGHT_MAX``) and its
  output wraps at ``CONV_WRAP`` (24 bit).
* Graded spikes carry at most ``MAX_MESSAGE_BITS`` bits.
* Sigma-delta (NetX ``SDNN``) neurons hold int32 state with ``SDNN_STATE_EXP``
  fractional bits below their messages and ``SDNN_SPIKE_EXP`` in them: the threshold and
  the bias count ``2**(SDNN_SPIKE_EXP + SDNN_STATE_EXP)`` state units.
"""

from __future__ import annotations

#: Lava shifts the synaptic input, the threshold and the bias left by 6 bits.
STATE_SHIFT = 6
#: NetX always loads the bias exponent as 6: one bias unit is one current unit.
BIAS_EXP = 6
#: Largest bias exponent lava-convert writes (its own loader honours it; stock NetX cannot):
#: a bias mantissa then counts 2**(exp - 6) current units.
BIAS_EXP_MAX = 14
#: 24-bit state: ``v`` saturates at +-V_MAX, ``u`` wraps at 2**23.
V_MAX = 2**23 - 1
U_WRAP = 2**23
#: Largest threshold mantissa (unsigned 17 bit).
VTH_MAX = 2**17 - 1
#: Current units that ``v`` can hold: ``(2**23 - 1) >> 6``.
STATE_LIMIT = V_MAX >> STATE_SHIFT
#: Largest bias mantissa magnitude (signed 13 bit).
BIAS_MANT_MAX = 2**12 - 1
#: 12-bit decays: a decay ``d`` keeps ``(4096 - d) / 4096`` of the state per step.
DECAY_UNITY = 4096
#: Decay constants of a non-leaky IF neuron: u holds this step's input only, v never leaks.
IF_DU, IF_DV = 4095, 0


def fixed_decays(du: float, dv: float) -> tuple[int, int]:
    """Lava's 12-bit ``du``, ``dv`` for real-valued decays per step (share lost per step):
    ``u`` keeps ``(4095 - du) / 4096`` of itself, ``v`` keeps ``(4096 - dv) / 4096``
    (``lava/proc/lif/models.py``); ``du = 1`` gives ``IF_DU``. Rounded to nearest."""
    du_fixed = DECAY_UNITY - 1 - int(round(DECAY_UNITY * (1.0 - du)))
    dv_fixed = int(round(DECAY_UNITY * dv))
    return min(max(du_fixed, 0), DECAY_UNITY - 1), min(max(dv_fixed, 0), DECAY_UNITY - 1)
#: Dense weights: NetX re-expresses integers up to 254 as an 8-bit mantissa and exponent.
WEIGHT_MAX = 254
#: Conv weights: NetX passes them to Lava's Conv unchanged (no exponent): 8-bit signed.
CONV_WEIGHT_MAX = 127
#: Largest weight magnitude Lava can hold at all (8-bit mantissa, exponent <= 7).
WEIGHT_HARD_MAX = 2**15
#: Lava's Conv synapse wraps its output to 24-bit two's complement.
CONV_WRAP = 2**24
#: Widest graded spike payload.
MAX_MESSAGE_BITS = 24
#: NetX's sigma-delta neurons (``Delta``, ``SigmaDelta``): fractional bits of the state
#: below a message (NetX fixes it) and in a message (``netx.hdf5.Network``'s
#: ``spike_exp``, 6 unless its caller says otherwise).
SDNN_STATE_EXP = 6
SDNN_SPIKE_EXP = 6
#: Bits of a sigma-delta message where the file names none (stock NetX's default).
SDNN_MESSAGE_BITS = 16
#: Largest sigma-delta threshold and bias mantissas: shifted by
#: ``SDNN_SPIKE_EXP + SDNN_STATE_EXP`` bits they stay within the 24-bit state.
SDNN_VTH_MAX = 2**11 - 1
SDNN_BIAS_MAX = 2**11 - 1
#: NetX pre-shifts dense weights by up to 8 bits (``optimize_weight_bits``) before Lava's
#: int32 accumulator sums them: sums beyond ``ACCUMULATOR_LIMIT`` wrap.
WEIGHT_PRESHIFT_BITS = 8
ACCUMULATOR_LIMIT = 2**31
#: The threshold NetX gives a dense layer without a ``neuron`` group: one ``v`` cannot
#: reach (it saturates below), so the layer only integrates.
NETX_INTEGRATOR_VTH = 1 << 17


#: NetX clips dense weights below this before ``optimize_weight_bits`` (and above WEIGHT_MAX).
DENSE_WEIGHT_MIN = -256
#: NetX clamps synaptic delays beyond this (lava-dl ``netx.hdf5``).
MAX_SYNAPTIC_DELAY = 62

# Loihi 2 capacities, for estimates only (see lava_convert.report.loihi2 for the sources):
#: Neuro-cores, neurons and synapses per chip (Intel Labs, Loihi 2 technology brief, 2021).
CORES_PER_CHIP = 128
NEURONS_PER_CHIP = 2**20  # "1 million" in the brief: 8192 per core
SYNAPSES_PER_CHIP = 120_000_000
#: Input axons per core: Loihi 1's published figure (Davies et al., IEEE Micro 2018, Table 1).
FAN_IN_PER_CORE = 4096


def weight_limit(kind: str) -> int:
    """Largest integer weight magnitude NetX can carry for a synapse kind."""
    return CONV_WEIGHT_MAX if kind == "conv" else WEIGHT_MAX


def payload_max(bits: int, signed: bool) -> int:
    """Largest graded-input payload magnitude for ``bits`` (one bit is the sign if ``signed``)."""
    return 2 ** (bits - int(signed)) - 1


def netx_decays(du: int, dv: int) -> tuple[int, int]:
    """NetX's ``(iDecay, vDecay)`` for Lava's ``(du, dv)``: NetX loads ``du = iDecay - 1``."""
    return du + 1, dv


def lava_decays(i_decay: int, v_decay: int) -> tuple[int, int]:
    """Lava's ``(du, dv)`` for NetX's ``(iDecay, vDecay)`` (the inverse of :func:`netx_decays`)."""
    return i_decay - 1, v_decay
