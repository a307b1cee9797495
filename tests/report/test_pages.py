"""Run reports compare like with like and say what they leave out."""

from __future__ import annotations

from lava_convert.report.pages import write_report
from lava_convert.report.summary import LayerSummary, RunSummary


def lava_run(**changes) -> RunSummary:
    layer = LayerSummary(name="1", kind="dense", neurons=4, spiking=True,
                         spikes_per_sample=3.0, rate=0.1)
    return RunSummary(backend="lava", samples=200, timesteps=16, accuracy=1.0,
                      layers=(layer,), ann_accuracy=0.9764, ann_samples=10000,
                      **changes)


def test_accuracies_carry_their_sample_counts(tmp_path):
    page = write_report(lava_run(), tmp_path).read_text()
    assert "100.00 % on 200 samples" in page
    assert "97.64 % on 10000 samples" in page and "not the same samples" in page
    same = write_report(lava_run().replace(ann_samples=200), tmp_path / "same").read_text()
    assert "not the same samples" not in same


def test_a_missing_accuracy_curve_is_explained(tmp_path):
    page = write_report(lava_run(), tmp_path).read_text()
    assert "No accuracy-vs-T figure" in page and "lava-convert sweep" in page
    curve = write_report(lava_run(accuracy_per_step=[0.5, 1.0]), tmp_path / "c").read_text()
    assert "No accuracy-vs-T figure" not in curve and "accuracy_vs_t.png" in curve


def test_energy_is_shown_as_labelled_estimates_with_their_sources(tmp_path):
    from lava_convert.report.energy import estimate_energy

    cost = {"layers": [], "synops": 1000.0, "ann_macs": 500,
            "energy": estimate_energy(1000, 100, 500, 16).to_dict()}
    page = write_report(lava_run(cost=cost), tmp_path).read_text()
    assert "## Energy per sample (estimates)" in page
    assert "| Loihi with static power | 14400.029 |" in page  # 0.9 W x 16 x 1 ms + 28.8 nJ
    assert "Davies" in page and "Horowitz" in page and "assumption" in page
    # a summary written before the estimate had its parts still shows its one figure
    old = {"layers": [], "snn_energy_j": 2e-6, "ann_energy_j": 1e-6,
           "energy_note": "estimate from published per-operation energies"}
    page = write_report(lava_run(cost=old), tmp_path / "old").read_text()
    assert "SNN on Loihi 2.000 uJ" in page
