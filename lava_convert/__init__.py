"""lava-convert: PyTorch ANNs to spiking networks on Intel Lava (NetX HDF5), verified.

Pipeline: :func:`convert` (trace -> passes -> quantize, :mod:`lava_convert.pipeline`)
-> ``export`` (NetX) -> :func:`simulate` (reference) / :func:`run_lava` (Lava CPU
simulator). Importing this package does not import Lava; :func:`run_lava` does.
"""

from .config import ConversionConfig
from .errors import (
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
    QuantizationError,
    UnsupportedModuleError,
)
from .lava.runtime import run_lava
from .layers import QCFS, ThresholdReLU, replace_relus
from .netx.reader import read_netx
from .pipeline import ConvertedNetwork, convert, simulate
from .report.quantization import format_quantization, quantization_report
from .sim.inputs import quantize_input
from .sim.results import RunResult
from .version import __version__

__all__ = [
    "QCFS", "CalibrationError", "ConfigError", "ConversionConfig", "ConvertedNetwork",
    "DatasetError", "ExportError", "InputError", "LavaConvertError", "LavaRunError",
    "LavaTimeoutError",
    "LavaUnavailableError", "NetXFormatError", "QuantizationError", "RunResult",
    "ThresholdReLU", "UnsupportedModuleError", "__version__", "convert", "format_quantization",
    "quantization_report", "quantize_input", "read_netx", "replace_relus", "run_lava", "simulate",
]
