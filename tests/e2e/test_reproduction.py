"""`python -m reproduction.check`, the real command, on a tiny project whose results are
committed: identical bytes; other bytes inside and outside the seed spread (on doctored
metrics); and other bytes on a host that the table lists as identical."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import REPO, copy_project, fresh_clone, run

pytestmark = pytest.mark.e2e
# The spread the doctored metrics are set against: three seeds of the defaults' cell.
SEED_ACCURACIES, SEED_LOSSES = [0.50, 0.52, 0.54], [1.0, 1.1, 1.2]  # sd 0.02 and 0.1


def check(root: Path, *args: str) -> subprocess.CompletedProcess:
    # The command's code from this checkout, the stages' from the tiny project (the same files).
    return subprocess.run([sys.executable, "-m", "reproduction.check", *args], cwd=root, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(REPO)})


def doctor(root: Path, shifts: dict[str, float]) -> None:
    """Commit other test metrics for each model (accuracy moved by `shifts[model]`, loss by half as
    many seed sds), with dvc.lock saying so, and a seed spread for them in the study's sweep."""
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    for model, shift in shifts.items():
        path = root / "metrics" / "test" / f"{model}.json"
        metrics = json.loads(path.read_text())
        path.write_text(json.dumps({"accuracy": metrics["accuracy"] + shift, "loss": metrics["loss"] + 2.5 * shift}))
        for out in lock["stages"][f"evaluate@{model}"]["outs"]:
            if out["path"] == f"metrics/test/{model}.json":
                out["md5"] = "0" * 32
    (root / "dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False))
    (root / "sweeps").mkdir(exist_ok=True)
    rows = "".join(f"adam\t{seed}\n" for seed in (1, 2, 3))
    (root / "sweeps" / "lr_seeds.tsv").write_text("optimizer\tseed\n" + rows)
    for seed, accuracy, loss in zip((1, 2, 3), SEED_ACCURACIES, SEED_LOSSES):
        for model in shifts:
            point = root / "sweeps" / "lr_seeds" / f"optimizer~adam_seed~{seed}" / "metrics" / "test"
            point.mkdir(parents=True, exist_ok=True)
            (point / f"{model}.json").write_text(json.dumps({"accuracy": accuracy, "loss": loss}))
    run(root, "git", "add", "-A")
    run(root, "git", "commit", "-qm", "doctored")


def test_a_fresh_clone_on_the_same_host_reproduces_every_byte(reproduced, tmp_path):
    origin, _ = reproduced
    clone = fresh_clone(origin, tmp_path)  # no data: the data stages run too
    checked = check(clone, "conv1")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    lines = checked.stdout.splitlines()
    for output in ("data/raw", "data/interim", "data/processed", "models/conv1.keras", "metrics/train/conv1",
                   "metrics/test/conv1.json", "metrics/predictions/conv1.csv", "metrics/figures/conv1/confusion.png"):
        assert f"{output}: identical" in [line.strip() for line in lines], output
    assert "metrics/timing/conv1.json: not compared (the training time, which differs on every run)" in checked.stdout
    assert "conv1: identical bytes" in lines
    assert lines[0].startswith("host: ") and "TensorFlow" in lines[0] and "threads 2" in lines[0]
    assert not (clone / "data" / "processed").exists(), "the check works beside the checkout, not in it"
    assert run(clone, "git", "status", "--porcelain").stdout == ""


def test_other_metrics_are_measured_against_the_seed_spread(reproduced, tmp_path):
    root = copy_project(reproduced[0], tmp_path / "project")
    doctor(root, {"conv1": -0.5 * 0.02, "conv2": -5 * 0.02})  # half a seed sd; five
    checked = check(root, "conv1", "conv2")
    assert checked.returncode == 1, checked.stdout + checked.stderr
    lines = [line.strip() for line in checked.stdout.splitlines()]
    assert "metrics/test/conv1.json: differs" in lines and "models/conv1.keras: identical" in lines
    accuracy = next(line for line in lines if line.startswith("accuracy") and "0.50 seed sd" in line)
    assert "(+0.010000, 0.50 seed sd (0.0200): inside the seed spread, ±2 sd)" in accuracy
    assert any(line.startswith("loss") and "(+0.025000, 0.25 seed sd (0.1000): inside" in line for line in lines)
    assert any("5.00 seed sd (0.0200): OUTSIDE the seed spread" in line for line in lines)
    assert "conv1: other bytes, every test metric inside the seed spread" in lines
    assert "conv2: other bytes, a test metric OUTSIDE the seed spread" in lines


def test_other_bytes_fail_on_a_host_listed_as_identical(reproduced, tmp_path):
    root = copy_project(reproduced[0], tmp_path / "project")
    recorded = check(root, "conv1", "--record", "this host")  # the table gets this host, identical
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    [row] = yaml.safe_load((root / "reproduction" / "hosts.yaml").read_text())
    assert row["name"] == "this host" and row["result"] == "identical" and row["arithmetic"]["threads"] == 2
    assert row["one_epoch"].startswith("conv1, MD5 ")
    doctor(root, {"conv1": 0.1 * 0.02})
    checked = check(root, "conv1")
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert "in hosts.yaml: the same arithmetic as 'this host' (identical)" in checked.stdout
    assert ("conv1: other bytes, every test metric inside the seed spread; but 'this host', with the same "
            "arithmetic, gave identical bytes") in checked.stdout
