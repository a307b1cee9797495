"""Plain-ReLU and QCFS networks: lava-convert next to SpikingJelly's and Sinabs' converters.

Two ANNs are trained briefly on MNIST, each twice: with plain ReLUs (what most users
bring) and with QCFS activations at L=4 levels (quantization-aware, matched to T=4): a
CNN (conv8-conv8-pool-conv16-pool-fc64-fc10) and an MLP (784-256-256-10). Each is
converted

* by lava-convert: plain ReLUs with ``balancing="max"`` (the default before ``"auto"``
  chose) and ``balancing="auto"`` (threshold rules, and the best of each grain and shift
  with bias calibration, measured Lava-exact on held-out calibration data);
  QCFS with its clips, a V_th/2 start, and potential then bias calibration (64
  samples); fixed point, Lava-exact;
* by SpikingJelly 2.0.0 (``ann2snn.RateCodingRecipe``): modes max, 99.9 % and 1/2 of
  max, and channel-wise 99.9 % with a half-threshold start;
* by Sinabs 3.1.3: ``normalize_weights`` (99.99th percentile) then ``from_model``
  (soft reset, several spikes per step allowed);

(the peers convert ReLUs only: for the QCFS twins they get the same weights with each
QCFS replaced by a ReLU, their thresholds then coming from their own normalisation)
and run on the full test set for T = 4 ... 64; the peers in float32, ours in Loihi's
fixed point. Accuracy, spikes and synaptic operations per inference (all spiking layers;
:func:`fanouts`); per T, our most
accurate row against the most accurate peer row, with the standard error of their paired
difference; a Pareto figure per network (benchmarks/figures/). Sinabs' normalisation
changes the ANN's function (:func:`sinabs_runs`): the normalised ANN's accuracy is given.
The simulation speeds are in :mod:`benchmarks.peer_speed`.

The peers are installed for ``make bench`` only (``requirements-peers.lock``,
``--no-deps``); without them their columns are left out.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

import lava_convert as lc
from lava_convert.passes.auto_balancing import describe_settings
from lava_convert.report.cost import fanout
from lava_convert.report.frontier import OperatingPoint, frontier_figure, pareto_front
from lava_convert.sim.reference import simulate_fixed
from lava_convert.zoo.data import load_dataset
from lava_convert.zoo.train import accuracy, train_classifier

TIMESTEPS = (4, 8, 16, 32, 64)
LEVELS = 4
#: Samples for our potential and bias calibration of the QCFS twins (their cost grows
#: with T; 64 keeps T=64 affordable).
CALIBRATION = 64
#: How our rows' labels begin.
OURS = "lava-convert"
FIGURES = Path(__file__).with_name("figures")


def relu_cnn() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
        nn.AvgPool2d(2), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(16 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, 10))


def relu_mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256),
                         nn.ReLU(), nn.Linear(256, 10))


def qcfs_twin(factory):
    """``factory``'s network with every ReLU a QCFS at :data:`LEVELS` levels."""
    def make() -> nn.Sequential:
        return lc.replace_relus(factory(), "qcfs", levels=LEVELS, threshold=2.0)
    return make


def mnist_split(quick: bool):
    """MNIST; the test images the comparisons run on (200 under ``--quick``) and their
    labels; and the 2000 calibration images every converter here is given."""
    data = load_dataset("mnist")
    n_test = 200 if quick else len(data.x_test)
    return data, data.x_test[:n_test], data.y_test[:n_test], data.calibration_sample(2000)


def trained(factory, data, quick: bool) -> nn.Module:
    """``factory()``'s network trained briefly (one epoch, seed 0) on ``data``, the recipe
    of every ANN compared with the peers."""
    n = 2000 if quick else len(data.x_train)
    return train_classifier(factory(), data.x_train[:n], data.y_train[:n], epochs=1,
                            lr=2e-3, batch_size=128, seed=0).eval()


def as_relus(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with each QCFS replaced by a ReLU (what the peers convert)."""
    model = copy.deepcopy(model)
    for module in list(model.modules()):
        for child, sub in list(module.named_children()):
            if isinstance(sub, lc.QCFS):
                setattr(module, child, nn.ReLU())
    return model


@dataclass(frozen=True)
class Result:
    """One converter at one T on the test set: its accuracy, spikes and synaptic
    operations per inference (:func:`fanouts`), which test samples it got right, and
    (ours, with ``balancing="auto"``) what auto chose."""

    accuracy: float
    spikes: float
    synops: float
    hits: np.ndarray
    chosen: str = ""


def fanouts(model, calib) -> list[torch.Tensor]:
    """Per spiking layer of ``model`` (its ReLUs, in order), how many synapses each of its
    neurons drives in the next layer: the ANN's non-zero weights, pooling folded into the
    next layer as lava-convert folds it. Spikes times these are the synaptic operations,
    counted alike for every converter of the same weights."""
    snn = lc.convert(model, calibration=calib[:64], timesteps=4, balancing="max").snn
    if any(layer.skips for layer in snn.layers):
        raise ValueError("fanouts counts chains of layers; this network has shortcuts")
    return [torch.as_tensor(fanout(nxt.synapse, layer.out_shape))
            for layer, nxt in zip(snn.layers, snn.layers[1:])]


def ours(model, calib, x, y, synapses, balancing: str, **settings) -> dict[int, Result]:
    out = {}
    for T in TIMESTEPS:
        converted = lc.convert(model, calibration=calib, timesteps=T, balancing=balancing,
                               **settings)
        run = simulate_fixed(converted.fixed, x, T)
        counts = [run.spike_counts[layer.name] for layer in converted.fixed.layers[:-1]]
        synops = sum(float(c.mean(0) @ f.numpy()) for c, f in zip(counts, synapses, strict=True))
        choice = converted.balancing_choice
        out[T] = Result(run.accuracy(y), sum(run.spikes_per_sample().values()), synops,
                        run.predictions == y,
                        describe_settings(choice.chosen) if choice else "")
    return out


def counting_hooks(layers: list[nn.Module], synapses: list[torch.Tensor],
                   tally: np.ndarray) -> list:
    """Forward hooks on a peer's spiking ``layers`` (in order) that add to ``tally`` the
    spikes each call emits (``tally[0]``) and the synaptic operations they drive
    (``tally[1]``; ``synapses``: :func:`fanouts`). Remove them when done."""
    def count(module, inputs, output, synapses):
        tally[0] += float(output.sum())
        tally[1] += float(output.sum(0).reshape(-1).double() @ synapses)

    return [m.register_forward_hook(functools.partial(count, synapses=f))
            for m, f in zip(layers, synapses, strict=True)]


def spikingjelly_runs(model, calib, x, y, synapses) -> dict[str, dict[int, Result]]:
    from spikingjelly.activation_based import ann2snn, functional, neuron

    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.tensor(calib, dtype=torch.float32),
                                       torch.zeros(len(calib))), batch_size=256)
    recipes = {
        "SpikingJelly max": dict(mode="max"),
        "SpikingJelly 99.9%": dict(mode="99.9%"),
        "SpikingJelly 1/2 max": dict(mode=1.0 / 2),
        "SpikingJelly channel-wise 99.9%, half threshold": dict(mode="99.9%",
                                                                channel_wise=True,
                                                                half_threshold=True),
    }
    results = {}
    for name, kwargs in recipes.items():
        recipe = ann2snn.RateCodingRecipe(dataloader=loader, **kwargs)
        snn = ann2snn.FXConverter(recipe=recipe, device="cpu").convert(copy.deepcopy(model))
        snn.eval()
        tally = np.zeros(2)
        hooks = counting_hooks([m for m in snn.modules() if isinstance(m, neuron.BaseNode)],
                               synapses, tally)
        hits = {T: [] for T in TIMESTEPS}
        spike_at, ops_at = np.zeros(max(TIMESTEPS)), np.zeros(max(TIMESTEPS))
        xt = torch.tensor(x, dtype=torch.float32)
        with torch.no_grad():
            for lo in range(0, len(x), 500):
                functional.reset_net(snn)
                total = None
                for t in range(max(TIMESTEPS)):
                    step = snn(xt[lo:lo + 500])
                    total = step if total is None else total + step
                    if t + 1 in hits:
                        hits[t + 1].append(total.argmax(1).numpy() == y[lo:lo + 500])
                    spike_at[t], ops_at[t] = spike_at[t] + tally[0], ops_at[t] + tally[1]
                    tally[:] = 0.0
        for h in hooks:
            h.remove()
        cumulative, ops = np.cumsum(spike_at) / len(x), np.cumsum(ops_at) / len(x)
        results[name] = {T: Result(float(np.mean(np.concatenate(hits[T]))),
                                   cumulative[T - 1], ops[T - 1], np.concatenate(hits[T]))
                         for T in TIMESTEPS}
    return results


def sinabs_runs(model, calib, x, y, synapses) -> tuple[dict[str, dict[int, Result]], float]:
    """Sinabs' rows, and the test accuracy of the ANN after its ``normalize_weights``.

    That function divides each layer's weights and bias by the layer's activation
    percentile but does not rescale the next layer's bias to match, so the network it
    hands to ``from_model`` computes a different function from ``model`` (its biases
    weigh more), which is what Sinabs' SNN approaches as T grows."""
    import sinabs
    from sinabs.from_torch import from_model

    ann = copy.deepcopy(model)
    relus = [n for n, m in ann.named_modules() if isinstance(m, nn.ReLU)]
    params = [n for n, m in ann.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))][:-1]
    sinabs.utils.normalize_weights(ann, torch.tensor(calib[:500], dtype=torch.float32),
                                   relus, params, percentile=99.99)
    normalized = accuracy(ann, x, y)
    out = {}
    for T in TIMESTEPS:
        net = from_model(ann, input_shape=tuple(x.shape[1:]), num_timesteps=T,
                         add_spiking_output=False).spiking_model.eval()
        hits, tally = [], np.zeros(2)
        layers = [m for m in net.modules() if isinstance(m, sinabs.layers.IAFSqueeze)]
        hooks = counting_hooks(layers, synapses, tally)
        with torch.no_grad():
            for lo in range(0, len(x), 250):
                for layer in layers:
                    layer.reset_states()
                xb = torch.tensor(x[lo:lo + 250], dtype=torch.float32)
                rep = xb.unsqueeze(1).expand(len(xb), T, *xb.shape[1:]).reshape(-1,
                                                                                 *xb.shape[1:])
                logits = net(rep).reshape(len(xb), T, -1).sum(1)
                hits.append(logits.argmax(1).numpy() == y[lo:lo + 250])
        for h in hooks:
            h.remove()
        hits = np.concatenate(hits)
        out[T] = Result(float(hits.mean()), tally[0] / len(x), tally[1] / len(x), hits)
    return {"Sinabs (normalize 99.99 %, multi-spike)": out}, normalized


def table(name: str, ann: float, rows: dict[str, dict]) -> list[str]:
    head = "| converter | " + " | ".join(f"T={T}" for T in TIMESTEPS) + " |"
    lines = [f"**{name}** (ANN {100 * ann:.2f} %): accuracy % / spikes / thousands of "
             "synaptic operations per inference", "", head, "|---|" + "---|" * len(TIMESTEPS)]
    for label, by_t in rows.items():
        cells = [f"{100 * by_t[T].accuracy:.2f} / {by_t[T].spikes:.0f} / "
                 f"{by_t[T].synops / 1e3:.0f}" for T in TIMESTEPS]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    chosen = {T: by_t[T].chosen for by_t in rows.values() for T in TIMESTEPS
              if by_t[T].chosen}
    if chosen:
        lines += ["", "auto chose: " + "; ".join(f"T={T}: {c}" for T, c in chosen.items())]
    return lines + [""]


def against_best_peer(rows: dict[str, dict[int, Result]]) -> list[str]:
    """Per T, the most accurate of our rows against the most accurate peer row (each
    picked on the test set; ties: fewer spikes): the difference in points, in standard
    errors of the paired difference (``sqrt(d)`` samples for ``d`` test samples on which
    exactly one of the two is right), and the ratio of spikes."""
    def best(labels: list[str], T: int) -> str:
        return max(labels, key=lambda label: (rows[label][T].accuracy, -rows[label][T].spikes))

    mine = [label for label in rows if label.startswith(OURS)]
    peers = [label for label in rows if not label.startswith(OURS)]
    if not peers:
        return []
    lines = ["Against the best peer at each T (each side's most accurate row on the test "
             "set):", ""]
    for T in TIMESTEPS:
        ours_t, peer_t = best(mine, T), best(peers, T)
        a, b = rows[ours_t][T], rows[peer_t][T]
        discordant = int(np.sum(a.hits != b.hits))
        gap = 100 * (a.accuracy - b.accuracy)
        se = 100 * np.sqrt(discordant) / len(a.hits)
        lines.append(f"- T={T}: {ours_t} {100 * a.accuracy:.2f} % against {peer_t} "
                     f"{100 * b.accuracy:.2f} %: {gap:+.2f} points ({gap / se if se else 0:+.1f} "
                     f"standard errors; {discordant} samples on which exactly one is right), "
                     f"{a.spikes / b.spikes:.2f}x the spikes and {a.synops / b.synops:.2f}x the "
                     "synaptic operations.")
    return lines + [""]


def frontier(name: str, ann: float, rows: dict[str, dict], quick: bool) -> list[str]:
    """The Pareto front in words, and the figure (written unless ``quick``)."""
    points = [OperatingPoint(label, T, r.accuracy, r.spikes) for label, by_t in rows.items()
              for T, r in by_t.items()]
    front = pareto_front(points)
    lines = ["Pareto front (accuracy, spikes, T; no other point is at least as good in all "
             "three): " + "; ".join(f"{p.method} T={p.timesteps} ({100 * p.accuracy:.2f} %, "
                                   f"{p.spikes:.0f})" for p in front) + "."]
    if not quick:
        slug = name.lower().replace(" ", "_").replace("=", "")
        path = frontier_figure(points, FIGURES / f"pareto_{slug}.png",
                               title=f"MNIST {name}: accuracy vs spikes (labels: T)",
                               ann_accuracy=ann, floor=max(0.0, ann - 0.10))
        lines += ["", f"![{name}](figures/{path.name})"]
    return lines + [""]


def section(quick: bool = False) -> str:
    torch.set_num_threads(2)
    data, x, y, calib = mnist_split(quick)
    n_test = len(x)
    try:
        import sinabs  # noqa: F401
        import spikingjelly  # noqa: F401
        peers = True
    except ImportError:
        peers = False
    lines = ["## lava-convert, SpikingJelly and Sinabs on the same ANNs: accuracy and spikes "
             "vs T", "",
             f"MNIST, {n_test} test images; ANNs trained for one epoch "
             f"({'2000' if quick else 'all 60000'} training images), with plain ReLUs and, the "
             f"same architecture, with QCFS (L={LEVELS}). **Ours: Loihi fixed point, "
             "Lava-exact; SpikingJelly and Sinabs: their own float32 simulation, no "
             "quantization.**" + ("" if peers else " (Peers not installed: `make bench` "
                                  "installs them.)"), ""]
    for name, factory, qcfs in (("CNN with ReLU", relu_cnn, False),
                                (f"CNN with QCFS L={LEVELS}", qcfs_twin(relu_cnn), True),
                                ("MLP with ReLU", relu_mlp, False),
                                (f"MLP with QCFS L={LEVELS}", qcfs_twin(relu_mlp), True)):
        model = trained(factory, data, quick)
        ann = accuracy(model, x, y)
        relus = as_relus(model) if qcfs else model
        synapses = fanouts(relus, calib)
        if qcfs:
            label = (f"{OURS}, QCFS clips, V_th/2 start, potential + bias calibration "
                     f"({CALIBRATION} samples)")
            rows = {label: ours(
                model, calib, x, y, synapses, "auto", shift="v0",
                potential_calibration=CALIBRATION, bias_calibration=CALIBRATION)}
        else:
            rows = {f"{OURS}, max (one threshold per layer)": ours(model, calib, x, y,
                                                                   synapses, "max"),
                    f"{OURS}, auto": ours(model, calib, x, y, synapses, "auto")}
        if peers:
            rows.update(spikingjelly_runs(relus, calib, x, y, synapses))
            sinabs_rows, normalized = sinabs_runs(relus, calib, x, y, synapses)
            rows.update(sinabs_rows)
        lines += table(name, ann, rows)
        if peers:
            lines += [f"Sinabs converts a different network: after its `normalize_weights` "
                      f"(each layer's weights and bias divided by its activation percentile, "
                      f"the next layer's bias left as it was) the ANN{' (ReLUs)' if qcfs else ''} "
                      f"scores {100 * normalized:.2f} %, which its SNN approaches as T grows.",
                      ""]
        lines += against_best_peer(rows) + frontier(name, ann, rows, quick)
    return "\n".join(lines)
