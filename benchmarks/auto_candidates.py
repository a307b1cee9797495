"""What ``balancing="auto"`` chooses from, measured on the test set.

The plain-ReLU CNN and MLP of :mod:`benchmarks.peers` (one epoch on all of MNIST), at
T = 4 and 8. Every threshold rule of ``auto`` (:data:`CANDIDATES`) is converted through
the pipeline twice, without and with bias calibration on
:data:`AUTO_BIAS_CALIBRATION` samples, and simulated on the full test set (fixed point,
Lava-exact): accuracy and spikes per inference. Next to each, what ``auto`` itself
measured on its held-out calibration samples (agreement with the ANN; it measures every
rule without calibration and the best of each grain and shift with it) and which candidate it
kept. The summary per table says how far the kept candidate is from the test set's best,
in points and in standard errors of their paired difference on the test set, and how
well the held-out agreement ranks the candidates (Spearman's rho against test accuracy
over the candidates ``auto`` measured).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import spearmanr

import lava_convert as lc
from benchmarks.peers import mnist_split, relu_cnn, relu_mlp, trained
from lava_convert.passes.auto_balancing import (
    AUTO_BIAS_CALIBRATION,
    CANDIDATES,
    describe_settings,
)
from lava_convert.sim.reference import simulate_fixed

TIMESTEPS = (4, 8)


def measure(model, calib, x, y, T: int, settings: dict) -> tuple[np.ndarray, float]:
    """Per test sample: correct or not; and spikes per inference."""
    converted = lc.convert(model, calibration=calib, timesteps=T, **settings)
    run = simulate_fixed(converted.fixed, x, T)
    return run.predictions == y, float(sum(run.spikes_per_sample().values()))


def candidate_table(model, calib, x, y, T: int) -> list[str]:
    auto = lc.convert(model, calibration=calib, timesteps=T, balancing="auto")
    choice = auto.balancing_choice
    held = {describe_settings(c.settings): c for c in choice.candidates}
    rows, correct = [], {}
    for rule in CANDIDATES:
        for calibrated in (False, True):
            settings = {**rule, **({"bias_calibration": AUTO_BIAS_CALIBRATION}
                                   if calibrated else {})}
            name = describe_settings(settings)
            correct[name], spikes = measure(model, calib, x, y, T, settings)
            c = held.get(name)
            kept = settings == choice.chosen
            rows.append((name, c, float(correct[name].mean()), spikes, kept))
    lines = ["| candidate | auto's held-out agreement % | tied | test accuracy % | "
             "spikes per inference |", "|---|---|---|---|---|"]
    for name, c, acc, spikes, kept in rows:
        mark = "**" if kept else ""
        agreement = f"{100 * c.agreement:.2f}" if c else "not measured"
        tied = ("yes" if c.tied else "no") if c else "-"
        lines.append(f"| {mark}{name}{mark} | {agreement} | {tied} | {100 * acc:.2f} | "
                     f"{spikes:.0f} |")
    kept_name = describe_settings(choice.chosen)
    best_name = max(correct, key=lambda n: correct[n].mean())
    a, b = correct[kept_name], correct[best_name]
    discordant = int(np.sum(a != b))
    gap = 100 * (b.mean() - a.mean())
    se = 100 * np.sqrt(discordant) / len(y)
    close = sum(100 * (b.mean() - v.mean()) <= se for v in correct.values())
    measured = [(c.agreement, correct[n].mean()) for n, c in held.items()]
    rho = spearmanr([m[0] for m in measured], [m[1] for m in measured]).statistic
    lines += ["", f"Kept: {kept_name}, {100 * a.mean():.2f} % on the test set. Most accurate "
              f"on the test set: {best_name}, {100 * b.mean():.2f} %; the kept one is "
              f"{gap:.2f} points behind, {gap / se if se else 0.0:.1f} standard errors of "
              f"their paired difference ({discordant} test samples on which exactly one is "
              f"right). {close} of the {len(correct)} candidates are within one such "
              f"standard error ({se:.2f} points) of the best. Spearman's rho of auto's "
              f"held-out agreement against test accuracy over the {len(measured)} "
              f"candidates it measured: {rho:.2f}.", ""]
    return lines


def section(quick: bool = False) -> str:
    torch.set_num_threads(2)
    data, x, y, calib = mnist_split(quick)
    n_test = len(x)
    lines = ["## What balancing=\"auto\" chooses from: every candidate on the test set", "",
             f"The plain-ReLU networks of the `peers` section, MNIST, {n_test} test images, "
             "fixed point (Lava-exact reference); 2000 calibration images, as there. Each "
             "threshold rule with and without bias calibration "
             f"({AUTO_BIAS_CALIBRATION} samples), converted through the pipeline. Bold: "
             "the candidate auto kept; tied: within one standard error of the most agreeing "
             "candidate on auto's held-out samples (auto keeps the fewest spikes among "
             "those).", ""]
    for name, factory in (("CNN with ReLU", relu_cnn), ("MLP with ReLU", relu_mlp)):
        model = trained(factory, data, quick)
        for T in TIMESTEPS:
            lines += [f"**{name}, T={T}**", ""] + candidate_table(model, calib, x, y, T)
    return "\n".join(lines)
