"""``Network``: a NetX file as one hierarchical Lava process, the drop-in for
``lava.lib.dl.netx.hdf5.Network`` that honours every extension lava-convert writes.

It takes the constructor parameters of stock NetX's ``Network`` and has its ports and
attributes (``inp``, ``out``, ``layers``, ``in_layer``, ``out_layer``,
``input_message_bits``, ``output_message_bits``, ``len()``, ``str()``), so it goes into
a user's own process graph the way lava-dl's tutorials use NetX::

    net = Network(net_config="netx_exports/mnist_cnn_qcfs.net", reset_interval=16,
                  reset_offset=1)  # a source sending from step 1, as for stock NetX
    source.s_out.connect(net.inp)
    net.out.connect(sink.a_in)
    net.run(condition=RunSteps(num_steps=...), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))

``run_cfg=lava_convert.lava_run_config()`` runs the same graph with our exact torch
convolution in place of Lava's scipy one (same spikes, much faster on wide layers).

The layers are lava-dl's own NetX blocks (``netx.blocks.process.Dense``/``Conv``/
``Input``, weights through NetX's ``optimize_weight_bits``, exactly as stock NetX builds
them) with :class:`~lava_convert.lava.procs.process.SoftResetLIF` neurons built from
the file's reset mode, initial potential ``v0`` and per-neuron biases (which hold the
conversion's shifts). Residual layers get their shortcut synapses, each behind a
:class:`~lava_convert.lava.procs.process.SpikeDelay` line where the paths into the
layer differ by more than one synapse, all summed at the layer's neurons.

Nothing global is changed: stock NetX's ``Network`` and its neuron lookup stay as they
are, so stock Networks built in the same program remain stock.

Differences from stock NetX, each deliberate:

* the file is read by :func:`lava_convert.netx.read_netx` (checked key by key);
  ``net_config`` may also be a :class:`~lava_convert.ir.FixedNetwork`;
* ``input_message_bits`` defaults to the file's graded-input width (stock: 0);
* with ``reset_interval``, every layer's state is reset (to ``u = 0, v = v0``) when the
  data of a new sample reaches it: layer ``l`` resets at steps
  ``reset_offset + depth(l) + k * reset_interval``, where ``depth`` counts the synapses
  from the input (each delays by one step). That is stock NetX's numbering (its ``i``-th
  layer with neurons resets at ``reset_offset + i``, from 1), so the same arguments give
  the same resets: ``reset_offset=1`` for input sent from step 1 on (a ring-buffer
  source), as stock needs. Without it, state is never reset (as stock);
* ``num_layers`` and ``skip_layers`` count layers with neurons (stock counts HDF5
  groups).

Sigma-delta files (NetX ``SDNN``) are built as stock builds them: Lava's ``Delta`` for
the input layer, ``SigmaDelta`` (ReLU) or ``Sigma`` for the others, graded messages of
``SDNN_MESSAGE_BITS`` bits, ``spike_exp`` as given; they take no ``reset_interval``
(stock ignores it for them, with a warning).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from lava.lib.dl.netx.blocks.process import Conv, Dense, Input
from lava.lib.dl.netx.utils import optimize_weight_bits
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.proc.conv.process import Conv as ConvSynapse
from lava.proc.dense.process import Dense as DenseSynapse
from lava.proc.sdn.process import Delta, Sigma, SigmaDelta

from lava_convert.errors import ConfigError
from lava_convert.hw.loihi import SDNN_MESSAGE_BITS, SDNN_STATE_EXP
from lava_convert.ir import FixedLayer, FixedNetwork, Synapse, layer_depths, skip_delays
from lava_convert.lava.procs.process import SoftResetLIF, SpikeDelay
from lava_convert.netx.reader import read_netx


def lava_conv_weight(synapse: Synapse) -> np.ndarray:
    """A conv synapse's kernel as NetX hands it to Lava: the PyTorch kernel flipped for
    Lava's convolution, then ordered (C_out, W, H, C_in)."""
    return synapse.weight[:, :, ::-1, ::-1].transpose(0, 3, 2, 1)


def _whc(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(reversed(shape))


class Network(AbstractProcess):
    """A lava-convert NetX file as a hierarchical Lava process (see the module docstring).

    Args:
        net_config: Path of the ``.net`` file, or a FixedNetwork.
        num_layers: Build only the first ``num_layers`` layers with neurons.
        skip_layers: Leave out the first ``skip_layers`` layers; the network then takes
            that layer's spikes as input.
        input_message_bits: Graded input width (default: the file's; 0 for binary).
        input_shape: Optional check: the input shape in (x, y, f) order, as for NetX.
        reset_interval: Steps per sample; state resets when a sample's data arrives.
        reset_offset: Phase of the reset, as for stock NetX (input of sample ``k`` sent
            from step ``reset_offset + k * reset_interval`` on: ``1`` for a ring-buffer
            source).
        spike_exp: Fractional bits of sigma-delta messages (as stock NetX; LIF layers
            do not use it).
        sparse_fc_layer: Dense layers use Lava's sparse synapses, as in NetX.
        record_windows: Record spike counts per sample window in each layer's
            ``neuron.spike_counts`` (a ring of this many windows; 0: no recording), and
            the readout's final ``v`` in ``neuron.v_end``. Needs ``reset_interval``.
    """

    def __init__(self, net_config: str | Path | FixedNetwork, num_layers: int | None = None,
                 skip_layers: int = 0, input_message_bits: int | None = None,
                 input_shape: tuple[int, ...] | None = None,
                 reset_interval: int | None = None, reset_offset: int = 0, spike_exp: int = 6,
                 sparse_fc_layer: bool = False, *, record_windows: int = 0) -> None:
        # the base class first: Lava's clean-up expects it even if a check below fails
        super().__init__(net_config=str(net_config) if not isinstance(
            net_config, FixedNetwork) else "<FixedNetwork>", num_layers=num_layers,
            input_message_bits=input_message_bits)
        network = net_config if isinstance(net_config, FixedNetwork) else read_netx(net_config)
        first, last = _layer_range(network, num_layers, skip_layers)
        bits = network.input_bits if input_message_bits is None else int(input_message_bits)
        if first > 0:
            bits = 0  # the input is then the spikes of the last skipped layer
        if reset_interval is not None and (isinstance(reset_interval, bool)
                                           or int(reset_interval) < 1):
            raise ConfigError(f"reset_interval={reset_interval!r} is invalid: use the number "
                              "of steps per sample, or None for no reset")
        if record_windows and reset_interval is None:
            raise ConfigError("record_windows needs reset_interval (the window length)")
        if network.neuron_model == "sdnn" and (reset_interval is not None or record_windows):
            raise ConfigError("sigma-delta (SDNN) neurons have no reset and no spike-count "
                              "windows in Lava: build the network without reset_interval and "
                              "record_windows, and run each sample in a fresh network")
        self.filename = None if isinstance(net_config, FixedNetwork) else str(net_config)
        self.network = network
        self.num_layers, self.skip_layers = num_layers, skip_layers
        self.input_message_bits = bits
        self.reset_interval, self.reset_offset = reset_interval, reset_offset
        self.spike_exp, self.sparse_fc_layer = spike_exp, sparse_fc_layer
        self.record_windows = int(record_windows)
        self.first_layer = first
        layers = network.layers
        in_shape = tuple(network.input_shape) if first == 0 else tuple(layers[first - 1].shape)
        self.input_shape = _whc(in_shape)
        if input_shape is not None and tuple(input_shape) != self.input_shape:
            raise ConfigError(f"input_shape={tuple(input_shape)} does not match the file's "
                              f"input {self.input_shape} (x, y, f order)")
        depths = layer_depths(layers)
        base = depths[first - 1] if first > 0 else 0
        self.layers: list[AbstractProcess] = []
        shape, message_bits = in_shape, bits
        for index in range(first, last):
            layer = layers[index]
            block = self._block(layer, shape, message_bits, depths[index] - base)
            if self.layers:
                previous = self.layers[-1].out
                if layer.kind == "dense" and len(shape) == 3:
                    previous = previous.transpose([2, 1, 0]).flatten()  # as NetX wires it
                previous.connect(block.inp if layer.kind != "input" else block.neuron.a_in)
            self.layers.append(block)
            shape, message_bits = tuple(layer.shape), block.output_message_bits
        self.in_layer, self.out_layer = self.layers[0], self.layers[-1]
        first_layer = layers[first]
        if first_layer.kind == "input":  # NetX leaves Input.inp unconnected; we feed a_in
            self.inp = InPort(shape=self.in_layer.neuron.a_in.shape)
            self.inp.connect(self.in_layer.neuron.a_in)
        else:  # a dense first layer reads a 3-D input flattened in C,H,W order, as NetX
            self.inp = InPort(shape=self.in_layer.inp.shape)
            self.inp.connect(self.in_layer.inp)
        self.out = OutPort(shape=self.out_layer.out.shape)
        self.out_layer.out.connect(self.out)
        self.output_message_bits = self.out_layer.output_message_bits
        self.shortcuts = [self._shortcut(t, k, delay)
                          for t, delays in enumerate(skip_delays(layers)) if first <= t < last
                          for k, delay in enumerate(delays)]

    def __len__(self) -> int:
        """Number of layers (blocks) built."""
        return len(self.layers)

    def __str__(self) -> str:
        rows = [f"{'layer':<16} {'kind':<6} {'shape (WHC)':<16} {'reset':<5} {'shortcuts'}"]
        for layer in self.network.layers[self.first_layer:self.first_layer + len(self.layers)]:
            rows.append(f"{layer.name:<16} {layer.kind:<6} {str(_whc(layer.shape)):<16} "
                        f"{layer.reset:<5} {len(layer.skips)}")
        return "\n".join(rows)

    def _neuron_params(self, layer: FixedLayer, start: int) -> dict:
        if layer.neuron == "sdnn":  # as stock NetX: Delta, Sigma or SigmaDelta (ReLU)
            if layer.kind == "input":
                return dict(neuron_proc=Delta, vth=layer.vth, spike_exp=self.spike_exp,
                            state_exp=SDNN_STATE_EXP, num_message_bits=SDNN_MESSAGE_BITS)
            if not layer.spiking:
                return dict(neuron_proc=Sigma, num_message_bits=SDNN_MESSAGE_BITS)
            return dict(neuron_proc=SigmaDelta, vth=layer.vth, spike_exp=self.spike_exp,
                        state_exp=SDNN_STATE_EXP, num_message_bits=SDNN_MESSAGE_BITS)
        window = 0 if self.reset_interval is None else int(self.reset_interval)
        return dict(neuron_proc=SoftResetLIF, bias_key="bias_mant", vth=layer.vth, du=layer.du,
                    dv=layer.dv, bias_exp=layer.bias_exp, reset_mode=layer.reset, window=window,
                    start=start, record_windows=self.record_windows,
                    v0=layer.v0 if np.ndim(layer.v0) == 0 else _lava_order(layer.full_v0()),
                    record_v=bool(self.record_windows) and not layer.spiking,
                    num_message_bits=0)

    def _block(self, layer: FixedLayer, in_shape: tuple[int, ...], message_bits: int,
               depth: int) -> AbstractProcess:
        """A lava-dl NetX block for ``layer`` with our neuron, built the way NetX builds it."""
        neuron_params = self._neuron_params(layer, start=self.reset_offset + depth)
        whc = _whc(layer.shape)
        # Lava's Delta (a sigma-delta input layer) and Sigma take no bias
        biasless = layer.neuron == "sdnn" and (layer.kind == "input" or not layer.spiking)
        bias = None if biasless else _lava_order(layer.full_bias())
        if layer.kind == "input":  # stock's transform: the file's, for the user's code
            weight, offset = self.network.input_transform
            return Input(shape=whc, neuron_params=neuron_params, bias=bias,
                         transform={"weight": weight, "bias": offset})
        if layer.kind == "dense":
            weight, num_bits, exponent, sign_mode = optimize_weight_bits(layer.weight)
            return Dense(shape=whc, neuron_params=neuron_params, weight=weight,
                         num_weight_bits=num_bits, weight_exponent=exponent,
                         sign_mode=sign_mode, input_message_bits=message_bits, bias=bias,
                         sparse_synapse=self.sparse_fc_layer)
        g = layer.geometry
        return Conv(input_shape=_whc(in_shape), shape=whc, neuron_params=neuron_params,
                    weight=lava_conv_weight(layer.synapse), stride=np.array(g.stride[::-1]),
                    padding=np.array(g.padding[::-1]), dilation=np.array(g.dilation[::-1]),
                    groups=g.groups, input_message_bits=message_bits, bias=bias)

    def _shortcut(self, t: int, k: int, delay: int) -> list[AbstractProcess]:
        """Shortcut ``k`` of layer ``t``: source spikes -> SpikeDelay (if the paths differ
        by more than one synapse) -> synapse -> layer ``t``'s neurons, which add it to
        their main input."""
        skip = self.network.layers[t].skips[k]
        if skip.source < self.first_layer:
            raise ConfigError(f"layer {self.network.layers[t].name!r} has a shortcut from a "
                              f"skipped layer: skip fewer layers (skip_layers <= {skip.source})")
        source = self.network.layers[skip.source]
        upstream = self.layers[skip.source - self.first_layer].out
        procs: list[AbstractProcess] = []
        if delay:
            line = SpikeDelay(shape=_whc(source.shape), delay=delay)
            upstream.connect(line.s_in)
            upstream, procs = line.s_out, [line]
        if skip.kind == "dense":
            weight, num_bits, exponent, _ = optimize_weight_bits(skip.weight)
            synapse = DenseSynapse(weights=weight, weight_exp=exponent,
                                   num_weight_bits=num_bits, num_message_bits=0)
            if len(source.shape) == 3:
                upstream = upstream.transpose([2, 1, 0]).flatten()
        else:
            g = skip.geometry
            synapse = ConvSynapse(input_shape=_whc(source.shape), weight=lava_conv_weight(skip),
                                  stride=np.array(g.stride[::-1]),
                                  padding=np.array(g.padding[::-1]),
                                  dilation=np.array(g.dilation[::-1]), groups=g.groups,
                                  num_message_bits=0)
        upstream.connect(synapse.s_in)
        synapse.a_out.connect(self.layers[t - self.first_layer].neuron.a_in)
        return procs + [synapse]


def _layer_range(network: FixedNetwork, num_layers, skip_layers) -> tuple[int, int]:
    """``(first, end)`` indices of the layers to build, validated."""
    n = len(network.layers)
    for name, value in (("num_layers", num_layers), ("skip_layers", skip_layers)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 0):
            raise ConfigError(f"{name}={value!r} is invalid: use a whole number >= 0")
    end = n if num_layers is None else min(n, num_layers)
    first = skip_layers or 0
    if first >= end:
        raise ConfigError(f"skip_layers={skip_layers} and num_layers={num_layers} leave no "
                          f"layer of the file's {n} to build")
    return first, end


def _lava_order(values: np.ndarray) -> np.ndarray:
    """Per-neuron values of a layer (C,H,W or n) in Lava's W,H,C order."""
    return values.transpose(2, 1, 0) if values.ndim == 3 else values
