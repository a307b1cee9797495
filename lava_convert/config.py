"""``ConversionConfig``: every conversion knob in one validated, serialisable object."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError
from .hw.loihi import MAX_MESSAGE_BITS
from .ir.snn import RESET_MODES
from .targets import TARGETS as TARGET_RULES

BALANCING = ("auto", "clip", "max", "percentile")
SHIFTS = ("bias", "v0", "none")
RESETS = RESET_MODES
READOUTS = ("potential", "spikes")
#: What one calibrated initial potential serves: a layer, or a channel (a dense neuron).
POTENTIAL_SCOPES = ("layer", "channel")
#: ``lava-convert``: files for lava_convert.netx.Network (soft reset, v0, shortcuts);
#: ``stock-netx``: files unmodified lava-dl NetX runs exactly (hard reset, no v0, no
#: shortcuts, spiking readout), for Intel's own stack and Loihi 2 without custom neurons;
#: ``sdnn``: sigma-delta files unmodified lava-dl NetX runs exactly (graded messages).
#: What each allows: :mod:`lava_convert.targets`.
TARGETS = tuple(TARGET_RULES)


@dataclass(frozen=True)
class ConversionConfig:
    """Settings of one conversion; saved with every export.

    Attributes:
        timesteps: T, time steps per sample the network is converted for (> 0).
            The V_th/(2T) shift depends on it.
        balancing: Per-layer threshold source. ``"clip"``: the ThresholdReLU clip
            value; ``"max"``: the largest activation on calibration data;
            ``"percentile"``: that percentile of the activations; ``"auto"``: the
            best measured of several rules (on a network whose every hidden layer has
            a clip: the clips or per-channel maxima; otherwise the data-driven rules),
            which also sets ``channel_thresholds``, ``shift`` and possibly
            ``bias_calibration`` (:mod:`lava_convert.passes.auto_balancing`).
        percentile: Percentile (0, 100] used by ``balancing="percentile"``.
        reset: ``"soft"`` (subtract the threshold) or ``"hard"`` (to zero).
        shift: ``"bias"`` adds V_th/(2T) to each spiking layer's bias every
            step (Deng & Gu); ``"v0"`` starts each sample at ``v = V_th/2``
            instead (QCFS; independent of T); ``"none"`` disables it.
        readout: ``"potential"`` (default): the output layer integrates its
            input and the class is the argmax of the accumulated potential. It
            represents negative logits, never ties the way spike counts do at
            small T, and needs no output threshold. ``"spikes"``: the output
            layer spikes too (threshold: the largest logit on calibration data)
            and the class is the argmax of its spike counts (Deng & Gu).
        input_bits: Width of the graded input payload (2..24 bits), or ``"auto"``
            (default): the width, of 4..12, whose first layer reproduces the real-valued
            current on calibration data most closely. The input and the first layer's
            weights share its 24-bit state, so each input bit costs a weight bit (on
            MNIST-sized inputs 8 bits left first-layer weights 4-5 bits;
            :func:`lava_convert.quantize.scale.choose_input_bits`). The file records the
            width chosen.
        headroom: Safety factor on the first layer's largest current seen on
            calibration data when choosing its fixed-point scale (>= 1). Later
            layers get spikes and use the exact worst-case bound instead.
        rate_tolerance: Largest acceptable mean spike-rate change (spikes per
            step per neuron) that quantization may cause in a layer on
            calibration data; beyond it the converter warns and the sidecar
            records the warning.
        target: ``"lava-convert"`` (default), ``"stock-netx"``: a file that unmodified
            ``lava.lib.dl.netx.hdf5.Network`` runs exactly; it needs ``reset="hard"``,
            ``readout="spikes"`` and a shift other than ``"v0"``
            (:meth:`stock_netx` sets them), and residual networks are refused; or
            ``"sdnn"``: sigma-delta neurons that stock NetX runs exactly (graded
            messages, the quantized ANN after one step per layer;
            :mod:`lava_convert.quantize.sigma_delta`), with ``balancing`` setting each
            layer's activation range and no shift or calibrations
            (``ConversionConfig.for_target("sdnn")`` sets them).
        bias_calibration: Calibration samples used to correct each spiking
            layer's bias for its average conversion error (0: off; a few
            hundred is plenty): once in float before quantization, then again
            with the quantized weights and thresholds
            (:func:`lava_convert.quantize.scale.on_grid`), so the biases also absorb
            the rounding of the weights. See
            :func:`lava_convert.passes.bias_calibration.calibrate_biases`.
        potential_calibration: Calibration samples used to choose each spiking layer's
            initial membrane potential ``v0`` (0: off): the fraction of its threshold,
            in eighths, whose spike rates come closest to the ANN's activations
            (:func:`lava_convert.passes.potential_calibration.calibrate_potentials`);
            runs before bias calibration and replaces the ``v0`` that ``shift`` sets.
            Exact in Lava (the neurons' initial voltage); not for ``target="stock-netx"``.
        potential_scope: What one calibrated ``v0`` serves: ``"layer"`` (default) or
            ``"channel"``, one per output channel of a conv layer and per neuron of a
            dense layer, each the candidate closest to the ANN on its own channel (the
            neurons of a layer do not interact, so one simulation per candidate serves
            all channels). Lava takes one initial voltage per neuron, so both are exact.
        readout_calibration: Calibration samples used to refit the readout's weights and
            bias to the ANN's logits after bias calibration (0: off): the potential readout
            is linear in the spike rates it reads, so this is a least-squares fit,
            ridge-regularised towards the converted weights with the strength chosen by
            leave-one-out cross-validation, and kept only if that error is below the
            uncorrected one (:mod:`lava_convert.passes.readout_calibration`). Needs
            ``readout="potential"``; exact on Lava (only weights change).
        channel_thresholds: Data-driven thresholds (``"max"``, ``"percentile"``, and
            ``"auto"``'s per-channel candidates) per output channel of conv layers and per neuron
            of dense layers, as SpikingJelly's channel-wise normalisation: a channel whose
            activations stay small gets a low threshold and fires as often as the others.
            Exact in Lava: the threshold differences fold into the weights (see
            :func:`lava_convert.passes.balance.balance`). Layers with a trained clip keep
            it under ``balancing="clip"``.
    """

    timesteps: int = 32
    balancing: str = "auto"
    percentile: float = 99.9
    reset: str = "soft"
    shift: str = "bias"
    readout: str = "potential"
    input_bits: int | str = "auto"
    headroom: float = 2.0
    rate_tolerance: float = 0.02
    bias_calibration: int = 0
    potential_calibration: int = 0
    potential_scope: str = "layer"
    readout_calibration: int = 0
    target: str = "lava-convert"
    channel_thresholds: bool = False

    @classmethod
    def for_target(cls, target: str, **settings: Any) -> ConversionConfig:
        """A config for ``target`` with the settings it needs
        (:attr:`lava_convert.targets.Target.settings`) unless ``settings`` say otherwise
        (then validation names the conflict)."""
        rules = TARGET_RULES.get(target)
        base = dict(rules.settings) if rules is not None else {}
        return cls(**{**base, "target": target, **settings})

    @classmethod
    def stock_netx(cls, **settings: Any) -> ConversionConfig:
        """A config for ``target="stock-netx"``: hard reset and spiking readout unless
        ``settings`` say otherwise (then validation names the conflict)."""
        return cls.for_target("stock-netx", **settings)

    def __post_init__(self) -> None:
        def check(ok: bool, field: str, fix: str) -> None:
            if not ok:
                raise ConfigError(
                    f"ConversionConfig.{field}={getattr(self, field)!r} is invalid: {fix}"
                )

        check(isinstance(self.timesteps, int) and self.timesteps > 0, "timesteps",
              "use a positive whole number of time steps, e.g. 32")
        check(self.balancing in BALANCING, "balancing", f"use one of {BALANCING}")
        check(0 < float(self.percentile) <= 100, "percentile", "use a value in (0, 100]")
        check(self.reset in RESETS, "reset", f"use one of {RESETS}")
        check(self.shift in SHIFTS, "shift", f"use one of {SHIFTS}")
        check(self.readout in READOUTS, "readout", f"use one of {READOUTS}")
        check(self.input_bits == "auto" or (isinstance(self.input_bits, int)
                                            and 2 <= self.input_bits <= MAX_MESSAGE_BITS),
              "input_bits", f"use 'auto' or 2..{MAX_MESSAGE_BITS} bits (Lava graded spikes "
              f"carry at most {MAX_MESSAGE_BITS})")
        check(float(self.headroom) >= 1.0, "headroom", "use a factor >= 1")
        check(isinstance(self.bias_calibration, int) and self.bias_calibration >= 0,
              "bias_calibration", "use a number of samples >= 0 (0: off)")
        check(isinstance(self.potential_calibration, int) and self.potential_calibration >= 0,
              "potential_calibration", "use a number of samples >= 0 (0: off)")
        check(isinstance(self.readout_calibration, int) and self.readout_calibration >= 0,
              "readout_calibration", "use a number of samples >= 0 (0: off)")
        check(self.readout == "potential" or self.readout_calibration == 0,
              "readout_calibration", "readout calibration refits the potential readout, "
              "which is linear in its input; with readout='spikes' use readout_calibration=0")
        check(self.potential_scope in POTENTIAL_SCOPES, "potential_scope",
              f"use one of {POTENTIAL_SCOPES}")
        check(0 <= float(self.rate_tolerance) <= 1, "rate_tolerance",
              "use a rate in [0, 1] spikes per step")
        check(self.target in TARGETS, "target", f"use one of {TARGETS}")
        check(isinstance(self.channel_thresholds, bool), "channel_thresholds",
              "use True or False")
        rules = TARGET_RULES[self.target]
        how = f"use ConversionConfig.for_target({rules.name!r})"
        check(self.reset in rules.resets, "reset", f"{rules.quoted} needs reset="
              f"{' or '.join(map(repr, rules.resets))}: {how}, or --target {rules.name} "
              "without --reset")
        check(self.readout in rules.readouts, "readout", f"{rules.quoted} needs readout="
              f"{' or '.join(map(repr, rules.readouts))}: {how}")
        check(rules.initial_potential or self.shift != "v0", "shift", f"{rules.quoted} "
              "cannot start at v0: use shift='bias' or 'none'")
        check(rules.initial_potential or self.potential_calibration == 0,
              "potential_calibration", f"{rules.quoted} cannot start at a calibrated v0: use "
              "potential_calibration=0 (bias calibration works there)")
        check(self.balancing in rules.balancings, "balancing", f"{rules.quoted} takes "
              f"balancing={' or '.join(map(repr, rules.balancings))}: {how}")
        for key, value in rules.requires.items():
            check(getattr(self, key) == value, key, f"{rules.quoted} needs {key}={value!r} "
                  f"(its neurons have no use for it): {how}")

    def replace(self, **changes: Any) -> ConversionConfig:
        """A copy with ``changes`` applied (validated)."""
        self._check_keys(changes)
        return dataclasses.replace(self, **changes)

    @classmethod
    def _check_keys(cls, data: dict[str, Any]) -> None:
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = set(data) - set(known)
        if unknown:
            raise ConfigError(f"unknown ConversionConfig keys {sorted(unknown)}; known: {known}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConversionConfig:
        cls._check_keys(data)
        return cls(**data)

    def __str__(self) -> str:
        return json.dumps(self.to_dict(), indent=2)
