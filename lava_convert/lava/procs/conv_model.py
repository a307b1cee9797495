"""A fast exact process model for Lava's ``Conv`` synapse (``lava.proc.conv.process.Conv``).

Lava's own fixed-point model (``PyConvModelFixed``) convolves with scipy one (output,
input) channel pair at a time, in float64, and computes every output position before
striding; a CIFAR-sized VGG layer makes that hundreds of thousands of calls per time
step. :class:`PyTorchConvModelFixed` keeps everything else of that model (its ports, its
one-step delay, the binary/graded input rule, the int32 cast and the 24-bit wrap) and
computes the convolution with one strided ``torch.nn.functional.conv2d`` call:

* float32 where the step's largest possible partial sum (the largest row sum of
  ``|w|`` times this step's largest ``|input|``) is below ``2**24``, float64 where it is
  below ``2**31``: every partial sum is then a whole number the type holds exactly, so
  the result equals scipy's exact float64 sum and the int32 cast loses nothing;
* beyond that (never for Loihi's 8-bit weights and 24-bit messages within int32), the
  step goes through Lava's own ``utils.conv``, so it rounds exactly as stock does;
* a step without input sends zeros without convolving.

It is selected the way Lava selects models, through the run configuration
(:func:`lava_convert.lava.run_config.lava_run_config`), and tested spike for spike
against Lava's stock model. torch runs single-threaded in the worker: Lava forks its
workers, and a forked child that inherits torch's OpenMP pool hangs on its first
parallel call (which is why Lava's ``utils.conv`` leaves torch out).
"""

from __future__ import annotations

import numpy as np
import torch
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.conv import utils
from lava.proc.conv.models import PyConvModelFixed
from lava.proc.conv.process import Conv

#: float32 and int32 hold every whole number of magnitude below these exactly.
_FLOAT32_WHOLE, _INT32_LIMIT = 2**24, 2**31
#: Lava's accumulator width (``PyConvModelFixed.clamp_precision``).
_ACCUMULATOR_BITS = 24


def lava_conv(s_in: np.ndarray, weight: np.ndarray, stride, padding, dilation,
              groups: int, weight_cache: tuple | None = None) -> np.ndarray:
    """``lava.proc.conv.utils.conv`` of Lava-ordered input ``(W, H, C_in)`` and kernel
    ``(C_out, kW, kH, C_in)`` (a true convolution), computed exactly with torch; the
    int32 result before the 24-bit wrap.

    ``weight_cache`` is what :func:`torch_kernel` returned for ``weight``.
    """
    kernel, row_bound = weight_cache if weight_cache is not None else torch_kernel(weight)
    largest = int(np.abs(s_in).max()) if s_in.size else 0
    if largest == 0:
        return np.zeros(utils.output_shape(s_in.shape, weight.shape[0], weight.shape[1:3],
                                           stride, padding, dilation), dtype=weight.dtype)
    bound = row_bound * largest
    if bound >= _INT32_LIMIT:  # stock's own arithmetic, rounding and all
        return utils.conv(s_in, weight, weight.shape[1:3], stride, padding, dilation, groups)
    dtype = torch.float32 if bound < _FLOAT32_WHOLE else torch.float64
    x = torch.from_numpy(np.ascontiguousarray(s_in.transpose(2, 0, 1))).to(dtype)
    out = torch.nn.functional.conv2d(
        x[None], kernel.to(dtype), stride=tuple(int(s) for s in stride),
        padding=tuple(int(p) for p in padding), dilation=tuple(int(d) for d in dilation),
        groups=int(groups))[0]
    return out.permute(1, 2, 0).numpy().astype(weight.dtype)


def torch_kernel(weight: np.ndarray) -> tuple[torch.Tensor, int]:
    """Lava's ``(C_out, kW, kH, C_in)`` convolution kernel as a torch cross-correlation
    kernel ``(C_out, C_in, kW, kH)`` (flipped; float64), and its largest row sum of ``|w|``."""
    w = np.asarray(weight)
    kernel = torch.from_numpy(np.ascontiguousarray(
        w[:, ::-1, ::-1, :].transpose(0, 3, 1, 2)).astype(np.float64))
    row_bound = int(np.abs(w.astype(np.int64)).reshape(len(w), -1).sum(axis=1).max()) \
        if w.size else 0
    return kernel, row_bound


@implements(proc=Conv, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyTorchConvModelFixed(PyConvModelFixed):
    """Lava's ``PyConvModelFixed`` with its convolution computed by one exact torch call
    (see the module docstring); spike-identical to it."""

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self._kernel: tuple | None = None

    def run_spk(self) -> None:
        if self._kernel is None:
            torch.set_num_threads(1)  # in the forked worker: see the module docstring
            self._kernel = torch_kernel(self.weight)
        if self.a_buf is None:
            self.a_buf = np.zeros_like(self.a_out.shape)
        self.a_out.send(self.a_buf)
        s_in = self.s_in.recv()
        if self.num_message_bits.item() <= 0:
            s_in = s_in.astype(bool).astype(np.int32)  # stock: any nonzero payload is a spike
        a_out = lava_conv(s_in, self.weight, self.stride, self.padding, self.dilation,
                          self.groups[0], self._kernel)
        self.a_buf = self.clamp_precision(a_out)

    def _set_var(self) -> None:
        super()._set_var()
        self._kernel = None  # the weights may have changed: rebuild the torch kernel
