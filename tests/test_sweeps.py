"""Snakemake sweep tables (stages/common/sweeps.py) and their report (stages/sweep_report.py)."""

import json
import os
from pathlib import Path

import pytest

from stages import sweep_report
from stages.common import params
from stages.common.errors import PipelineError
from stages.common.params import ParamsError, load_params
from stages.common.sweeps import load_sweep
from tests.bounded import time_limit

PARAMS = load_params("params.yaml")


def test_the_model_column_picks_the_models_a_point_trains(tmp_path):
    table = tmp_path / "screen.tsv"
    table.write_text("model\toptimizer\tlr\nconv1\tsgd\t0.1\nconv2,conv3\tadam\t1e-3\n")
    points = load_sweep(table, PARAMS)
    assert {name: point.models for name, point in points.items()} == {
        "model~conv1_optimizer~sgd_lr~0.1": ["conv1"],
        "model~conv2,conv3_optimizer~adam_lr~1e-3": ["conv2", "conv3"],
    }
    point = points["model~conv1_optimizer~sgd_lr~0.1"]
    assert (point.params["optimizer"], point.params["lr"]) == ("sgd", 0.1)
    assert "model" not in point.params


def test_without_a_model_column_every_point_trains_every_model(tmp_path):
    table = tmp_path / "lr.tsv"
    table.write_text("lr\n0.01\n")
    [point] = load_sweep(table, PARAMS).values()
    assert point.models == ["conv1", "conv2", "conv3"]


def test_a_sweep_reads_the_schema_once_for_all_its_points(tmp_path, monkeypatch):
    # Every Snakemake start loads every committed sweep (77 points), twice per SLURM job: read
    # once per point, the schema took 3 of a start's 6.6 s on 2 slow cores.
    reads = []
    read_text = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda path, *args, **kwargs: (
        reads.append(path.name), read_text(path, *args, **kwargs))[1])
    table = tmp_path / "lr.tsv"
    table.write_text("lr\n" + "".join(f"0.0{digit}\n" for digit in range(1, 10)))
    params._validator.cache_clear()
    assert len(load_sweep(table, PARAMS)) == 9
    assert reads.count("params.schema.yaml") == 1


def test_an_unknown_model_is_refused_with_its_line(tmp_path):
    table = tmp_path / "screen.tsv"
    table.write_text("model\tlr\nconv1\t0.1\nconv9\t0.1\n")
    with pytest.raises(ParamsError, match=r"screen.tsv line 3: no model 'conv9'; the model column takes names "
                                          r"from params.yaml's models \(conv1, conv2, conv3\)"):
        load_sweep(table, PARAMS)


def test_a_table_that_is_not_a_file_is_refused_not_waited_on(tmp_path):
    os.mkfifo(tmp_path / "screen.tsv")
    with time_limit(5), pytest.raises(PipelineError, match=r"screen.tsv is a named pipe \(FIFO\), not a file; "
                                                          "give the path of a sweep table$"):
        load_sweep(tmp_path / "screen.tsv", PARAMS)


def test_a_deeply_nested_value_is_refused_at_once(tmp_path):
    # `[` and `]` may be part of a point's name, so the value reaches the YAML parser: 20,000 deep
    # took minutes there, and a Snakemake start with it.
    table = tmp_path / "screen.tsv"
    table.write_text("lr\n0.1\n" + "[" * 20_000 + "]" * 20_000 + "\n")
    with time_limit(5), pytest.raises(ParamsError, match=r"screen.tsv line 3, column 'lr' nests deeper than 32 levels"):
        load_sweep(table, PARAMS)


def write_point(points: Path, name: str, model: str, accuracy: float, validation: float = 0.5, **summary) -> None:
    (points / name / "metrics" / "train" / model).mkdir(parents=True)
    (points / name / "metrics" / "test").mkdir(parents=True, exist_ok=True)
    (points / name / "metrics" / "train" / model / "metrics.json").write_text(
        json.dumps({"diverged": False, "at_chance": False, "eval": {"accuracy": validation}, **summary}))
    (points / name / "metrics" / "test" / f"{model}.json").write_text(json.dumps({"accuracy": accuracy}))


def test_the_report_shows_diverged_points_and_models_left_out(tmp_path):
    table = tmp_path / "lr.tsv"
    table.write_text("model\toptimizer\tlr\nconv1\tsgd\t0.01\nconv1\tsgd\t1e20\nconv1,conv2\tsgd\t1000\n")
    points = tmp_path / "lr"
    write_point(points, "model~conv1_optimizer~sgd_lr~0.01", "conv1", 0.91234, validation=0.92)
    write_point(points, "model~conv1_optimizer~sgd_lr~1e20", "conv1", 0.1, diverged=True)
    write_point(points, "model~conv1,conv2_optimizer~sgd_lr~1000", "conv1", 0.1, at_chance=True)
    write_point(points, "model~conv1,conv2_optimizer~sgd_lr~1000", "conv2", 0.85, validation=0.86)
    sweep_report.main(table, points, ["conv1", "conv2"], tmp_path / "results.md", tmp_path / "results.png")
    assert (tmp_path / "results.md").read_text().splitlines() == [
        "| optimizer | lr | conv1 validation | conv1 test | conv2 validation | conv2 test |",
        "|---|---|---|---|---|---|",
        "| sgd | 0.01 | 0.9200 | 0.9123 | - | - |",
        "| sgd | 1e20 | diverged | diverged | - | - |",
        "| sgd | 1000 | diverged | diverged | 0.8600 | 0.8500 |",
    ]
    assert (tmp_path / "results.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("header, message", [
    ("lr\tlr", r"screen.tsv line 1 names column 'lr' twice; keep one of them"),  # the second column won
    ("learning rate", r"screen.tsv line 1: column 'learning rate' is not a param key"),  # blamed on "a value"
])
def test_a_bad_header_is_blamed_on_the_header(tmp_path, header, message):
    table = tmp_path / "screen.tsv"
    table.write_text(f"{header}\n" + "\t".join(["0.1"] * len(header.split("\t"))) + "\n")
    with pytest.raises(ParamsError, match=message):
        load_sweep(table, PARAMS)


def test_a_utf8_byte_order_mark_is_not_part_of_the_first_column(tmp_path):
    table = tmp_path / "screen.tsv"
    table.write_bytes(b"\xef\xbb\xbflr\n0.1\n")
    assert list(load_sweep(table, PARAMS)) == ["lr~0.1"]
