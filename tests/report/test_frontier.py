"""The Pareto front of operating points, worked by hand, and its figure."""

from __future__ import annotations

from lava_convert.report.frontier import OperatingPoint, frontier_figure, pareto_front


def _points():
    P = OperatingPoint
    return [P("a", 4, 0.90, 100), P("a", 8, 0.95, 200), P("a", 16, 0.96, 400),
            P("b", 4, 0.93, 150),   # beats nothing of a's at T=4 on spikes, but more accurate
            P("b", 8, 0.94, 250),   # dominated by a at T=8 (less accurate, more spikes)
            P("c", 16, 0.96, 400),  # ties a at T=16 exactly: both stay
            P("c", 32, 0.96, 500)]  # dominated by a at T=16


def test_the_pareto_front_worked_by_hand():
    front = pareto_front(_points())
    assert [(p.method, p.timesteps) for p in front] == [
        ("a", 4), ("b", 4), ("a", 8), ("a", 16), ("c", 16)]


def test_fewer_time_steps_count_on_the_front():
    P = OperatingPoint
    slow, fast = P("slow", 16, 0.9, 100), P("fast", 4, 0.9, 100)
    assert pareto_front([slow, fast]) == [fast]


def test_the_figure_is_a_png(tmp_path):
    path = frontier_figure(_points(), tmp_path / "f" / "front.png", title="t",
                           ann_accuracy=0.97, floor=0.92)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
