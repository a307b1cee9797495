"""Which process models a Lava run uses: the one place our models are chosen.

Lava picks a process model per process type from the run configuration; ours are
chosen the same way, through ``Loihi2SimCfg``'s ``exception_proc_model_map``, so a user's
own graph can use them too::

    net.run(condition=RunSteps(num_steps=...), run_cfg=lava_run_config())

``models="fast"`` (the default of :func:`lava_convert.run_lava`) replaces Lava's
scipy convolution with :class:`~lava_convert.lava.procs.conv_model.PyTorchConvModelFixed`
(spike-identical, tested against the stock model); ``models="stock"`` is Lava's own
``Loihi2SimCfg(select_tag="fixed_pt")``. Everything else is Lava's selection either way.
"""

from __future__ import annotations

from ..errors import ConfigError
from .compat import ensure_lava

#: The process-model sets a run can use.
LAVA_MODELS = ("fast", "stock")


def check_models(models: str) -> str:
    """``models`` if it names a model set, else :class:`ConfigError`."""
    if models not in LAVA_MODELS:
        raise ConfigError(f"models={models!r} is not a Lava model set: use one of "
                          f"{', '.join(LAVA_MODELS)}")
    return models


def lava_run_config(models: str = "fast"):
    """Lava's ``Loihi2SimCfg(select_tag="fixed_pt")``, with our fast exact models in
    place of Lava's where ``models="fast"``."""
    check_models(models)
    ensure_lava()
    from lava.magma.core.run_configs import Loihi2SimCfg

    exceptions = {}
    if models == "fast":
        from lava.proc.conv.process import Conv

        from .procs.conv_model import PyTorchConvModelFixed

        exceptions[Conv] = PyTorchConvModelFixed
    return Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map=exceptions)
