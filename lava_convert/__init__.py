"""lava-convert: PyTorch ANNs to spiking networks on Intel Lava (NetX HDF5), verified.

Pipeline: :func:`convert` (trace -> balance -> quantize) -> ``export`` (NetX)
-> :func:`simulate` (reference) / :func:`run_lava` (Lava CPU simulator).
Importing this package does not import Lava; :func:`run_lava` does.
"""

__version__ = "0.1.0"

from .config import ConversionConfig  # noqa: E402
from .convert import ConvertedNetwork, convert, simulate  # noqa: E402
from .errors import (  # noqa: E402
    CalibrationError,
    ConfigError,
    DatasetError,
    InputError,
    LavaConvertError,
    LavaRunError,
    LavaTimeoutError,
    LavaUnavailableError,
    NetXFormatError,
    QuantizationError,
    UnsupportedModuleError,
)
from .layers import QCFS, ThresholdReLU, replace_relus  # noqa: E402
from .netx_io import read_netx  # noqa: E402
from .quant_report import format_quantization, quantization_report  # noqa: E402
from .results import RunResult  # noqa: E402


def run_lava(net, x, timesteps=None, **kwargs):
    """Run a NetX network on Lava's CPU simulator (see ``lava_runtime.run_lava``)."""
    from .lava_runtime import run_lava as _run_lava

    return _run_lava(net, x, timesteps, **kwargs)


__all__ = [
    "QCFS", "CalibrationError", "ConfigError", "ConversionConfig", "ConvertedNetwork",
    "DatasetError", "InputError", "LavaConvertError", "LavaRunError", "LavaTimeoutError",
    "LavaUnavailableError",
    "NetXFormatError", "QuantizationError", "RunResult", "ThresholdReLU", "UnsupportedModuleError",
    "convert", "format_quantization", "quantization_report", "read_netx", "replace_relus",
    "run_lava", "simulate",
]
