"""The target check: refuse, before any work, what the chosen target cannot express."""

from __future__ import annotations

from ..config import ConversionConfig
from ..errors import UnsupportedModuleError
from ..ir import AnnGraph
from ..targets import target_rules


def check_target(graph: AnnGraph, config: ConversionConfig) -> None:
    """Raise :class:`UnsupportedModuleError` if ``graph`` needs what ``config.target``
    lacks (:mod:`lava_convert.targets`): residual shortcuts where it has no multi-input
    layer (stock NetX). Settings the target needs (reset, readout, ``v0``) are checked by
    :class:`~lava_convert.config.ConversionConfig` itself."""
    rules = target_rules(config.target)
    residual = [layer.name for layer in graph.layers if layer.skips]
    if residual and not rules.residual:
        raise UnsupportedModuleError(
            f"{rules.quoted} cannot express the residual shortcuts into layers "
            f"{residual}: it has no multi-input layer. Convert with the default target and "
            "run the file with lava_convert.netx.Network, or remove the shortcuts")
