"""The target check: refuse, before any work, what the chosen target cannot express."""

from __future__ import annotations

from ..config import ConversionConfig
from ..errors import UnsupportedModuleError
from ..ir import AnnGraph


def check_target(graph: AnnGraph, config: ConversionConfig) -> None:
    """Raise :class:`UnsupportedModuleError` if ``graph`` needs what ``config.target``
    lacks: for ``"stock-netx"``, residual shortcuts (stock NetX has no multi-input
    layer). Settings the target needs (hard reset, spiking readout, no ``v0``) are
    checked by :class:`~lava_convert.config.ConversionConfig` itself."""
    if config.target != "stock-netx":
        return
    residual = [layer.name for layer in graph.layers if layer.skips]
    if residual:
        raise UnsupportedModuleError(
            f"target='stock-netx' cannot express the residual shortcuts into layers "
            f"{residual}: stock lava-dl NetX has no multi-input layer. Convert with the default "
            "target and run the file with lava_convert.netx.Network, or remove the shortcuts")
