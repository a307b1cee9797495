"""What ``target="stock-netx"`` costs: accuracy and spikes of the same trained ANNs converted
for lava_convert.netx.Network (default) and for unmodified lava-dl NetX.

MNIST, the MLP 784-256-256-10 and the CNN of the ``cnn`` section (QCFS L=8 both), full test
set, fixed-point reference (Lava-exact), T = 8, 16, 32:

* default: soft reset, V_th/2 initial potential, integrating (potential) readout, as the
  shipped exports (the CNN with bias calibration on 512 samples);
* stock-netx: hard reset, V_th/(2T) bias shift, spiking readout (what stock NetX builds),
  with the same calibration.

Trained models are kept in .data/models (a rerun skips training). The digits MLP is also
converted for stock NetX and exported to netx_exports/digits_mlp_stock.net.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

import lava_convert as lc
from lava_convert.sim.reference import simulate_fixed
from lava_convert.zoo.data import load_dataset, load_digits
from lava_convert.zoo.models import mlp
from lava_convert.zoo.train import accuracy, digits_mlp, train_classifier

from .cnn import BIAS_CALIBRATION, mnist_cnn

TIMESTEPS = (8, 16, 32)
MODELS = Path(".data/models")


def _trained(name: str, make, data, epochs: int, batch_size: int, lr: float, quick: bool):
    """A trained model from the cache, or trained now; returns (model, seconds trained)."""
    path = MODELS / f"{name}{'_quick' if quick else ''}.pt"
    model = make()
    if path.is_file():
        model.load_state_dict(torch.load(path, weights_only=True))
        return model.eval(), None
    t0 = time.perf_counter()
    n = 5000 if quick else len(data.x_train)
    train_classifier(model, data.x_train[:n], data.y_train[:n], epochs=1 if quick else epochs,
                     lr=lr, batch_size=batch_size, seed=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return model.eval(), time.perf_counter() - t0


def _measure(model, calib, x, y, config: lc.ConversionConfig) -> tuple[float, float]:
    """(accuracy, spikes per sample over all layers) of the converted model."""
    converted = lc.convert(model, calibration=calib, config=config)
    result = simulate_fixed(converted.fixed, x, config.timesteps)
    return result.accuracy(y), sum(result.spikes_per_sample().values())


def export_digits_stock(out: Path) -> Path:
    data = load_digits()
    model = train_classifier(digits_mlp(), data.x_train, data.y_train)
    config = lc.ConversionConfig.stock_netx(timesteps=32)
    converted = lc.convert(model, calibration=data.x_train, config=config)
    converted.accuracy.update(
        ann=accuracy(model, data.x_test, data.y_test),
        snn_reference=converted.simulate(data.x_test).accuracy(data.y_test),
        test_samples=len(data.x_test))
    return converted.export(out / "digits_mlp_stock.net")


def section(quick: bool = False) -> str:
    data = load_dataset("mnist")
    n_test = 1000 if quick else len(data.x_test)
    x, y = data.x_test[:n_test], data.y_test[:n_test]
    calib = data.calibration_sample(2000)
    nets = {
        "MLP 784-256-256-10": (_trained("mnist_mlp_qcfs", lambda: mlp(
            (1, 28, 28), (256, 256), 10, act="qcfs", levels=8, seed=0), data, 10, 128, 1e-3,
            quick), 0),
        "CNN (cnn section)": (_trained("mnist_cnn_qcfs", mnist_cnn, data, 4, 128, 2e-3, quick),
                              BIAS_CALIBRATION),
    }
    lines = ["## Stock NetX target: accuracy (%) and spikes per sample, MNIST", "",
             f"{n_test} test samples, fixed-point reference (Lava-exact). Default: soft reset, "
             "V_th/2 start, potential readout; stock-netx: hard reset, V_th/(2T) bias shift, "
             "spiking readout. Same trained ANN and calibration for both.", "",
             "| network | ANN | target | " + " | ".join(f"T={T}" for T in TIMESTEPS)
             + " | spikes/sample at T=16 |",
             "|---|---|---" + "|---" * len(TIMESTEPS) + "|---|"]
    for label, ((model, train_s), calibration) in nets.items():
        ann = accuracy(model, x, y)
        for target, make in (("default", lambda T, c=calibration: lc.ConversionConfig(
                timesteps=T, shift="v0", bias_calibration=c)),
                             ("stock-netx", lambda T, c=calibration: lc.ConversionConfig.stock_netx(
                                 timesteps=T, bias_calibration=c))):
            results = [_measure(model, calib, x, y, make(T)) for T in TIMESTEPS]
            lines.append(f"| {label} | {100 * ann:.2f} | {target} | "
                         + " | ".join(f"{100 * a:.2f}" for a, _ in results)
                         + f" | {results[1][1]:.0f} |")
        if train_s is not None:
            lines.append(f"| ({label} trained in {train_s:.0f} s) | | | | | | |")
    if not quick:
        path = export_digits_stock(Path("netx_exports"))
        lines += ["", f"Exported {path} (digits MLP, target stock-netx, T=32): it runs in "
                  "unmodified lava-dl NetX spike for spike with the reference "
                  "(tests/lava_runtime/test_network.py)."]
    return "\n".join(lines + [""])
