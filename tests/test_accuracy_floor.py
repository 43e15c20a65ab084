import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

FLOORS = Path(".ci/accuracy_floor.yaml")


def gate(metrics: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "scripts/check_accuracy_floor.py", "--metrics", str(metrics)],
                          capture_output=True, text=True, timeout=60)


def write_metrics(folder: Path, accuracies: dict[str, float]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for model, accuracy in accuracies.items():
        (folder / f"{model}.json").write_text(json.dumps({"accuracy": accuracy, "loss": 0.5}))
    return folder


def test_every_model_has_one_floor():
    floors = yaml.safe_load(FLOORS.read_text())
    assert list(floors) == list(yaml.safe_load(Path("params.yaml").read_text())["models"])
    assert all(0.1 < floor < 1 for floor in floors.values())  # above a constant guess


def test_a_run_at_the_floors_passes(tmp_path):
    floors = yaml.safe_load(FLOORS.read_text())
    result = gate(write_metrics(tmp_path, floors))
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == len(floors)


@pytest.mark.parametrize("model", ["conv1", "conv3"])
def test_a_forced_bad_run_fails_with_one_line_naming_the_model(tmp_path, model):
    floors = yaml.safe_load(FLOORS.read_text())
    result = gate(write_metrics(tmp_path, {**floors, model: floors[model] - 0.0001}))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: {model}: test accuracy {floors[model] - 0.0001:.4f} is below its floor {floors[model]} "
        f"({tmp_path / f'{model}.json'})"
    ]


def test_missing_metrics_fail_the_gate(tmp_path):
    result = gate(write_metrics(tmp_path, {"conv1": 0.99}))
    assert result.returncode == 1
    assert [line.split(":")[1].strip() for line in result.stderr.splitlines()] == ["conv2", "conv3"]
