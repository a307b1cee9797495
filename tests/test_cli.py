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
