"""Model files run code only with the user's word: pickles, foreign factories, bad JSON."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import lava_convert as lc
from lava_convert.zoo.models import load_model, mlp, model_from, save_model


class Payload:
    """Unpickling this writes a marker file: the stand-in for an attacker's code."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path(self.marker).write_text, ("ran",))


def test_a_pickled_payload_does_not_run_without_trust_code(tmp_path):
    marker = tmp_path / "marker"
    evil = tmp_path / "evil.pt"
    torch.save({"model": Payload(str(marker))}, evil)
    with pytest.raises(lc.ConfigError, match="pickled Python objects.*--trust-code"):
        load_model(evil)
    assert not marker.exists()


def test_a_whole_module_loads_with_trust_code(tmp_path):
    model = mlp((1, 8, 8), (16,), 10)
    path = tmp_path / "whole.pt"
    torch.save(model, path)
    with pytest.raises(lc.ConfigError, match="--trust-code"):
        model_from(str(path))
    loaded = model_from(str(path), trust_code=True)
    x = torch.rand(3, 1, 8, 8)
    torch.testing.assert_close(loaded(x), model.eval()(x))


def test_a_saved_factory_outside_lava_convert_needs_trust_code(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "factory.pt"
    torch.save({"factory": "pathlib:Path.touch", "kwargs": {}, "state_dict": {}}, path)
    with pytest.raises(lc.ConfigError, match="factory 'pathlib:Path.touch', outside"):
        load_model(path)
    assert not marker.exists()


def test_our_own_format_loads_without_unpickling_code(tmp_path):
    model = mlp((1, 8, 8), (16,), 10)
    path = save_model(model, tmp_path / "ours.pt", factory="lava_convert.zoo.models:mlp",
                      kwargs=dict(input_shape=(1, 8, 8), hidden=(16,), classes=10))
    x = torch.rand(2, 1, 8, 8)
    torch.testing.assert_close(load_model(path)(x), model.eval()(x))


def test_a_state_dict_alone_says_what_else_to_pass(tmp_path):
    path = tmp_path / "state.pt"
    torch.save(nn.Linear(3, 2).state_dict(), path)
    with pytest.raises(lc.ConfigError, match="module:factory --weights"):
        model_from(str(path))


def cli(*args):
    exe = Path(sys.executable).with_name("lava-convert")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("extra, fragment", [
    (["--kwargs", "{not json"], "--kwargs is not valid JSON"),
    (["--kwargs", "[1, 2]"], "--kwargs must be a JSON object"),
    (["--kwargs", '{"nonsense": 1}'], "does not take these arguments"),
])
def test_bad_factory_arguments_are_one_line_errors(tmp_path, extra, fragment):
    state = tmp_path / "w.pt"
    torch.save(mlp((1, 8, 8), (16,), 10).state_dict(), state)
    result = cli("convert", "lava_convert.zoo.models:mlp", "--weights", str(state),
                 "--out", str(tmp_path / "n.net"), *extra)
    assert result.returncode == 2 and fragment in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("content, fragment", [
    ("null", "must be a JSON object"), ("[" * 100_000, "RecursionError|cannot read")])
def test_bad_config_and_report_json_are_one_line_errors(tmp_path, content, fragment):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    for args in (["convert", "x.pt", "--config", str(bad), "--out", str(tmp_path / "n.net")],
                 ["report", str(bad), "--out", str(tmp_path / "r")]):
        result = cli(*args)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr and result.stderr.startswith("lava-convert:")


def test_swap_maxpool_and_fine_tune_from_the_command_line(tmp_path):
    """A LeNet-style model with MaxPool: refused by convert; swapped, fine-tuned and saved by
    `train --swap-maxpool`; then it converts (with --trust-code: it is a whole module)."""
    lenet = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(4 * 4 * 4, 10))
    source = tmp_path / "lenet.pt"
    torch.save(lenet, source)
    refused = cli("convert", str(source), "--trust-code", "--out", str(tmp_path / "a.net"))
    assert refused.returncode == 2 and "retrain or fine-tune" in refused.stderr
    out = tmp_path / "lenet_avg.pt"
    result = cli("train", "--swap-maxpool", str(source), "--trust-code", "--epochs", "2",
                 "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "with max pooling" in result.stdout and "after fine-tuning 2 epoch(s)" in result.stdout
    converted = cli("convert", str(out), "--trust-code", "--timesteps", "8",
                    "--out", str(tmp_path / "b.net"))
    assert converted.returncode == 0, converted.stderr


def test_swap_maxpool_keeps_the_geometry():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(3, stride=2, padding=1))
    assert lc.swap_maxpool(model) == 1
    pool = model[1]
    assert isinstance(pool, nn.AvgPool2d)
    assert (pool.kernel_size, pool.stride, pool.padding) == (3, 2, 1)
