"""Where the reference simulators run and how many samples they take at once."""

from __future__ import annotations

import torch

from ..errors import ConfigError


def device(name=None) -> torch.device:
    """The torch device ``name``; by default CUDA when available, else the CPU."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


#: Default samples per batch: small batches stay in the CPU's caches (on 2 cores, 4096
#: samples at T=16: the MNIST CNN export 9.2 s at 512 vs 31.1 s at 16384, the MNIST MLP
#: 0.24 s vs 0.48 s); a GPU wants large ones.
CPU_BATCH, GPU_BATCH = 512, 16384


#: Working memory a batch may take (bytes); the batch shrinks for large networks.
MEMORY_BUDGET = 2**30
#: Bytes of state and temporaries per neuron and sample (u, v, counts, input, spikes).
BYTES_PER_NEURON = 32


def batch_size(size: int | None, dev: torch.device, neurons: int = 0) -> int:
    """Samples per batch: ``size`` if given, else the device's default, capped so that a
    batch of a network of ``neurons`` stays within ``MEMORY_BUDGET``."""
    if size is None:
        size = CPU_BATCH if dev.type == "cpu" else GPU_BATCH
        return max(1, min(size, MEMORY_BUDGET // max(1, neurons * BYTES_PER_NEURON)))
    if size < 1:
        raise ConfigError(f"batch_size={size} is invalid: pass a positive number")
    return int(size)
