from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from stages import train
from stages.common.errors import PipelineError
from tests.tiny_data import TINY_MODEL

PARAMS = yaml.safe_load(Path("params.yaml").read_text())


def train_tiny(processed: Path, out: Path, **changes):
    config = replace(train.TrainConfig.from_params(PARAMS), epochs=2, batch_size=32, **changes)
    train.main("conv1", TINY_MODEL, processed, out / "model.keras", out / "live", out / "timing.json", config)
    return train.keras.models.load_model(out / "model.keras")


def test_training_is_deterministic_and_logs_curves(tiny_processed, tmp_path):
    first = train_tiny(tiny_processed, tmp_path / "a")
    second = train_tiny(tiny_processed, tmp_path / "b")
    other_seed = train_tiny(tiny_processed, tmp_path / "c", seed=PARAMS["seed"] + 1)
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, c) for a, c in zip(first.get_weights(), other_seed.get_weights()))

    summary = yaml.safe_load((tmp_path / "a" / "live" / "metrics.json").read_text())
    assert summary["epochs_run"] == 2 and summary["at_chance"] in (True, False)
    timing = yaml.safe_load((tmp_path / "a" / "timing.json").read_text())
    assert timing["train_time_s"] > 0 and timing["epochs_run"] == 2
    assert {"accuracy", "loss"} <= set(summary["eval"])  # validation metrics
    curve = (tmp_path / "a" / "live" / "plots" / "metrics" / "eval" / "accuracy.tsv").read_text().splitlines()
    assert curve[0].split("\t")[:2] == ["step", "accuracy"] and len(curve) == 3


def test_missing_split_says_what_to_run(tmp_path):
    with pytest.raises(PipelineError, match="run the split stage first"):
        train.main("conv1", TINY_MODEL, tmp_path, tmp_path / "m.keras", tmp_path / "live", tmp_path / "t.json",
                   train.TrainConfig.from_params(PARAMS))
    assert not (tmp_path / "m.keras").exists()


def test_cli_rejects_unknown_model(tmp_path):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "stages.train", "--model", "conv4", "--data", str(tmp_path),
         "--out", str(tmp_path / "m.keras"), "--live", str(tmp_path / "live"), "--timing", str(tmp_path / "t.json")],
        capture_output=True, text=True,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: unknown model 'conv4'; choose one of conv1, conv2, conv3")
