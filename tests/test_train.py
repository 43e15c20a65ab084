import json
import time
import zipfile
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
    time.sleep(1.1)  # a save-time stamp would now differ
    second = train_tiny(tiny_processed, tmp_path / "b")
    other_seed = train_tiny(tiny_processed, tmp_path / "c", seed=PARAMS["seed"] + 1)
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, c) for a, c in zip(first.get_weights(), other_seed.get_weights()))
    # The same bytes, so that a retrain with unchanged params leaves everything downstream cached
    # (docs/failures.md, "What happens when..."; merged here from tests/test_failures.py).
    for name in ("model.keras", "live/metrics.json", "live/plots/metrics/eval/accuracy.tsv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    with zipfile.ZipFile(tmp_path / "a" / "model.keras") as archive:
        assert "date_saved" not in json.loads(archive.read("metadata.json"))

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


def test_cli_rejects_unknown_model(run_module, tmp_path):
    # Exactly one line: as a new process (the e2e tier) that also says TensorFlow's start-up notes
    # are kept off stderr (stages/common/tensorflow.py).
    result = run_module("stages.train", "--model", "conv4", "--data", str(tmp_path), "--out", str(tmp_path / "m.keras"),
                        "--live", str(tmp_path / "live"), "--timing", str(tmp_path / "t.json"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: unknown model 'conv4'; choose one of conv1, conv2, conv3"]
