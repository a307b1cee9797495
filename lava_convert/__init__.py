"""lava-convert: PyTorch ANNs to spiking networks on Intel Lava (NetX HDF5), verified.

Pipeline: :func:`convert` (trace -> passes -> quantize, :mod:`lava_convert.pipeline`)
-> ``export`` (NetX) -> :func:`simulate` (reference) / :func:`run_lava` (Lava CPU
simulator). Importing this package is cheap: it imports neither torch nor Lava; each
public name is imported on first use (:func:`run_lava` imports Lava when it runs).
"""

from importlib import import_module

from .interrupts import guard_console_script

guard_console_script()  # the console script: Ctrl-C while the command line loads is one line

from .config import ConversionConfig  # noqa: E402
from .errors import (  # noqa: E402
    CalibrationError,
    ConfigError,
    DatasetError,
    ExportError,
    InputError,
    LavaConvertError,
    LavaRunError,
    LavaTimeoutError,
    LavaUnavailableError,
    NetXFormatError,
    NirGraphError,
    OptionalDependencyError,
    QuantizationError,
    UnsupportedModuleError,
)
from .version import __version__  # noqa: E402

#: Public names imported on first use, and the module of each.
_LAZY = {
    "run_lava": ".lava.runtime", "lava_run_config": ".lava.run_config",
    "lava_source": ".lava.graph_io", "lava_sinks": ".lava.graph_io",
    "lava_counts": ".lava.graph_io",
    "QCFS": ".layers", "ThresholdReLU": ".layers",
    "replace_relus": ".layers", "swap_maxpool": ".layers", "read_netx": ".netx.reader",
    "ConvertedNetwork": ".pipeline",
    "convert": ".pipeline", "simulate": ".pipeline", "from_nir": ".pipeline",
    "format_quantization":
    ".report.quantization", "quantization_report": ".report.quantization",
    "quantize_input": ".sim.inputs", "RunResult": ".sim.results",
    "assert_same_spikes": ".sim.results", "spike_differences": ".sim.results",
}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "QCFS", "CalibrationError", "ConfigError", "ConversionConfig", "ConvertedNetwork",
    "DatasetError", "ExportError", "InputError", "LavaConvertError", "LavaRunError",
    "LavaTimeoutError",
    "LavaUnavailableError", "NetXFormatError", "NirGraphError", "OptionalDependencyError",
    "QuantizationError", "RunResult",
    "ThresholdReLU", "UnsupportedModuleError", "__version__", "assert_same_spikes", "convert",
    "format_quantization",
    "from_nir", "lava_counts", "lava_run_config", "lava_sinks", "lava_source",
    "quantization_report", "quantize_input", "read_netx", "replace_relus", "run_lava",
    "simulate", "spike_differences", "swap_maxpool",
]
