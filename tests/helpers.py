"""Test helpers (tests/ is on sys.path under pytest's default import mode)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run_python(code: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (import-time behaviour cannot be undone in-process)."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout)

#: The repository root (netx_exports/, tutorials/, README.md).
ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def fixed_layer(name: str, kind: str, shape, weight, bias, vth: int, *, stride=(1, 1),
                padding=(0, 0), dilation=(1, 1), groups: int = 1, skips=(), **neuron):
    """A FixedLayer from a weight array and conv settings (tests build many by hand)."""
    from lava_convert.ir import ConvGeometry, FixedLayer, Synapse

    synapse = None if weight is None else Synapse(
        kind, weight, geometry=ConvGeometry(tuple(stride), tuple(padding), tuple(dilation),
                                            groups))
    return FixedLayer(name=name, kind=kind, shape=tuple(shape), synapse=synapse, bias=bias,
                      vth=vth, skips=tuple(skips), **neuron)
