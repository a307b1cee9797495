"""The console script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def lava_convert(*args, cwd=None):
    exe = Path(sys.executable).with_name("lava-convert")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=600, cwd=cwd)


@pytest.mark.lava
def test_demo_writes_export_table_and_json(tmp_path):
    out = tmp_path / "exports"
    result = lava_convert("demo", "--out", str(out), "--limit", "40", "--json",
                          str(tmp_path / "demo.json"))
    assert result.returncode == 0, result.stderr
    assert "SNN Lava (fixed_pt)" in result.stdout and "identical" in result.stdout
    summary = json.loads((tmp_path / "demo.json").read_text())
    assert summary["lava_matches_reference"] is True
    assert summary["accuracy"]["snn_lava"] == summary["accuracy"]["snn_reference_on_lava_samples"]
    assert (out / "digits_mlp.net").is_file()
    side = json.loads((out / "digits_mlp.json").read_text())
    assert side["accuracy"]["lava_samples"] == 40


def test_help_and_bad_arguments():
    assert "demo" in lava_convert("--help").stdout
    bad = lava_convert("demo", "--timesteps", "0", "--quiet")
    assert bad.returncode == 2 and "timesteps" in bad.stderr


def test_train_saves_a_model_that_loads_and_converts(tmp_path):
    from lava_convert.data import load_digits
    from lava_convert.models import load_model
    from lava_convert.train import accuracy

    out = tmp_path / "m.pt"
    result = lava_convert("train", "--activation", "qcfs", "--hidden", "32", "--epochs", "3",
                          "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "test accuracy" in result.stdout
    model = load_model(out)
    d = load_digits()
    reported = float(result.stdout.split("test accuracy ")[1].split(" %")[0])
    assert abs(100 * accuracy(model, d.x_test, d.y_test) - reported) < 0.01
    import lava_convert as lc

    snn = lc.convert(model, calibration=d.x_train, timesteps=8, shift="v0")
    assert snn.ann.layers[0].activation == "qcfs"


def test_train_reports_missing_dataset_files(tmp_path):
    result = lava_convert("train", "--data", "mnist", "--data-dir", str(tmp_path), "--out",
                          str(tmp_path / "m.pt"))
    assert result.returncode == 2
    assert "train-images-idx3-ubyte" in result.stderr and "make data" in result.stderr


@pytest.mark.lava
def test_run_verb_on_both_backends(tmp_path, digits_net):
    out = tmp_path / "run.json"
    result = lava_convert("run", str(digits_net), "--limit", "12", "--json", str(out))
    assert result.returncode == 0, result.stderr
    lava = json.loads(out.read_text())
    ref = lava_convert("run", str(digits_net), "--backend", "reference", "--limit", "12",
                       "--json", str(out))
    assert ref.returncode == 0 and "reference-fixed" in ref.stdout
    reference = json.loads(out.read_text())
    assert lava["backend"] == "lava" and lava["samples"] == 12
    assert lava["accuracy"] == reference["accuracy"]
    assert lava["spikes_per_sample"] == reference["spikes_per_sample"]


def test_run_verb_reports_bad_files(tmp_path):
    bad = tmp_path / "x.net"
    bad.write_bytes(b"not hdf5")
    result = lava_convert("run", str(bad), "--backend", "reference")
    assert result.returncode == 2 and "x.net" in result.stderr and "HDF5" in result.stderr
