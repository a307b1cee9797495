"""The readout, defined once: class scores from the output layer's spikes and potential.

With ``readout="potential"`` the output layer integrates without spiking and the
score of a class is its accumulated potential per step in real units,
``(count * vth + v) / T`` (a spike, where one happens, subtracted ``vth``); with
``readout="spikes"`` it is the spike rate ``count / T``. The class is the argmax.
Works on numpy arrays and torch tensors alike.
"""

from __future__ import annotations

from ..hw.loihi import STATE_SHIFT


def scores(counts, v, *, spiking: bool, timesteps: int, vth: float = 0.0, unit: float = 1.0):
    """Class scores of ``(samples, classes)`` float64 ``counts`` and final ``v``.

    ``vth`` and ``v`` are in the state's units; ``unit`` converts them to real units
    (for fixed point: :func:`fixed_unit`)."""
    if spiking:
        return counts / timesteps
    return (counts * vth + v) / (unit * timesteps)


def fixed_unit(scale: float) -> float:
    """Lava state units per real unit of a layer quantized with ``scale``."""
    return float((1 << STATE_SHIFT) * scale)
