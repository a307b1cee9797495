"""Model factories for conversion-ready networks, and saving/loading trained models."""

from __future__ import annotations

import importlib
import math
import os
import pickle
import sys
from pathlib import Path

import torch
from torch import nn

from ..errors import ConfigError
from ..files import atomic_write
from ..layers import QCFS, ThresholdReLU

ACTIVATIONS = ("relu", "threshold", "qcfs")


def activation(kind: str, threshold: float = 1.0, levels: int = 8) -> nn.Module:
    """``"relu"``, ``"threshold"`` (ThresholdReLU, fixed) or ``"qcfs"`` (QCFS, trainable)."""
    if kind == "relu":
        return nn.ReLU()
    if kind == "threshold":
        return ThresholdReLU(threshold)
    if kind == "qcfs":
        return QCFS(levels, threshold, trainable=True)
    raise ConfigError(f"activation {kind!r} is unknown: use one of {ACTIVATIONS}")


def mlp(input_shape: tuple[int, ...] = (1, 8, 8), hidden: tuple[int, ...] = (128, 64),
        classes: int = 10, act: str = "threshold", threshold: float = 1.0, levels: int = 8,
        seed: int = 0) -> nn.Sequential:
    """Flatten, then ``Linear + activation`` per hidden width, then a Linear read-out.

    Weights are initialised from ``seed`` without touching the global RNG.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(input_shape)
        for h in hidden:
            layers += [nn.Linear(width, h), activation(act, threshold, levels)]
            width = h
        layers.append(nn.Linear(width, classes))
        return nn.Sequential(*layers)


def save_model(model: nn.Module, path: str | Path, *, factory: str, kwargs: dict,
               info: dict | None = None) -> Path:
    """Save weights with the factory (``"module:function"``) and arguments to rebuild it."""
    payload = {"factory": factory, "kwargs": kwargs, "state_dict": model.state_dict(),
               "info": info or {}}
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


#: Factories a saved-model file may name without the user's word: this package's own.
TRUSTED_FACTORY_PREFIX = "lava_convert."


def _untrusted(path, what: str) -> ConfigError:
    return ConfigError(
        f"{path}: {what}; loading it runs code from the file. If you trust the file, pass "
        "--trust-code (API: trust_code=True); otherwise convert from 'module:factory' with "
        "--weights state_dict.pt, which loads only tensors")


def load_model(path: str | Path, *, trust_code: bool = False) -> nn.Module:
    """A model from a file (evaluation mode).

    Files of :func:`save_model` (``lava-convert train``) hold data only, a factory name,
    its arguments and a state_dict, and load with ``torch.load(weights_only=True)``; the
    factory is imported only if it is this package's own, unless ``trust_code``. A whole
    module saved with ``torch.save(model)`` is a pickle of Python objects, and unpickling
    it runs code: it loads only with ``trust_code=True``. A bare state_dict gets an error
    that says what else to pass.
    """
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if not trust_code:
            raise _untrusted(path, "the file holds pickled Python objects (a whole model saved "
                             "with torch.save(model))") from exc
        try:
            payload = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc2:  # noqa: BLE001 - unpickling user code can raise anything
            raise ConfigError(f"{path}: cannot load the model ({type(exc2).__name__}: "
                              f"{exc2})") from exc2
    except (OSError, RuntimeError, EOFError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the file ({exc}); pass a model saved with "
                          "lava-convert train, torch.save(model) or a state_dict with "
                          "'module:factory'") from exc
    if isinstance(payload, nn.Module):
        return payload.eval()
    if not isinstance(payload, dict):
        raise ConfigError(f"{path}: holds a {type(payload).__name__}, not a model")
    if "factory" not in payload:
        if all(isinstance(v, torch.Tensor) for v in payload.values()):
            raise ConfigError(f"{path}: a state_dict holds only weights; also name the code "
                              "that builds the model: lava-convert convert module:factory "
                              f"--weights {path}")
        raise ConfigError(f"{path}: not a saved model (keys {sorted(payload)[:8]}); save it with "
                          "lava-convert train or lava_convert.zoo.models.save_model")
    factory_name = str(payload["factory"])
    if not factory_name.startswith(TRUSTED_FACTORY_PREFIX) and not trust_code:
        raise _untrusted(path, f"the file names the factory {factory_name!r}, outside "
                         "lava-convert")
    try:
        module_name, func_name = factory_name.split(":")
        factory = getattr(importlib.import_module(module_name), func_name)
        if not callable(factory):
            raise TypeError(f"{factory_name} is not callable")
        model = factory(**dict(payload["kwargs"]))
        model.load_state_dict(payload["state_dict"])
    except (KeyError, ValueError, AttributeError, ImportError, RuntimeError, TypeError) as exc:
        raise ConfigError(f"{path}: cannot load the model ({type(exc).__name__}: {exc}); save "
                          "it with lava-convert train or lava_convert.zoo.models.save_model"
                          ) from exc
    if not isinstance(model, nn.Module):
        raise ConfigError(f"{path}: the factory {factory_name} made a {type(model).__name__}, "
                          "not an nn.Module")
    return model.eval()


def model_from(source: str, weights: str | Path | None = None,
               kwargs: dict | None = None, *, trust_code: bool = False) -> nn.Module:
    """A model from a file (:func:`load_model`), or from ``"module:factory"`` plus weights.

    Args:
        source: A ``.pt`` file (``lava-convert train``, ``torch.save(model)`` with
            ``trust_code``), or ``"package.module:function"`` returning an ``nn.Module``:
            the user's own code, imported because the user named it.
        weights: With a factory: a ``state_dict`` file (``torch.save(model.state_dict())``),
            loaded with ``weights_only=True``.
        kwargs: With a factory: keyword arguments for it (a JSON object).
        trust_code: Allow files that run code when loaded (pickled modules, factories
            outside lava-convert).
    """
    if ":" not in str(source) or Path(source).is_file():
        if weights is not None or kwargs:
            raise ConfigError(f"{source}: weights and factory arguments go with "
                              "'module:factory' sources only")
        return load_model(source, trust_code=trust_code)
    if kwargs is not None and not isinstance(kwargs, dict):
        raise ConfigError(f"factory arguments must be a JSON object, got {type(kwargs).__name__}")
    if weights is None:
        raise ConfigError(f"{source}: a factory needs --weights, the state_dict file to load")
    module_name, _, func_name = str(source).partition(":")
    here = os.getcwd()
    added = here not in sys.path  # like `python -m`: modules in the working directory import
    if added:
        sys.path.insert(0, here)
    try:
        factory = getattr(importlib.import_module(module_name), func_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{source}: cannot import the factory ({exc}); check the module "
                          "path and that it is importable (PYTHONPATH)") from exc
    finally:
        if added:
            sys.path.remove(here)
    if not callable(factory):
        raise ConfigError(f"{source}: {func_name} is a {type(factory).__name__}, not a "
                          "function that builds the model")
    try:
        model = factory(**(kwargs or {}))
    except TypeError as exc:
        raise ConfigError(f"{source}: the factory does not take these arguments ({exc}); "
                          "check --kwargs") from exc
    if not isinstance(model, nn.Module):
        raise ConfigError(f"{source} returned a {type(model).__name__}, not an nn.Module")
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state) if isinstance(state, dict) else state
        model.load_state_dict(state)
    except (OSError, RuntimeError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{weights}: cannot load these weights into {source} ({exc}); "
                          "save them with torch.save(model.state_dict(), path)") from exc
    return model.eval()


class ResidualBlock(nn.Module):
    """A basic ResNet block: ``act(bn2(conv2(act(bn1(conv1(x))))) + shortcut(x))``.

    The shortcut is the identity when shape is kept, else a strided 1x1 conv with
    batch norm (ResNet's option B). Converted, the add becomes one group of
    integrate-and-fire neurons fed by two synapses (conv2 and the shortcut).
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1, act: str = "qcfs",
                 threshold: float = 2.0, levels: int = 8) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.act1 = activation(act, threshold, levels)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
        self.act2 = activation(act, threshold, levels)

    def forward(self, x):
        return self.act2(self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
                         + self.shortcut(x))


def resnet(input_shape: tuple[int, ...] = (1, 28, 28), widths: tuple[int, ...] = (8, 16, 32),
           blocks: int = 1, classes: int = 10, act: str = "qcfs", threshold: float = 2.0,
           levels: int = 8, seed: int = 0) -> nn.Sequential:
    """A small ResNet: stem conv, ``len(widths)`` stages of ``blocks`` residual blocks
    (each stage after the first halves the resolution), global average pooling, Linear.

    Weights are initialised from ``seed`` without touching the global RNG.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers: list[nn.Module] = [
            nn.Conv2d(input_shape[0], widths[0], 3, 1, 1, bias=False),
            nn.BatchNorm2d(widths[0]), activation(act, threshold, levels)]
        c_in = widths[0]
        for stage, width in enumerate(widths):
            for b in range(blocks):
                stride = 2 if stage > 0 and b == 0 else 1
                layers.append(ResidualBlock(c_in, width, stride, act, threshold, levels))
                c_in = width
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, classes)]
        return nn.Sequential(*layers)


#: The CIFAR VGG layouts (Simonyan & Zisserman's configurations A and D): output channels
#: of each 3x3 conv, ``"P"`` for a 2x2 average pooling.
VGG_LAYOUTS = {
    "vgg11": (64, "P", 128, "P", 256, 256, "P", 512, 512, "P", 512, 512, "P"),
    "vgg16": (64, 64, "P", 128, 128, "P", 256, 256, 256, "P", 512, 512, 512, "P",
              512, 512, 512, "P"),
}


def vgg(layout: str = "vgg16", input_shape: tuple[int, ...] = (3, 32, 32), classes: int = 10,
        hidden: int = 256, act: str = "qcfs", threshold: float = 2.0, levels: int = 8,
        seed: int = 0, width: float = 1.0) -> nn.Sequential:
    """A CIFAR-style VGG (:data:`VGG_LAYOUTS`): 3x3 convs with BatchNorm and ``act``,
    2x2 average pooling (the conversion-ready stand-in for max pooling), then a small
    classifier: Flatten, ``Linear(C*H*W, hidden) + act`` (none when ``hidden`` is 0),
    ``Linear(hidden, classes)``. On 32x32 inputs the features end at 512x1x1, as in the
    QCFS and Deng & Gu CIFAR networks. ``width`` scales every conv's channels (rounded,
    at least 1): 0.25 gives a VGG with 16 to 128 channels, about 1/16 of the arithmetic.

    Weights are initialised from ``seed`` without touching the global RNG.
    """
    if layout not in VGG_LAYOUTS:
        raise ConfigError(f"VGG layout {layout!r} is unknown: use one of {sorted(VGG_LAYOUTS)}")
    if len(input_shape) != 3:
        raise ConfigError(f"input_shape={input_shape} is invalid: VGG takes images (C, H, W)")
    if not (isinstance(width, (int, float)) and 0 < width <= 16):
        raise ConfigError(f"width={width!r} is invalid: use a channel scale in (0, 16]")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers: list[nn.Module] = []
        c, h, w = input_shape
        for item in VGG_LAYOUTS[layout]:
            if item == "P":
                if h < 2 or w < 2:
                    raise ConfigError(f"input_shape={input_shape} is too small for {layout}'s "
                                      "five poolings: use at least 32x32 images")
                layers.append(nn.AvgPool2d(2))
                h, w = h // 2, w // 2
                continue
            channels = max(1, round(item * width))
            layers += [nn.Conv2d(c, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels),
                       activation(act, threshold, levels)]
            c = channels
        layers.append(nn.Flatten())
        width = c * h * w
        if hidden:
            layers += [nn.Linear(width, hidden), activation(act, threshold, levels)]
            width = hidden
        layers.append(nn.Linear(width, classes))
        return nn.Sequential(*layers)


def vgg11(input_shape: tuple[int, ...] = (3, 32, 32), classes: int = 10, act: str = "qcfs",
          **kwargs) -> nn.Sequential:
    """CIFAR VGG-11 (8 convs, :func:`vgg`)."""
    return vgg("vgg11", input_shape, classes, act=act, **kwargs)


def vgg16(input_shape: tuple[int, ...] = (3, 32, 32), classes: int = 10, act: str = "qcfs",
          **kwargs) -> nn.Sequential:
    """CIFAR VGG-16 (13 convs, :func:`vgg`)."""
    return vgg("vgg16", input_shape, classes, act=act, **kwargs)


def resnet20(input_shape: tuple[int, ...] = (3, 32, 32), classes: int = 10, act: str = "qcfs",
             **kwargs) -> nn.Sequential:
    """CIFAR ResNet-20 (He et al.): a 16-channel stem, three stages of three basic blocks
    with 16, 32 and 64 channels, global average pooling and a Linear readout
    (:func:`resnet`; downsampling shortcuts are strided 1x1 convs with BatchNorm)."""
    return resnet(input_shape, (16, 32, 64), 3, classes, act, **kwargs)
