import json
import os

import pytest

from stages import report
from stages.common.errors import PipelineError
from tests.bounded import time_limit


def fake_metrics(folder, model, accuracy, epochs=3):
    for part, content in (("test", {"accuracy": accuracy, "loss": 0.3}), ("details", {"params": 173738})):
        (folder / part).mkdir(exist_ok=True)
        (folder / part / f"{model}.json").write_text(json.dumps(content))
    for split, shift in (("eval", 0), ("train", 0.01)):
        (folder / "train" / model / "plots" / "metrics" / split).mkdir(parents=True)
        for name, values in (("accuracy", [0.8, 0.85, accuracy]), ("loss", [0.5, 0.4, 0.3])):
            rows = "".join(f"{step}\t{value + shift}\n" for step, value in enumerate(values))
            tsv = folder / "train" / model / "plots" / "metrics" / split / f"{name}.tsv"
            tsv.write_text(f"step\t{name}\n{rows}")


def test_table_and_figure(tmp_path):
    fake_metrics(tmp_path, "conv1", 0.91234)
    fake_metrics(tmp_path, "conv2", 0.92)
    report.main(["conv1", "conv2"], tmp_path, tmp_path / "results.md", tmp_path / "curves.png", tmp_path / "curves")
    lines = (tmp_path / "results.md").read_text().splitlines()
    assert lines[0] == "| model | parameters | test accuracy | test loss | epochs |"
    assert lines[2] == "| conv1 | 173,738 | 0.9123 | 0.3000 | 3 |"
    assert len(lines) == 4
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(path.name for path in (tmp_path / "curves").iterdir()) == ["conv1.tsv", "conv2.tsv"]


def test_curves_join_dvclives_four_files_by_epoch(tmp_path):
    fake_metrics(tmp_path, "conv1", 0.9)
    report.main(["conv1"], tmp_path, tmp_path / "results.md", tmp_path / "curves.png", tmp_path / "curves")
    assert (tmp_path / "curves" / "conv1.tsv").read_text().splitlines() == [
        "epoch\ttrain_loss\ttrain_accuracy\tvalidation_loss\tvalidation_accuracy",
        "1\t0.51\t0.81\t0.5\t0.8",
        "2\t0.41000000000000003\t0.86\t0.4\t0.85",
        "3\t0.31\t0.91\t0.3\t0.9",
    ]


def test_read_curves_reads_dvclives_four_tsv_files(tmp_path):
    fake_metrics(tmp_path, "conv1", 0.9)
    curves = report.read_curves(tmp_path / "train" / "conv1")
    assert curves["validation_accuracy"] == [0.8, 0.85, 0.9]
    assert curves["validation_loss"] == [0.5, 0.4, 0.3]
    assert curves["train_accuracy"] == [0.81, 0.86, 0.91]


def test_missing_metrics_say_what_to_run(tmp_path):
    with pytest.raises(PipelineError, match="run the train and evaluate stages"):
        report.main(["conv1"], tmp_path, tmp_path / "results.md", tmp_path / "curves.png", tmp_path / "curves")
    assert not (tmp_path / "results.md").exists()


def test_a_metrics_file_that_is_not_a_file_is_refused_not_waited_on(tmp_path):
    fake_metrics(tmp_path, "conv1", 0.9)
    (tmp_path / "test" / "conv1.json").unlink()
    os.mkfifo(tmp_path / "test" / "conv1.json")
    with time_limit(5), pytest.raises(PipelineError, match=r"conv1.json is a named pipe \(FIFO\), not a file; "
                                                          "give the path of a metrics file$"):
        report.main(["conv1"], tmp_path, tmp_path / "results.md", tmp_path / "curves.png", tmp_path / "curves")


@pytest.mark.parametrize("part, text", [
    ("test/conv1.json", '{"accuracy": 0.1, "loss": 0.3, "accuracy": 0.99}'),  # the last one won
    ("test/conv1.json", '{"accuracy": ' + "[" * 5000 + "]" * 5000 + "}"),  # past json's recursion
    ("train/conv1/plots/metrics/eval/accuracy.tsv", "step\taccuracy\taccuracy\n0\t0.1\t0.99\n"),
], ids=["json-duplicate-key", "json-deep", "tsv-duplicate-column"])
def test_a_metrics_file_with_a_key_twice_or_nested_deep_is_refused(tmp_path, part, text):
    fake_metrics(tmp_path, "conv1", 0.9)
    (tmp_path / part).write_text(text)
    refused = (r"is corrupt or not what the train (and evaluate stages|stage) writes? \(it (gives the key "
               r"\"accuracy\" twice|nests deeper than 32 levels|names column 'accuracy' twice)\)")
    with pytest.raises(PipelineError, match=refused):
        report.main(["conv1"], tmp_path, tmp_path / "results.md", tmp_path / "curves.png", tmp_path / "curves")
    assert not (tmp_path / "results.md").exists()
