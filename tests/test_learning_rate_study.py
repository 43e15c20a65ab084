"""studies/learning_rate.py: the study's tables and figure, from sweep points' metrics files."""

import json
from pathlib import Path

from studies import learning_rate


def write_run(root: Path, sweep: str, point: str, model: str, curve: list[float], test: float,
              train_time_s: float = 100.0, diverged: bool = False) -> None:
    base = root / sweep / point / "metrics"
    live = base / "train" / model
    (live / "plots" / "metrics" / "eval").mkdir(parents=True)
    (live / "metrics.json").write_text(json.dumps(
        {"eval": {"accuracy": curve[-1]}, "diverged": diverged, "at_chance": False, "epochs_run": len(curve)}))
    (live / "plots" / "metrics" / "eval" / "accuracy.tsv").write_text(
        "step\taccuracy\n" + "".join(f"{step}\t{value}\n" for step, value in enumerate(curve)))
    for folder, content in (("test", {"accuracy": test, "loss": 0.3}),
                            ("timing", {"train_time_s": train_time_s, "epochs_run": len(curve)})):
        (base / folder).mkdir(parents=True, exist_ok=True)
        (base / folder / f"{model}.json").write_text(json.dumps(content))


def test_the_search_picks_each_optimizers_rate_on_validation(tmp_path):
    (tmp_path / "lr_search.tsv").write_text(
        "model\toptimizer\ttrain.nesterov\ttrain.schedule\tlr\n"
        "conv1\tsgd\ttrue\tconstant\t0.01\nconv1\tsgd\ttrue\tconstant\t0.1\nconv1\tadam\tfalse\tconstant\t10\n")
    write_run(tmp_path, "lr_search", "model~conv1_optimizer~sgd_train.nesterov~true_train.schedule~constant_lr~0.01",
              "conv1", [0.85, 0.90], test=0.95)  # best on test, not on validation
    write_run(tmp_path, "lr_search", "model~conv1_optimizer~sgd_train.nesterov~true_train.schedule~constant_lr~0.1",
              "conv1", [0.86, 0.91], test=0.89)
    write_run(tmp_path, "lr_search", "model~conv1_optimizer~adam_train.nesterov~false_train.schedule~constant_lr~10",
              "conv1", [0.1, 0.1], test=0.1, diverged=True)
    runs = learning_rate.load_runs("lr_search", tmp_path)
    assert learning_rate.chosen_rates(runs) == {"SGD+Nesterov": "0.1"}
    assert learning_rate.search_table(runs)[2:] == [
        "| SGD+Nesterov | 0.01 | 0.9000 | 0.9500 |",
        "| SGD+Nesterov | 0.1 | 0.9100 | 0.8900 |",
        "| Adam | 10 | diverged | diverged |",
    ]


def test_seeds_give_mean_sd_and_time_to_target(tmp_path):
    (tmp_path / "lr_seeds.tsv").write_text("optimizer\ttrain.label_smoothing\tlr\tseed\n"
                                           + "".join(f"adam\t0\t0.001\t{seed}\n" for seed in (1, 2, 3)))
    for seed, (test, curve) in zip((1, 2, 3), [(0.91, [0.90, 0.92]), (0.92, [0.91, 0.93]), (0.93, [0.93, 0.94])]):
        write_run(tmp_path, "lr_seeds", f"optimizer~adam_train.label_smoothing~0_lr~0.001_seed~{seed}",
                  "conv1", curve, test=test, train_time_s=60.0)
    cells = learning_rate.seed_cells(learning_rate.load_runs("lr_seeds", tmp_path))
    conv1 = [cell for cell in cells if cell.model == "conv1"]
    assert len(conv1) == 1 and conv1[0].technique == "naive (Adam 1e-3)"
    # conv1's target is 0.918: reached at epoch 2, 2 and 1 of 2 epochs of 60 s.
    assert conv1[0].seconds_to_target == [60.0, 60.0, 30.0]
    row = [line for line in learning_rate.seeds_table(cells) if line.startswith("| conv1")][0]
    assert row == "| conv1 | naive (Adam 1e-3) | 3 | 0.9300 ± 0.0100 | 0.9200 ± 0.0100 | 60 s |"


def test_main_writes_the_tables_and_figure_from_whatever_sweeps_exist(tmp_path):
    (tmp_path / "sweeps").mkdir()
    (tmp_path / "sweeps" / "lr_seeds.tsv").write_text("model\toptimizer\tlr\tseed\nconv2\tsgd\t0.1\t1\n")
    write_run(tmp_path / "sweeps", "lr_seeds", "model~conv2_optimizer~sgd_lr~0.1_seed~1", "conv2", [0.9, 0.93], 0.931)
    learning_rate.main(tmp_path / "sweeps", tmp_path / "out")
    text = (tmp_path / "out" / "results.md").read_text()
    assert "Step 1" not in text and "| conv2 | SGD+momentum | 1 | 0.9300 | 0.9310 | 100 s |" in text
    assert (tmp_path / "out" / "results.png").read_bytes()[:4] == b"\x89PNG"


def test_the_depth_table_bolds_the_best_on_validation_not_on_test(tmp_path):
    (tmp_path / "lr_seeds.tsv").write_text("model\toptimizer\tlr\tseed\n"
                                           + "".join(f"conv2\t{name}\t0.001\t{seed}\n"
                                                     for name in ("adam", "rmsprop") for seed in (1, 2)))
    for seed in (1, 2):
        write_run(tmp_path, "lr_seeds", f"model~conv2_optimizer~adam_lr~0.001_seed~{seed}", "conv2",
                  [0.92, 0.94], test=0.92)  # best on validation
        write_run(tmp_path, "lr_seeds", f"model~conv2_optimizer~rmsprop_lr~0.001_seed~{seed}", "conv2",
                  [0.90, 0.925 + seed / 1000], test=0.93 + seed / 1000)  # best on test; never reaches 0.929
    cells = learning_rate.seed_cells(learning_rate.load_runs("lr_seeds", tmp_path))
    assert learning_rate.by_depth_table(cells, lambda cell: learning_rate.mean_sd(cell.tests)) == [
        "| technique | conv2 |", "|---|---|",
        "| Adam | **0.9200 ± 0.0000** |",
        "| RMSprop | 0.9315 ± 0.0007 |",
    ]
    times = learning_rate.by_depth_table(cells, lambda cell: learning_rate.time_text(cell.seconds_to_target))
    assert times[2:] == ["| Adam | **100 s** |", "| RMSprop | not reached |"]


def data_rows(markdown: str) -> list[tuple[str, ...]]:
    """Each table row's cells after the label, bold marks dropped; header and separator rows left out."""
    lines = markdown.splitlines()
    rows = []
    for number, line in enumerate(lines):
        is_header = number + 1 < len(lines) and lines[number + 1].startswith("|---")
        if line.startswith("|") and not line.startswith("|---") and not is_header:
            rows.append(tuple(cell.strip().replace("**", "") for cell in line.strip("|").split("|"))[1:])
    return rows


def page_rows_not_generated(start: str, end: str, results: str) -> tuple[int, list]:
    """The table rows of studies/learning_rate.md between two headings, counted, and those missing
    from the generated tables in studies/<results>."""
    repo = Path(__file__).resolve().parents[1]
    page = (repo / "studies" / "learning_rate.md").read_text()
    quoted = data_rows(page[page.index(start):page.index(end)])
    generated = set(data_rows((repo / "studies" / results).read_text()))
    return len(quoted), [row for row in quoted if row not in generated]


def test_the_study_page_quotes_its_numbers_from_the_generated_tables():
    # The page's result tables are copied from results.md with longer row labels; a rerun
    # of the study that changed a number must not leave the page behind.
    count, missing = page_rows_not_generated("## Results", "## Compute", "learning_rate/results.md")
    assert count >= 14, "the page's step 2 and step 3 tables were not found"
    assert missing == []


def test_the_schedules_table_starts_from_each_optimizers_chosen_constant_rate(tmp_path):
    (tmp_path / "lr_search.tsv").write_text("model\toptimizer\ttrain.nesterov\ttrain.schedule\tlr\n"
                                            "conv1\tsgd\ttrue\tconstant\t0.1\nconv1\tsgd\ttrue\tconstant\t0.01\n")
    (tmp_path / "lr_schedules.tsv").write_text("model\toptimizer\ttrain.nesterov\ttrain.schedule\tlr\n"
                                               "conv1\tsgd\ttrue\tcosine\t0.1\nconv1\tsgd\ttrue\tstep\t0.1\n")
    for sweep, schedule, lr, last in [("lr_search", "constant", "0.01", 0.90), ("lr_search", "constant", "0.1", 0.91),
                                      ("lr_schedules", "cosine", "0.1", 0.93), ("lr_schedules", "step", "0.1", 0.92)]:
        write_run(tmp_path, sweep, f"model~conv1_optimizer~sgd_train.nesterov~true_train.schedule~{schedule}_lr~{lr}",
                  "conv1", [0.8, last], test=0.9)
    learning_rate.main(tmp_path, tmp_path / "out")
    text = (tmp_path / "out" / "results.md").read_text()
    step2 = text[text.index("## Step 2"):].splitlines()
    # The constant column is the search's point at the chosen rate (0.1), not the other one.
    assert step2[2:5] == ["| optimizer | lr | constant | step | cosine | plateau |", "|---|---|---|---|---|---|",
                          "| SGD+Nesterov | 0.1 | 0.9100 | 0.9200 | 0.9300 | - |"]


def test_the_command_line_writes_the_study_under_the_current_folder(tmp_path, monkeypatch, run_module):
    (tmp_path / "sweeps").mkdir()
    (tmp_path / "sweeps" / "lr_seeds.tsv").write_text("model\toptimizer\tlr\tseed\nconv2\tsgd\t0.1\t1\n")
    write_run(tmp_path / "sweeps", "lr_seeds", "model~conv2_optimizer~sgd_lr~0.1_seed~1", "conv2", [0.9, 0.93], 0.931)
    monkeypatch.chdir(tmp_path)
    assert run_module("studies.learning_rate", "--unknown").returncode == 2
    result = run_module("studies.learning_rate")
    assert result.returncode == 0, result.stderr
    assert "| conv2 | SGD+momentum | 1 |" in (tmp_path / "studies" / "learning_rate" / "results.md").read_text()
