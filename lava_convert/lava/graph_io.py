"""Images in, spike counts out: the bookkeeping around a NetX network in a user's own Lava
graph, for our :class:`~lava_convert.lava.procs.network.Network` and for stock
``lava.lib.dl.netx.hdf5.Network`` alike::

    net = Network(net_config=path, reset_interval=T, reset_offset=1)
    source, steps = lc.lava_source(net, x)        # quantized, x,y,f order, T steps each
    sinks = lc.lava_sinks(net, steps)             # one ring buffer per layer
    net.run(condition=RunSteps(num_steps=steps), run_cfg=lc.lava_run_config())
    counts = lc.lava_counts(net, sinks, len(x))   # per layer (samples, neurons), C,H,W
    net.stop()

What they do for you: quantize the images as the file says (``x_int = round(x *
input_scale)``), put each into the order of ``net.inp`` (C,H,W -> NetX's x,y,f; flat in
C,H,W order for a dense first layer), hold each sample for ``T`` steps from step 1 (so
``reset_offset=1``), run one extra step per synapse so the last sample leaves the
readout, and cut every layer's spike train at ``k*T + depth`` (each synapse delays by one
step) back into per-sample counts in the reference's order, so that
``lc.simulate(path, x).spike_counts`` is what ``lava_counts`` returns.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, InputError
from ..ir import FixedNetwork, layer_depths
from ..netx.reader import read_netx
from ..sim.inputs import check_input, check_input_range, quantize_input, resolve_timesteps
from .compat import ensure_lava


def port_layout(net: FixedNetwork, x_int: np.ndarray, first_kind: str) -> np.ndarray:
    """Quantized samples ``(N, *input_shape)`` in the order of a NetX network's input port:
    NetX's (x, y, f) for images into a conv or input layer, flat in C,H,W order for a
    dense first layer (as NetX flattens)."""
    data = x_int.reshape(len(x_int), *net.input_shape)
    if len(net.input_shape) == 3 and first_kind != "dense":
        return data.transpose(0, 3, 2, 1)  # C,H,W -> Lava's W,H,C
    return data.reshape(len(data), -1)


def _file_network(process) -> tuple[FixedNetwork, int, int]:
    """(the file's network, index of the process's first layer, layers built) of our
    Network or of stock NetX's."""
    if isinstance(getattr(process, "network", None), FixedNetwork):  # ours
        return process.network, process.first_layer, len(process.layers)
    filename = getattr(process, "filename", None)
    if filename is None or not hasattr(process, "layers") or not hasattr(process, "inp"):
        raise ConfigError(f"{type(process).__name__} is not a NetX network process: pass "
                          "lava_convert.netx.Network or lava.lib.dl.netx.hdf5.Network")
    if getattr(process, "skip_layers", 0):
        raise ConfigError("a stock NetX network built with skip_layers takes another "
                          "layer's spikes as input: feed it yourself, or use "
                          "lava_convert.netx.Network")
    return read_netx(filename), 0, len(process.layers)


def lava_source(process, x, timesteps: int | None = None):
    """A Lava ring-buffer source holding images ``x`` for ``process`` (our or stock NetX's
    ``Network``), connected to its input port; and the number of steps to run.

    Each sample is sent on ``timesteps`` consecutive steps from step 1 (build the
    network with ``reset_interval=timesteps, reset_offset=1``), zeros after the last;
    the steps cover every sample through every layer.

    Raises:
        InputError: ``x`` does not have the file's input shape (naming the axis) or range.
    """
    ensure_lava()
    from lava.proc import io

    net, first, count = _file_network(process)
    if first:
        raise ConfigError("the network was built with skip_layers: its input is another "
                          "layer's spikes, not images")
    T = resolve_timesteps(timesteps, net)
    x = check_input(x, net.input_shape, "lava_source")
    check_input_range(net, x, "lava_source")
    payload = port_layout(net, quantize_input(net, x), net.layers[0].kind)
    shape = tuple(process.inp.shape)
    if payload.shape[1:] != shape:
        raise ConfigError(f"the network's input port has shape {shape}, the file's input "
                          f"{tuple(net.input_shape)} gives {payload.shape[1:]}: was it built "
                          "from another file?")
    steps = len(x) * T + layer_depths(net.layers[:count])[-1]
    data = np.zeros((*shape, steps), dtype=np.int32)
    for k, sample in enumerate(payload):
        data[..., k * T:(k + 1) * T] = sample[..., None]
    source = io.source.RingBuffer(data=data)
    source.s_out.connect(process.inp)
    return source, steps


def lava_sinks(process, steps: int) -> list:
    """One Lava ring-buffer sink per layer of ``process``, connected to the layer's
    output and long enough for ``steps`` steps."""
    ensure_lava()
    from lava.proc import io

    sinks = []
    for layer in process.layers:
        sink = io.sink.RingBuffer(shape=layer.out.shape, buffer=steps)
        layer.out.connect(sink.a_in)
        sinks.append(sink)
    return sinks


def lava_counts(process, sinks, samples: int, timesteps: int | None = None
                ) -> dict[str, np.ndarray]:
    """Spike counts ``(samples, neurons)`` per layer name, in the reference's C,H,W order,
    from the sinks of :func:`lava_sinks` after a run of the steps :func:`lava_source`
    gave (read them before ``stop()``)."""
    net, first, count = _file_network(process)
    if len(sinks) != count:
        raise ConfigError(f"{len(sinks)} sinks for a network of {count} layers: use the "
                          "sinks lava_sinks made for it")
    T = resolve_timesteps(timesteps, net)
    layers = net.layers[first:first + count]
    depths = layer_depths(net.layers)
    base = depths[first - 1] if first else 0
    counts = {}
    for layer, depth, sink in zip(layers, depths[first:], sinks):
        train = np.asarray(sink.data.get())
        depth -= base
        if train.shape[-1] < samples * T + depth:
            raise InputError(f"layer {layer.name!r}: its sink holds {train.shape[-1]} steps, "
                             f"{samples} samples need {samples * T + depth}: run the steps "
                             "lava_source returned")
        per_sample = [train[..., k * T + depth:(k + 1) * T + depth].sum(axis=-1)
                      for k in range(samples)]
        counts[layer.name] = np.stack(
            [c.transpose(2, 1, 0) if c.ndim == 3 else c for c in per_sample]
        ).reshape(samples, -1).astype(np.int64)
    return counts
