"""The values that flow through a traced graph and the builder that turns them into
layers: currents not yet through an activation (:class:`Open`), activated outputs
(:class:`Out`), and the folds applied where they meet."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..errors import UnsupportedModuleError
from ..ir import ConvGeometry, Synapse
from .calls import pair
from .folds import (
    FoldError,
    Pool,
    batchnorm_affine,
    conv_synapses,
    fold_batchnorm,
    fold_pool_into_conv,
    fold_pools_into_dense,
    merge_linear,
)
from .support import unsupported

log = logging.getLogger(__name__)


def as_array(t: torch.Tensor | None, shape: tuple[int, ...], where: str) -> np.ndarray:
    if t is None:
        return np.zeros(shape)
    a = t.detach().to("cpu", torch.float64).numpy().copy()
    if not np.all(np.isfinite(a)):
        raise UnsupportedModuleError(
            f"parameters of '{where}' contain NaN or inf: retrain or repair the weights before "
            "converting"
        )
    return a


@dataclass
class Out:
    """A node whose value is layer ``index``'s activated output (-1: the network input),
    with average poolings still to fold into the next synapse."""

    index: int
    pools: tuple[Pool, ...] = ()


@dataclass
class Term:
    """One synapse feeding a layer under construction (``synapse.source``: the layer whose
    output it reads, -1 the network input), with the module path it came from."""

    where: str
    synapse: Synapse
    in_shape: tuple[int, ...]

    @property
    def source(self) -> int:
        return self.synapse.source

    def with_weight(self, weight: np.ndarray) -> Term:
        return dataclasses.replace(self, synapse=dataclasses.replace(self.synapse, weight=weight))


@dataclass
class Open:
    """A node whose value is a current ``sum(terms) + bias`` not yet through an activation."""

    name: str
    terms: list[Term]
    bias: np.ndarray
    out_shape: tuple[int, ...]


class Builder:
    """Collects layers while walking the traced graph; every node gets a value
    (:class:`Out` or :class:`Open`) and a layer is made when an activation closes
    an :class:`Open` current."""

    def __init__(self) -> None:
        self.layers: list[dict] = []
        self.notes: list[str] = []

    def note(self, text: str) -> None:
        self.notes.append(text)
        log.info(text)

    def _name(self, index: int) -> str:
        return "the network input" if index < 0 else f"'{self.layers[index]['name']}'"

    def activation(self, value, kind: str, clip: float | None, where: str,
                   levels: int | None = None) -> Out:
        if isinstance(value, Out):
            if value.pools and kind == "relu" and value.index >= 0:
                self.note(f"{where}: ReLU after average pooling of non-negative activations "
                          "is the identity; dropped")
                return value
            if value.pools:
                raise unsupported(where, f"a {kind} activation after average pooling",
                                   "pool after the activation (pooling is folded into the "
                                   "next layer), or use ReLU, which is exact there")
            raise unsupported(where, f"an activation ({kind}) that does not follow a Linear "
                               "or Conv2d layer", "put activations right after a layer")
        self.close(value, where, activation=kind, clip=clip, activation_name=where,
                   levels=levels)
        return Out(len(self.layers) - 1)

    def close(self, value: Open, where: str, **activation) -> None:
        """Make a layer of ``value``: its main synapse reads the last layer made, the other
        terms become shortcut synapses (:class:`~lava_convert.ir.Skip`)."""
        if len(value.terms) > 1 and any(t.source < 0 for t in value.terms):
            raise unsupported(where, "a shortcut from the network input",
                               "shortcuts carry spikes: begin the network with a layer "
                               "(e.g. a stem Conv2d + ReLU) before the first residual add")
        last = len(self.layers) - 1
        main = [t for t in value.terms if t.source == last]
        if len(main) != 1:
            what = "no input from" if not main else "two synapses from"
            raise unsupported(where, f"a layer with {what} the layer just before it "
                               f"({self._name(last)})", "residual blocks must be chains with "
                               "shortcuts that add into the block's last layer (a shortcut "
                               "may hold one Conv2d/Linear with BatchNorm, no activation)")
        skips = []
        for t in value.terms:
            if t is main[0]:
                continue
            skips.append(t.synapse)
            self.note(f"residual add into {value.name}: shortcut {t.where} from "
                      f"{self._name(t.source)}")
        m = main[0]
        layer = dict(name=value.name, synapse=m.synapse, bias=value.bias,
                     activation=None, clip=None, activation_name=None, levels=None,
                     in_shape=m.in_shape, out_shape=value.out_shape, skips=tuple(skips))
        layer.update(activation)
        self.layers.append(layer)

    def fold_batchnorm(self, value, bn: nn.modules.batchnorm._BatchNorm, where: str) -> Open:
        """y = (z - mean) * gamma / sqrt(var + eps) + beta, folded into every synapse of z."""
        if not isinstance(value, Open):
            raise unsupported(where, f"a {type(bn).__name__} that does not directly follow a "
                               "Linear or Conv2d layer", "put batch norm right after the layer "
                               "(before the activation)")
        if bn.running_mean is None or bn.running_var is None:
            raise unsupported(where, f"a {type(bn).__name__} without running statistics",
                               "use track_running_stats=True and train the model first")
        n = bn.num_features
        g, c = batchnorm_affine(
            as_array(bn.weight, (n,), where) if bn.affine else np.ones(n),
            as_array(bn.bias, (n,), where) if bn.affine else np.zeros(n),
            as_array(bn.running_mean, (n,), where), as_array(bn.running_var, (n,), where),
            bn.eps)
        weights, bias = fold_batchnorm([t.synapse.weight for t in value.terms], value.bias, g, c)
        terms = [t.with_weight(w) for t, w in zip(value.terms, weights)]
        self.note(f"folded batch norm {where} into {', '.join(t.where for t in terms)}")
        return Open(value.name, terms, bias, value.out_shape)

    def linear(self, value, mod: nn.Linear, where: str, in_shape) -> Open:
        w = as_array(mod.weight, (), where)
        b = as_array(mod.bias, (mod.out_features,), where)
        if isinstance(value, Open):
            if any(t.synapse.kind != "dense" for t in value.terms):
                raise self._no_activation(value, where)
            log.info("merging consecutive linear layers %s and %s", value.name, where)
            weights, bias = merge_linear([t.synapse.weight for t in value.terms], value.bias,
                                         w, b)
            return Open(f"{value.name}+{where}",
                         [t.with_weight(wk) for t, wk in zip(value.terms, weights)], bias,
                         (mod.out_features,))
        if value.pools:
            folded = self._fold(where, fold_pools_into_dense, value.pools, w)
            self.note(f"folded average pooling {', '.join(p.where for p in value.pools)} into "
                      f"{where}: synapses {w.size} -> {folded.size}")
            w, in_shape = folded, value.pools[0].in_shape
        term = Term(where, Synapse("dense", w, value.index), tuple(in_shape))
        return Open(where, [term], b, (mod.out_features,))

    def conv(self, value, mod: nn.Conv2d, where: str, in_shape, out_shape) -> Open:
        if mod.padding_mode != "zeros":
            raise unsupported(where, f"Conv2d with padding_mode={mod.padding_mode!r}",
                               "use zero padding (padding_mode='zeros')")
        k, d = pair(mod.kernel_size), pair(mod.dilation)
        if isinstance(mod.padding, str):
            if mod.padding == "valid":
                pad = (0, 0)
            elif any((d[i] * (k[i] - 1)) % 2 for i in range(2)):
                raise unsupported(where, "Conv2d padding='same' with an even kernel extent "
                                   "(asymmetric padding)", "use an odd kernel or explicit padding")
            else:
                pad = tuple(d[i] * (k[i] - 1) // 2 for i in range(2))
        else:
            pad = pair(mod.padding)
        geometry = ConvGeometry(pair(mod.stride), pad, d, int(mod.groups))
        w = as_array(mod.weight, (), where)
        b = as_array(mod.bias, (mod.out_channels,), where)
        if isinstance(value, Open):
            raise self._no_activation(value, where)
        if value.pools:
            if len(value.pools) != 1:
                raise unsupported(where, "a Conv2d after chained average poolings",
                                   "use one nn.AvgPool2d(k) with stride = kernel")
            pool = value.pools[0]
            fused, folded = self._fold(where, fold_pool_into_conv, pool, w, b, geometry)
            self.note(f"folded average pooling {pool.where} into {where}: kernel "
                      f"{tuple(w.shape[2:])} -> {tuple(fused.shape[2:])}, stride "
                      f"{geometry.stride} -> {folded.stride}, synapses "
                      f"{conv_synapses(w, out_shape)} -> {conv_synapses(fused, out_shape)}")
            w, geometry, in_shape = fused, folded, pool.in_shape
        term = Term(where, Synapse("conv", w, value.index, geometry), tuple(in_shape))
        return Open(where, [term], b, tuple(out_shape))

    @staticmethod
    def _no_activation(value: Open, where: str) -> UnsupportedModuleError:
        return unsupported(where, f"a layer directly after '{value.name}' with no activation "
                            "between them", "add an activation (only two Linear layers can be "
                            "merged)")

    def add(self, a, b, where: str) -> Open:
        """A residual add: currents add; an activated output joins as an identity synapse."""
        if isinstance(a, Out) and isinstance(b, Out):
            raise unsupported(where, "an add of two activations", "add a Conv2d/Linear "
                               "output before its activation, e.g. relu(bn2(conv2(h)) + x)")
        if isinstance(a, Out):
            a, b = b, a
        if isinstance(b, Out):
            b = self._identity(b, a.out_shape, where)
        if tuple(a.out_shape) != tuple(b.out_shape):
            raise unsupported(where, f"an add of shapes {a.out_shape} and {b.out_shape}",
                               "give the shortcut a 1x1 Conv2d with the main path's stride")
        return Open(a.name, a.terms + b.terms, a.bias + b.bias, a.out_shape)

    def _identity(self, value: Out, shape: tuple[int, ...], where: str) -> Open:
        """An identity shortcut as a synapse with unit weights: 1x1 conv or dense eye."""
        if value.pools:
            raise unsupported(where, "a pooled identity shortcut",
                               "use a strided 1x1 Conv2d on the shortcut instead of pooling")
        n = shape[0]
        if len(shape) == 3:
            synapse = Synapse("conv", np.eye(n)[:, :, None, None], value.index)
        else:
            synapse = Synapse("dense", np.eye(n), value.index)
        term = Term(where, synapse, tuple(shape))
        return Open(where, [term], np.zeros(n), tuple(shape))

    @staticmethod
    def pool(value, pool: Pool) -> Out:
        if isinstance(value, Open):
            raise unsupported(pool.where, "average pooling of a layer without activation",
                               "pool after the activation")
        return Out(value.index, value.pools + (pool,))

    @staticmethod
    def _fold(where: str, fold, *args):
        """Run a fold of :mod:`~lava_convert.frontend.folds`; name the layer if it refuses."""
        try:
            return fold(*args)
        except FoldError as exc:
            raise unsupported(where, str(exc), exc.fix) from exc


def clamp(b: Builder, value, bounds, where: str):
    low, high = bounds
    if low != 0.0:
        raise unsupported(where, f"a clamp to [{low}, {high}]", "IF neurons express "
                           "clip(z, 0, theta): clamp at 0 from below (ReLU6, clamp(0, a))")
    if high is None:
        return b.activation(value, "relu", None, f"{where} (clamp at 0)")
    b.note(f"{where}: clamp(z, 0, {high:g}) converted as a ThresholdReLU with theta {high:g}")
    return b.activation(value, "clip", float(high), where)
