import csv
import json
from pathlib import Path

import numpy as np
import pytest

from stages import evaluate
from stages.common.classes import CLASS_NAMES
from stages.common.errors import PipelineError
from stages.common.models import build_model
from tests.bounded import one_error_line, run_stage
from tests.tiny_data import TINY_MODEL

# tiny_model, a conv1 trained on tiny_processed, is made once per session (tests/conftest.py).


def evaluate_into(folder: Path, model: Path, processed: Path) -> None:
    evaluate.main(model, processed, folder / "m.json", folder / "d.json", folder / "p.csv", folder / "fig")


def test_writes_metrics_predictions_and_figures(tiny_model, tiny_processed, tmp_path):
    evaluate_into(tmp_path, tiny_model, tiny_processed)
    metrics = json.loads((tmp_path / "m.json").read_text())
    details = json.loads((tmp_path / "d.json").read_text())
    with np.load(tiny_processed / "test.npz") as test:
        labels = test["labels"]
    with (tmp_path / "p.csv").open() as f:
        rows = list(csv.DictReader(f))

    assert set(metrics) == {"accuracy", "loss"}  # what `dvc exp show` shows per model
    assert details["params"] == 173_738
    assert 0 <= metrics["accuracy"] <= 1 and metrics["loss"] > 0
    assert [row["actual"] for row in rows] == [CLASS_NAMES[label] for label in labels]
    correct = sum(row["actual"] == row["predicted"] for row in rows)
    assert metrics["accuracy"] == pytest.approx(correct / len(rows))
    assert list(details["per_class_accuracy"]) == list(CLASS_NAMES)
    for name in ("confusion.png", "misclassified.png"):
        assert (tmp_path / "fig" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluation_is_repeatable(tiny_model, tiny_processed, tmp_path):
    for run in ("a", "b"):
        evaluate_into(tmp_path / run, tiny_model, tiny_processed)
    for name in ("m.json", "d.json", "p.csv", "fig/confusion.png", "fig/misclassified.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_confusion_matrix_and_per_class_accuracy():
    actual = np.array([0, 0, 1, 1, 1, 2])
    predicted = np.array([0, 1, 1, 1, 0, 2])
    confusion = evaluate.confusion_matrix(actual, predicted)
    assert confusion[0, 0] == 1 and confusion[0, 1] == 1 and confusion[1, 1] == 2 and confusion[1, 0] == 1
    assert confusion.sum() == 6
    assert evaluate.per_class_accuracy(confusion)[:4] == [0.5, pytest.approx(2 / 3), 1.0, 0.0]


def test_missing_model_says_what_to_run(tiny_processed, tmp_path):
    with pytest.raises(PipelineError, match="run the train stage"):
        evaluate_into(tmp_path, tmp_path / "none.keras", tiny_processed)
    assert not (tmp_path / "m.json").exists()


def cli_args(model: Path, processed: Path, out: Path) -> list[str]:
    return ["--model-file", str(model), "--data", str(processed), "--metrics", str(out / "m.json"),
            "--details", str(out / "d.json"), "--predictions", str(out / "p.csv"), "--figures", str(out / "fig")]


@pytest.mark.e2e
def test_another_model_saved_under_a_models_name_is_refused(tiny_processed, tmp_path):
    # A conv2 saved as models/conv1.keras was evaluated with rc 0, its 515,146 parameters recorded as conv1's.
    from stages.common.models import build_model
    from stages.common.params import load_params

    (tmp_path / "models").mkdir()
    build_model("conv2", load_params("params.yaml")["models"]["conv2"]).save(tmp_path / "models" / "conv1.keras")
    out = tmp_path / "out"
    run = run_stage("stages.evaluate", *cli_args(tmp_path / "models" / "conv1.keras", tiny_processed, out))
    assert one_error_line(run) == (f"error: {tmp_path}/models/conv1.keras holds model 'conv2' (515,146 parameters), "
                                   "not conv1; run the train stage for conv1 again")
    assert not out.exists()


@pytest.mark.e2e
def test_a_model_trained_from_other_settings_than_its_params_is_refused(tiny_model, tiny_processed, tmp_path):
    # tiny_model is a conv1 of TINY_MODEL's settings: as models/conv1.keras it must match models.conv1,
    # which DVC and Snakemake pass to evaluate (dvc.yaml's params, the Snakefile's --set).
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "conv1.keras").write_bytes(tiny_model.read_bytes())
    args = cli_args(tmp_path / "models" / "conv1.keras", tiny_processed, tmp_path / "out")
    refused = run_stage("stages.evaluate", *args)
    assert one_error_line(refused).startswith(f"error: {tmp_path}/models/conv1.keras is not conv1 as the params "
                                              "describe it")
    assert not (tmp_path / "out").exists()
    accepted = run_stage("stages.evaluate", *args, "--set", f"models.conv1={json.dumps(TINY_MODEL)}")
    assert accepted.returncode == 0, accepted
    assert json.loads((tmp_path / "out" / "d.json").read_text())["params"] == build_model("conv1", TINY_MODEL) \
        .count_params()


@pytest.mark.e2e
def test_a_model_file_not_named_after_a_model_is_scored_as_it_is(tiny_model, tiny_processed, tmp_path):
    # Only models/<key>.keras stands for a model of params.yaml: a file named otherwise is not checked.
    (tmp_path / "candidate.keras").write_bytes(tiny_model.read_bytes())
    run = run_stage("stages.evaluate", *cli_args(tmp_path / "candidate.keras", tiny_processed, tmp_path))
    assert run.returncode == 0, run
    assert json.loads((tmp_path / "d.json").read_text())["params"] == 173_738
