import re
import subprocess
import sys

import pytest

from benchmarks.targets import TARGETS
from stages.common.params import load_params


def test_every_model_has_a_target_accuracy():
    assert set(TARGETS) == set(load_params("params.yaml")["models"])


@pytest.mark.also_as_process
def test_unknown_model_is_a_clear_error(run_module, tmp_path):
    result = run_module("benchmarks.time_to_accuracy", "--models", "conv9", "--data", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: --models: no model conv9 with a target accuracy; choose from conv1, conv2, conv3"]


def timer(seconds, total, best=0.95):
    from benchmarks.time_to_accuracy import TimeToTarget

    result = TimeToTarget(target=0.9)
    result.seconds, result.total, result.best = seconds, total, best
    return result


def test_time_to_accuracy_reports_median_and_spread_of_the_rounds():
    from benchmarks.time_to_accuracy import describe, speed_up

    naive = [timer(30.0, 40.0), timer(60.0, 70.0), timer(33.0, 43.0)]
    defaults = [timer(10.0, 20.0), timer(12.0, 22.0), timer(15.0, 25.0)]
    assert describe(naive) == "33.0 s (30.0-60.0)"
    assert speed_up(naive, defaults) == "3.00x (2.20-5.00)"  # per-round ratios 3.0, 5.0, 2.2


def test_time_to_accuracy_gives_a_lower_bound_when_naive_never_gets_there():
    from benchmarks.time_to_accuracy import describe, speed_up

    naive = [timer(None, 200.0, best=0.91), timer(None, 300.0, best=0.91), timer(None, 220.0, best=0.91)]
    defaults = [timer(100.0, 150.0), timer(100.0, 150.0), timer(100.0, 150.0)]
    assert describe(naive) == "not in 220 s (best 0.9100)"
    assert speed_up(naive, defaults) == ">2.20x (2.00-3.00)"


def test_training_flops_of_the_two_layer_model():
    from benchmarks.throughput import training_flops_per_image
    from stages.common.models import build_model

    model = build_model("conv2", load_params("params.yaml")["models"]["conv2"])
    forward = (2 * 26 * 26 * 32 * 9 * 1  # conv1, 3x3 over one channel
               + 2 * 11 * 11 * 64 * 9 * 32  # conv2, after the 2x2 pool
               + 2 * 11 * 11 * 64 * 64  # dense
               + 2 * 64 * 10)  # output
    assert training_flops_per_image(model) == 3 * forward


@pytest.mark.parametrize("recipe, message", [
    ("fast", "recipe 'fast': starts with 'fast'; start it with naive or stage"),
    ("stage+turbo", "recipe 'stage+turbo': unknown lever 'turbo'; use spe, xla, val, slices, threads, env, set"),
])
def test_throughput_refuses_an_unknown_recipe(recipe, message, tmp_path):
    result = subprocess.run([sys.executable, "-m", "benchmarks.throughput", "--recipes", "stage", recipe,
                             "--data", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"error: {message}"]


def test_throughput_runs_the_recipes_round_robin_and_tables_them(monkeypatch, capsys):
    # The round robin and the table, each measurement (a process of its own) replaced by a figure:
    # round r of recipe i gives (i + 1) * 100 * r ** 2 images/s, so every ratio to naive is i + 1.
    from benchmarks import throughput

    calls = []

    def measured(recipe, model_name, args):
        calls.append((recipe, model_name))
        rate = (args.recipes.index(recipe) + 1) * 100.0 * calls.count((recipe, model_name)) ** 2
        return {"images_per_s": rate, "share_of_peak": rate / 1000, "peak_gflops": 50.0, "warmup_s": 1.5}

    monkeypatch.setattr(throughput, "run_measurement", measured)
    monkeypatch.setattr("sys.argv", ["throughput", "--models", "conv1", "conv2", "--recipes", "naive", "stage+spe=2",
                                     "--repeats", "3"])
    throughput.main()
    assert calls == [("naive", "conv1"), ("stage+spe=2", "conv1"), ("naive", "conv2"), ("stage+spe=2", "conv2")] * 3
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "round 1: conv1  naive                            100 images/s, 10.0 % of a 50 GFLOP/s peak"
    [row] = [line for line in out if line.startswith("conv2  stage+spe=2")]
    assert row.split() == ["conv2", "stage+spe=2", "800", "200-1800", "80.0", "1.5", "2.00x", "(2.00-2.00)"]


@pytest.mark.e2e  # a process per measurement, each importing TensorFlow and training: about a minute
def test_throughput_measures_every_recipe_in_every_round(tiny_processed):
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.throughput", "--models", "conv1", "--recipes", "naive", "stage+spe=2",
         "--repeats", "2", "--images", "96", "--epochs", "2", "--data", str(tiny_processed)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    rounds = re.findall(r"^round (\d): conv1 +(\S+) +\d+ images/s, +[\d.]+ % of a \d+ GFLOP/s peak$",
                        result.stdout, re.MULTILINE)
    assert rounds == [("1", "naive"), ("1", "stage+spe=2"), ("2", "naive"), ("2", "stage+spe=2")]
    [row] = [line for line in result.stdout.splitlines() if line.startswith("conv1  stage+spe=2")]
    assert re.search(r"\d+\.\d\dx \(\d+\.\d\d-\d+\.\d\d\)$", row)  # ratio to naive, with its spread


def test_container_overhead_alternates_host_and_container_and_compares_their_metrics(monkeypatch, capsys):
    from benchmarks import container_overhead

    calls = []

    def measured(where, folder, size, image, docker):
        calls.append(where)
        seconds = {"host": 100.0, "container": 110.0}[where] * calls.count(where)
        return {"seconds": seconds, "metrics": {"conv1.json": b'{"accuracy": 0.9}'}}

    monkeypatch.setattr(container_overhead, "run_once", measured)
    monkeypatch.setattr(container_overhead.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0))
    monkeypatch.setattr("sys.argv", ["container_overhead", "--repeats", "3"])
    container_overhead.main()
    assert calls == ["host", "container", "container", "host", "host", "container"]
    out = capsys.readouterr().out
    assert "container / host: 1.100 (1.100-1.100)" in out
    assert "test metrics: byte-identical in every run" in out


def test_container_overhead_without_an_image_says_how_to_build_one(run_module):
    result = run_module("benchmarks.container_overhead", "--docker", "false", "--image", "nothing-here")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: there is no image nothing-here (or no docker daemon answers); "
        "build it first: bash scripts/container.sh build"]


def test_slurm_overhead_refuses_an_unknown_way(run_module):
    result = run_module("benchmarks.slurm_overhead", "--ways", "tests,teleport")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ["error: --ways: no way named teleport"]


def test_slurm_overhead_subtracts_each_rounds_local_time_per_job(monkeypatch, capsys):
    from benchmarks import slurm_overhead

    walls = {"local": 3.0, "tests": 30.0, "profile": 60.0, "init-1": 45.0}
    monkeypatch.setattr(slurm_overhead, "run_once", lambda folder, workflow, way, environment: walls[way])
    monkeypatch.setattr(slurm_overhead.shutil, "which", lambda name: "/usr/sbin/" + name)
    monkeypatch.setattr(slurm_overhead.subprocess, "run",
                        lambda *a, **k: subprocess.CompletedProcess(a, 0, stdout="2 CPUs\n", stderr=""))
    monkeypatch.setattr("sys.argv", ["slurm_overhead", "--repeats", "3", "--ways", "tests"])
    slurm_overhead.main()
    out = capsys.readouterr().out
    assert "| chain | tests | 30.0 (30.0-30.0) | 9.0 (9.0-9.0) |" in out  # (30 - 3) / 3 jobs
    assert "| parallel | local | 3.0 (3.0-3.0) | - |" in out
    assert "profile" not in out.split("| workflow |")[1]


@pytest.mark.e2e
def test_sweep_planning_plans_six_jobs_per_point_and_reports_time_and_memory():
    result = subprocess.run([sys.executable, "-m", "benchmarks.sweep_planning", "--points", "3", "--timeout", "120"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()
    assert header.split() == ["points", "jobs", "read", "s", "plan", "s", "peak", "MB"]
    points, jobs, read_s, plan_s, peak_mb = row.split()
    # A train and an evaluate job per point and model (3 models), and five shared jobs.
    assert (points, jobs) == ("3", str(3 * 2 * 3 + 5)), row
    # Two separate commands: at 3 points both are Snakemake's start-up, either may come out longer.
    assert float(read_s) > 0 and float(plan_s) > 0 and 50 < float(peak_mb) < 1000, row
