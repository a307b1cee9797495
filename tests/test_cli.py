"""The console script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lava_convert as lc


def lava_convert(*args, cwd=None):
    exe = Path(sys.executable).with_name("lava-convert")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=600, cwd=cwd)


def verb_json(out: Path, *args) -> tuple[subprocess.CompletedProcess, dict]:
    """Run a verb with ``--json out``; it must succeed. Returns the process and the JSON."""
    result = lava_convert(*args, "--json", str(out))
    assert result.returncode == 0, result.stderr
    return result, json.loads(out.read_text())


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


def test_demo_writes_outside_the_tracked_tree():
    """``make demo`` must leave ``git status`` clean: its default export directory is
    ignored by git (it used to overwrite netx_exports/digits_mlp.net)."""
    from helpers import ROOT

    from lava_convert.cli import build_parser

    out = Path(build_parser().parse_args(["demo"]).out)
    assert not out.is_absolute()
    check = subprocess.run(["git", "check-ignore", "-q", str(out / "digits_mlp.net")],
                           cwd=ROOT, capture_output=True)
    assert check.returncode == 0, f"{out} is not ignored by git"


def test_help_and_bad_arguments():
    assert "demo" in lava_convert("--help").stdout
    bad = lava_convert("demo", "--timesteps", "0", "--quiet")
    assert bad.returncode == 2 and "timesteps" in bad.stderr


def test_train_saves_a_model_that_loads_and_converts(tmp_path):
    from lava_convert.zoo.data import load_digits
    from lava_convert.zoo.models import load_model
    from lava_convert.zoo.train import accuracy

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
    _, lava = verb_json(out, "run", str(digits_net), "--limit", "12")
    ref, reference = verb_json(out, "run", str(digits_net), "--backend", "reference",
                               "--limit", "12")
    assert "reference-fixed" in ref.stdout
    assert "energy per sample (estimates)" in ref.stdout and "assumed" in ref.stdout
    energy = reference["cost"]["energy"]  # the static-inclusive figure adds to the bound
    assert energy["total_j"] == energy["dynamic_j"] + energy["static_j"] > energy["dynamic_j"]
    assert lava["backend"] == "lava" and lava["samples"] == 12
    assert lava["accuracy"] == reference["accuracy"]
    assert lava["spikes_per_sample"] == reference["spikes_per_sample"]


def test_run_verb_reports_bad_files(tmp_path):
    bad = tmp_path / "x.net"
    bad.write_bytes(b"not hdf5")
    result = lava_convert("run", str(bad), "--backend", "reference")
    assert result.returncode == 2 and "x.net" in result.stderr and "HDF5" in result.stderr


def test_every_verb_has_help_with_examples():
    for verb in ("demo", "train", "convert", "inspect", "run", "sweep", "compare", "report"):
        result = lava_convert(verb, "--help")
        assert result.returncode == 0 and "examples:" in result.stdout, verb


def test_convert_from_a_trained_file_and_from_a_factory(tmp_path):
    import torch

    from lava_convert.zoo.models import load_model

    model_file = tmp_path / "m.pt"
    assert lava_convert("train", "--hidden", "32", "--epochs", "3", "--out",
                        str(model_file), "-q").returncode == 0
    net = tmp_path / "a.net"
    result = lava_convert("convert", str(model_file), "--out", str(net), "--timesteps", "16",
                          "--shift", "v0", "--calibration", "300")
    assert result.returncode == 0, result.stderr
    side = json.loads(net.with_suffix(".json").read_text())
    assert side["config"]["timesteps"] == 16 and side["config"]["shift"] == "v0"
    reported = float(result.stdout.split("SNN (reference, T=16) ")[1].split(" %")[0])
    assert abs(100 * side["accuracy"]["snn_reference"] - reported) < 0.01
    chosen = lc.read_netx(net).input_bits  # input_bits='auto': the file holds the width
    assert f"input_bits='auto': {chosen}-bit graded input" in result.stdout
    assert side["config"]["input_bits"] == "auto" and side["input"]["bits"] == chosen
    fixed = lava_convert("convert", str(model_file), "--out", str(tmp_path / "c.net"),
                         "--input-bits", "5", "--calibration", "300", "-q")
    assert fixed.returncode == 0 and lc.read_netx(tmp_path / "c.net").input_bits == 5
    wrong = lava_convert("convert", str(model_file), "--out", str(tmp_path / "w.net"),
                         "--input-bits", "six")
    assert wrong.returncode == 2 and "'six' is neither 'auto' nor a whole number" in wrong.stderr
    assert not (tmp_path / "w.net").exists()
    # the same weights through module:factory + state_dict + config file
    state = tmp_path / "state.pt"
    torch.save(load_model(model_file).state_dict(), state)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"timesteps": 16, "shift": "v0"}))
    kwargs = json.dumps({"input_shape": [1, 8, 8], "hidden": [32]})
    result = lava_convert("convert", "lava_convert.zoo.models:mlp", "--weights", str(state),
                          "--kwargs", kwargs, "--config", str(config), "--calibration", "300",
                          "--out", str(tmp_path / "b.net"), "-q")
    assert result.returncode == 0, result.stderr
    side_b = json.loads((tmp_path / "b.json").read_text())
    assert side_b["source_weights_sha256"] == side["source_weights_sha256"]
    assert side_b["accuracy"]["snn_reference"] == side["accuracy"]["snn_reference"]
    calibrated = lava_convert("convert", str(model_file), "--out", str(tmp_path / "d.net"),
                              "--config", str(config), "--calibration", "300",
                              "--bias-calibration", "100", "--potential-calibration", "100",
                              "--potential-scope", "channel", "--readout-calibration", "200")
    assert calibrated.returncode == 0, calibrated.stderr
    side_d = json.loads((tmp_path / "d.json").read_text())
    assert side_d["config"]["bias_calibration"] == 100
    assert side_d["config"]["potential_calibration"] == 100
    assert side_d["config"]["potential_scope"] == "channel"
    assert side_d["config"]["readout_calibration"] == 200
    assert "potential_calibration" in side_d["passes"]
    assert "readout_calibration" in side_d["passes"]
    fit = side_d["readout_calibration"]
    assert "readout calibration: mean squared logit error" in calibrated.stdout
    # the same conversion without it: only the readout differs, and only if it was kept
    uncalibrated = lava_convert("convert", str(model_file), "--out", str(tmp_path / "u.net"),
                                "--config", str(config), "--calibration", "300",
                                "--bias-calibration", "100", "--potential-calibration", "100",
                                "--potential-scope", "channel", "-q")
    assert uncalibrated.returncode == 0, uncalibrated.stderr
    def same(a, b) -> bool:
        return (np.array_equal(a.synapse.weight, b.synapse.weight)
                and np.array_equal(a.bias, b.bias) and a.vth == b.vth)

    *hidden_d, readout_d = lc.read_netx(tmp_path / "d.net").layers
    *hidden_u, readout_u = lc.read_netx(tmp_path / "u.net").layers
    assert len(hidden_d) == len(hidden_u) and all(map(same, hidden_d, hidden_u))
    assert fit["kept"] == (not same(readout_d, readout_u))
    plain_bias = lc.read_netx(net).layers[0].bias
    assert not np.array_equal(lc.read_netx(tmp_path / "d.net").layers[0].bias, plain_bias)
    # a factory in a module of the working directory imports, as with `python -m`
    (tmp_path / "mymodels.py").write_text(
        "from lava_convert.zoo.models import mlp\n\ndef net():\n    return mlp(hidden=(32,))\n")
    local = lava_convert("convert", "mymodels:net", "--weights", str(state), "--calibration",
                         "300", "--out", str(tmp_path / "e.net"), "-q", cwd=tmp_path)
    assert local.returncode == 0, local.stderr
    bad = lava_convert("convert", "lava_convert.zoo.models:mlp", "--out", str(tmp_path / "c.net"))
    assert bad.returncode == 2 and "--weights" in bad.stderr
    bad = lava_convert("convert", "nowhere.module:f", "--weights", str(state), "--out",
                       str(tmp_path / "c.net"))
    assert bad.returncode == 2 and "cannot import the factory" in bad.stderr


def test_inspect_sweep_and_report(tmp_path, digits_net, digits_snn):
    result, info = verb_json(tmp_path / "info.json", "inspect", str(digits_net))
    assert [l["name"] for l in info["layers"]] == digits_snn.fixed.layer_names
    assert [l["vth"] for l in info["layers"]] == [l.vth for l in digits_snn.fixed.layers]
    assert info["synapses"] == sum(int((l.weight != 0).sum()) for l in digits_snn.fixed.layers)
    assert any("reset by subtraction" in n for n in info["stock_netx"])
    assert info["stock_netx_loads"] is False
    assert "reset by subtraction" in result.stdout

    sweep_path = tmp_path / "sweep.json"
    _, sweep = verb_json(sweep_path, "sweep", str(digits_net), "--timesteps", "32")
    assert len(sweep["accuracy_per_step"]) == 32
    assert sweep["accuracy_per_step"][-1] == sweep["accuracy"]

    result = lava_convert("report", str(sweep_path), "--out", str(tmp_path / "rep"))
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "rep" / "report.md").read_text()
    for figure in ("accuracy_vs_t.png", "firing_rates.png", "rate_scatter.png", "raster.png",
                   "quantization_error.png"):
        assert f"]({figure})" in page
        assert (tmp_path / "rep" / figure).stat().st_size > 5000
    assert "estimate" in page and "synaptic ops" in page
    html = lava_convert("report", str(sweep_path), "--out", str(tmp_path / "rep"), "--html")
    assert html.returncode == 0 and "<img" in (tmp_path / "rep" / "report.html").read_text()
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    result = lava_convert("report", str(bad), "--out", str(tmp_path / "rep2"))
    assert result.returncode == 2 and "run --json" in result.stderr


@pytest.mark.lava
def test_sharded_runs_from_the_command_line(tmp_path, digits_net):
    # the same result as one worker: tests/lava_runtime/test_shards.py; here the flags
    _, ref = verb_json(tmp_path / "ref.json", "run", str(digits_net), "--limit", "9",
                       "--backend", "reference")
    _, two = verb_json(tmp_path / "two.json", "run", str(digits_net), "--limit", "9",
                       "--workers", "2")
    for key in ("accuracy", "samples", "spikes_per_sample"):
        assert ref[key] == two[key], key
    result, cmp = verb_json(tmp_path / "cmp.json", "compare", str(digits_net), "--limit", "6",
                            "--scheduler", "local:2")
    assert cmp["identical"] and cmp["samples"] == 6
    assert "distributed" not in result.stderr  # Dask's INFO logs only with --verbose
    for args, message in [
            (["run", str(digits_net), "--workers", "0"], "workers=0 is invalid"),
            (["run", str(digits_net), "--backend", "reference", "--workers", "2"],
             "reference backend runs in this process"),
            (["compare", str(digits_net), "--scheduler", "nowhere"], "use local:N")]:
        bad = lava_convert(*args)
        assert bad.returncode == 2 and message in bad.stderr.replace("'", "."), bad.stderr
        assert "Traceback" not in bad.stderr


@pytest.mark.lava
def test_a_killed_dask_worker_is_one_line_on_the_command_line(digits_net):
    """SIGKILL of the Dask worker running a shard under ``run --scheduler local:2``: the
    command fails within seconds with one line naming the shard, no Dask log lines or
    tracebacks around it, and none of its processes left (the run used to hang until
    Ctrl-C; then Dask's ERROR lines and quoted tracebacks surrounded the error)."""
    import signal
    import time

    import psutil

    exe = Path(sys.executable).with_name("lava-convert")
    proc = subprocess.Popen([str(exe), "run", str(digits_net), "--scheduler", "local:2",
                             "--timeout", "300", "--quiet"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    cli, killed, seen = psutil.Process(proc.pid), None, set()
    try:
        deadline = time.monotonic() + 240
        while killed is None and proc.poll() is None and time.monotonic() < deadline:
            for child in cli.children():  # Dask's worker processes; running a shard: Lava's
                try:
                    seen.update(p.pid for p in child.children(recursive=True))
                    if child.children():
                        time.sleep(1.0)  # well inside the shard's run
                        seen.add(child.pid)
                        child.send_signal(signal.SIGKILL)
                        killed = time.monotonic()
                        break
                except psutil.NoSuchProcess:
                    pass
            time.sleep(0.1)
        assert killed is not None, "no Dask worker ran a shard"
        _, err = proc.communicate(timeout=120)
    finally:  # on failure, nothing of it outlives the test
        if proc.poll() is None:
            for p in cli.children(recursive=True):
                p.kill()
            proc.kill()
            proc.communicate()
    assert time.monotonic() - killed < 60
    assert proc.returncode == 2, (proc.returncode, err[-2000:])
    lines = err.strip().splitlines()
    assert len(lines) == 1, err[-3000:]
    assert lines[0].startswith("lava-convert: ") and "Dask worker running it died" in lines[0]
    assert "shard " in lines[0]
    time.sleep(2.0)
    left = [pid for pid in seen if psutil.pid_exists(pid)
            and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert left == [], left


def test_compare_verb(tmp_path, digits_net):
    result, cmp = verb_json(tmp_path / "cmp.json", "compare", str(digits_net), "--limit", "10")
    assert cmp["identical"] and cmp["samples"] == 10 and cmp["predictions_agree"] == 1.0
    assert all(l["samples_differing"] == 0 for l in cmp["layers"])
    assert "identical" in result.stdout


def test_training_progress_bar_and_quiet(tmp_path, capsys):
    from lava_convert.zoo.data import load_digits
    from lava_convert.zoo.train import digits_mlp, train_classifier

    d = load_digits()
    train_classifier(digits_mlp(), d.x_train[:256], d.y_train[:256], epochs=2, progress=True)
    assert "training" in capsys.readouterr().err
    train_classifier(digits_mlp(), d.x_train[:256], d.y_train[:256], epochs=2, progress=False)
    assert capsys.readouterr().err == ""
    quiet = lava_convert("train", "--hidden", "16", "--epochs", "2", "--out",
                         str(tmp_path / "q.pt"), "--quiet")
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == ""
    assert (tmp_path / "q.pt").is_file()


def trained_model(tmp_path: Path) -> Path:
    """A small digits MLP trained and saved from the command line."""
    model = tmp_path / "m.pt"
    assert lava_convert("train", "--hidden", "32", "--epochs", "3", "--out", str(model),
                        "-q").returncode == 0
    return model


def test_convert_for_stock_netx(tmp_path):
    model = trained_model(tmp_path)
    net = tmp_path / "stock.net"
    result = lava_convert("convert", str(model), "--target", "stock-netx", "--timesteps", "8",
                          "--out", str(net))
    assert result.returncode == 0, result.stderr
    config = json.loads(net.with_suffix(".json").read_text())["config"]
    assert (config["target"], config["reset"], config["readout"]) == ("stock-netx", "hard",
                                                                       "spikes")
    inspected = lava_convert("inspect", str(net))
    assert "stock netx.hdf5.Network loads this file" in inspected.stdout
    bad = lava_convert("convert", str(model), "--target", "stock-netx", "--shift", "v0",
                       "--out", str(tmp_path / "bad.net"))
    assert bad.returncode == 2 and "cannot start at v0" in bad.stderr
    assert not (tmp_path / "bad.net").exists()


@pytest.mark.lava
def test_convert_inspect_and_compare_for_sigma_delta_neurons(tmp_path):
    """``--target sdnn`` from the command line: the file holds Delta and SigmaDelta
    neurons (inspect names them, and stock NetX's notes say how to run it), and compare
    finds Lava's messages equal to the reference's."""
    model = trained_model(tmp_path)
    net = tmp_path / "sdnn.net"
    result = lava_convert("convert", str(model), "--target", "sdnn", "--timesteps", "4",
                          "--out", str(net))
    assert result.returncode == 0, result.stderr
    assert "the width whose readout comes closest to the ANN's" in result.stdout
    config = json.loads(net.with_suffix(".json").read_text())["config"]
    assert (config["target"], config["balancing"], config["shift"]) == ("sdnn", "max", "none")
    inspected = lava_convert("inspect", str(net), "--loihi2")
    assert inspected.returncode == 0, inspected.stderr
    assert "Delta" in inspected.stdout and "SigmaDelta" in inspected.stdout
    assert "in_layer.neuron.a_in" in inspected.stdout
    compared = lava_convert("compare", str(net), "--limit", "2")
    assert compared.returncode == 0, compared.stderr
    assert "message counts identical" in compared.stdout
    bad = lava_convert("convert", str(model), "--target", "sdnn", "--shift", "v0",
                       "--out", str(tmp_path / "bad.net"))
    assert bad.returncode == 2 and "target='sdnn'" in bad.stderr


def test_inspect_loihi2_for_every_shipped_export(tmp_path, capsys):
    from helpers import ROOT

    from lava_convert.cli import main

    for path in sorted(ROOT.glob("netx_exports/*.net")):
        out = tmp_path / "fit.json"
        assert main(["inspect", str(path), "--loihi2", "--json", str(out)]) == 0
        printed, info = capsys.readouterr().out, json.loads(out.read_text())
        assert "Loihi 2 fixed-point limits" in printed
        assert "all exact limits hold: yes" in printed
        assert f"{info['loihi2']['cores_estimate']} neuro-cores" in printed
        assert info["loihi2"]["ok"] is True


def test_ctrl_c_while_the_cli_loads_is_one_line(digits_net):
    """Ctrl-C while the heavy modules (torch, Lava) load used to print a traceback (5 of 20
    tries): they now load inside the CLI's error handling."""
    import signal
    import time

    exe = Path(sys.executable).with_name("lava-convert")
    for delay in (0.4, 0.6, 0.8, 1.2, 1.6):  # after start-up, while torch loads
        proc = subprocess.Popen([str(exe), "inspect", str(digits_net)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        assert "Traceback" not in err, (delay, err[-1500:])
        assert proc.returncode in (0, 130), (delay, proc.returncode, err)
        if proc.returncode == 130:
            assert err.strip() == "lava-convert: interrupted"


@pytest.mark.parametrize("argv0", ["lava-convert", "my_program.py"])
def test_ctrl_c_right_after_the_package_loads(argv0):
    """In the console script, Ctrl-C from the moment the package starts loading is the
    command line's one line (the import of the command line itself, numpy first, printed a
    traceback); in a user's program importing the package, Python's KeyboardInterrupt is
    untouched."""
    done = subprocess.run([sys.executable, "-c", f"""
import os, signal, sys, time
sys.argv[0] = {argv0!r}
import lava_convert
os.kill(os.getpid(), signal.SIGINT)
time.sleep(5)
print("not interrupted")
"""], capture_output=True, text=True, timeout=60)
    if argv0 == "lava-convert":
        assert (done.returncode, done.stderr.strip()) == (130, "lava-convert: interrupted")
    else:
        assert done.returncode != 130 and "KeyboardInterrupt" in done.stderr


def test_nir_out_and_back_from_the_command_line(tmp_path):
    """convert --nir writes the NIR file; from-nir reads it back into the same network."""
    model_file = tmp_path / "m.pt"
    assert lava_convert("train", "--hidden", "32", "--epochs", "3", "--out",
                        str(model_file), "-q").returncode == 0
    net, graph = tmp_path / "a.net", tmp_path / "a.nir"
    result = lava_convert("convert", str(model_file), "--out", str(net), "--timesteps", "16",
                          "--calibration", "300", "--nir", str(graph), "--nir-encoding",
                          "exact")
    assert result.returncode == 0 and f"wrote {graph} (NIR, exact encoding)" in result.stdout
    again = tmp_path / "again.net"
    result = lava_convert("from-nir", str(graph), "--out", str(again), "--calibration", "300")
    assert result.returncode == 0, result.stderr
    first = json.loads(net.with_suffix(".json").read_text())["accuracy"]["snn_reference"]
    side = json.loads(again.with_suffix(".json").read_text())
    assert side["passes"] == ["nir_import", "quantize", "check"]
    assert side["accuracy"]["snn_reference"] == first  # the same Lava-exact network
    assert f"{100 * first:.2f} % (Lava-exact, T=16)" in result.stdout
    # a foreign file without dt: the error says what to pass
    import nir

    g = nir.read(graph)
    g.metadata = {}
    nir.write(tmp_path / "bare.nir", g)
    bad = lava_convert("from-nir", str(tmp_path / "bare.nir"), "--out", str(tmp_path / "x.net"))
    assert bad.returncode == 2 and "pass dt" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "x.net").exists()
