"""A grid of experiments through DVC's queue, on a tiny copy of the project."""

import csv
import io
import re
import shlex
from pathlib import Path

import pytest

from tests.e2e.conftest import copy_project, make_project, only_models, planned_jobs, run, wait_for_queue

pytestmark = pytest.mark.e2e
DATA_STAGES = ("download", "normalize", "split")
README = Path(__file__).parents[2] / "README.md"
GRID = {(optimizer, lr) for optimizer in ("adam", "sgd") for lr in (0.001, 0.01)}
RUN = {("adam", 0.01), ("sgd", 0.01)}  # the points run: every point trains alike on tiny data


def readme_command(start: str, comment: str = "") -> list[str]:
    """The words of the README's one command line that begins with `start`, its comment with `comment`."""
    [command] = set(re.findall(rf"^({re.escape(start)} [^#\n]*?)\s+#\s*{re.escape(comment)}", README.read_text(),
                               re.MULTILINE))
    return shlex.split(command)


@pytest.fixture(scope="module")
def baseline(reproduced):
    return reproduced[0]


@pytest.fixture(scope="module")
def grid(baseline, tmp_path_factory):
    """The README's 2 x 2 grid, queued; half of it, and a point that diverges, run two at a time.

    Returns the project, the grid as it was queued (optimizer and lr of each entry), and the
    queue's status once every point ran.
    """
    root = copy_project(baseline, tmp_path_factory.mktemp("grid") / "project")
    run(root, *readme_command("dvc exp run --queue", "queue the 2 x 2 grid"))
    queued = {row["Experiment"]: (row["optimizer"], float(row["lr"])) for row in experiments(root)}
    run(root, "dvc", "queue", "remove", *(name for name, point in queued.items() if point not in RUN))
    run(root, "dvc", "exp", "run", "--queue", "-S", "optimizer=sgd", "-S", "lr=1e20")
    run(root, "dvc", "queue", "start", "-j", "2")
    status = wait_for_queue(root)
    yield root, sorted(queued.values()), status
    run(root, "dvc", "queue", "stop", "--kill", check=False)


def experiments(root) -> list[dict]:
    """A row per experiment (queued ones too), as `dvc exp show --csv` gives it."""
    table = run(root, "dvc", "exp", "show", "--csv", "--hide-workspace", "--hide-failed").stdout
    return [row for row in csv.DictReader(io.StringIO(table)) if row["typ"] in ("branch_commit", "branch_base")]


def test_the_readmes_grid_queues_every_point(grid):
    _, queued, _ = grid
    assert queued == sorted(GRID)


def test_every_point_run_succeeds(grid):
    root, _, status = grid
    assert status.count("Success") == len(RUN) and status.count("Failed") == 1, status
    rows = experiments(root)
    assert {(row["optimizer"], float(row["lr"])) for row in rows} == RUN
    for row in rows:
        for model in ("conv1", "conv2", "conv3"):
            assert 0 <= float(row[f"metrics/test/{model}.json:accuracy"]) <= 1


def test_the_readmes_exp_show_keeps_the_changed_params_and_the_test_metrics(grid):
    root, _, _ = grid
    table = run(root, *readme_command("dvc exp show --only-changed"), "--csv", "--hide-workspace").stdout
    columns = next(csv.reader(io.StringIO(table)))
    assert set(columns) - {"Experiment", "rev", "typ", "Created", "State", "Executor"} == {
        "optimizer", "lr", *(f"metrics/test/{model}.json:{metric}"
                             for model in ("conv1", "conv2", "conv3") for metric in ("accuracy", "loss"))}
    # Without the --drop, the changed stage inputs are there as hash columns: the drop is what removes them.
    unfiltered = next(csv.reader(io.StringIO(run(root, "dvc", "exp", "show", "--only-changed", "--csv").stdout)))
    assert "metrics/test" in unfiltered


def test_every_point_skips_the_data_stages(grid):
    root, _, status = grid
    names = re.findall(r"^\w+\s+(\S+)\s+.*Success", status, re.MULTILINE)
    assert len(names) == len(RUN), status
    for name in names:
        log = run(root, "dvc", "queue", "logs", name).stdout
        for stage in DATA_STAGES:
            assert f"Stage '{stage}' didn't change, skipping" in log, (name, log)
        assert "Running stage 'train@conv1'" in log


def test_one_point_can_be_applied_and_committed(grid, tmp_path):
    root = copy_project(grid[0], tmp_path / "project")
    [chosen] = [row for row in experiments(root) if row["optimizer"] == "sgd" and float(row["lr"]) == 0.01]
    run(root, "dvc", "exp", "apply", chosen["Experiment"])
    run(root, "git", "add", "-A")
    run(root, "git", "commit", "-qm", "take sgd at 0.01")
    assert "up to date" in run(root, "dvc", "status").stdout
    params = (root / "params.yaml").read_text()
    assert "optimizer: sgd" in params and "lr: 0.01" in params


def test_a_diverging_point_fails_alone_and_says_why(grid):
    root, _, status = grid
    [failed] = re.findall(r"^\w+\s+(\S+)\s+.*Failed", status, re.MULTILINE)
    log = run(root, "dvc", "queue", "logs", failed).stdout
    diverged = [line for line in log.splitlines() if line.startswith("error: training diverged")]
    assert len(diverged) == 1 and "lower lr (now 1e+20)" in diverged[0]


# Snakemake: sweeps/<name>.tsv ------------------------------------------------------------

@pytest.fixture(scope="module")
def snakemake_sweep(tmp_path_factory, tiny_mirror):
    # Two models: a point with no `model` column trains each, and four trainings rather than six.
    root = make_project(tmp_path_factory.mktemp("smk_sweep") / "project", tiny_mirror,
                        models=only_models("conv1", "conv2"))
    (root / "sweeps").mkdir()
    (root / "sweeps" / "lr.tsv").write_text("optimizer\tlr\nadam\t0.001\nsgd\t1e-2\n")
    result = run(root, "snakemake", "-c2", "-p", "sweeps")
    return root, result.stdout + result.stderr


def test_a_snakemake_sweep_runs_every_point_and_the_data_stages_once(snakemake_sweep):
    root, output = snakemake_sweep
    assert planned_jobs(output) == {"download": 1, "normalize": 1, "split": 1, "sweep_train": 4,
                                      "sweep_evaluate": 4, "sweep_report": 1, "sweeps": 1}
    table = (root / "sweeps" / "lr" / "results.md").read_text().splitlines()
    assert table[0] == "| optimizer | lr | conv1 validation | conv1 test | conv2 validation | conv2 test |"
    assert [line.split(" | ")[:2] for line in table[2:]] == [["| adam", "0.001"], ["| sgd", "1e-2"]]
    assert (root / "sweeps" / "lr" / "results.png").read_bytes()[:4] == b"\x89PNG"
    for point in ("optimizer~adam_lr~0.001", "optimizer~sgd_lr~1e-2"):
        assert (root / "sweeps" / "lr" / point / "metrics" / "test" / "conv2.json").exists()


def test_every_point_runs_the_stage_command_pinned_to_its_params(snakemake_sweep):
    _, output = snakemake_sweep
    commands = [line for line in output.splitlines() if line.startswith("Shell command: python -m stages.train")]
    assert len(commands) == 4
    pins = []
    for command in commands:
        words = shlex.split(command.removeprefix("Shell command: ").split(" > ")[0])
        pins.append(tuple(sorted(words[i + 1] for i, word in enumerate(words)
                                 if word == "--set" and words[i + 1].startswith(("lr=", "optimizer=")))))
    assert sorted(set(pins)) == [("lr=0.001", 'optimizer="adam"'), ("lr=0.01", 'optimizer="sgd"')]


def test_adding_a_row_runs_only_that_rows_jobs(snakemake_sweep, tmp_path):
    root = copy_project(snakemake_sweep[0], tmp_path / "project")
    with (root / "sweeps" / "lr.tsv").open("a") as table:
        table.write("rmsprop\t0.001\n")
    output = run(root, "snakemake", "-n", "-c2", "sweeps").stdout
    assert planned_jobs(output) == {"sweep_train": 2, "sweep_evaluate": 2, "sweep_report": 1, "sweeps": 1}
    assert set(re.findall(r"output: sweeps/lr/([^/]+)/models/", output)) == {"optimizer~rmsprop_lr~0.001"}


def test_a_bad_point_stops_the_sweep_before_any_job(tmp_path, tiny_mirror):
    root = make_project(tmp_path / "project", tiny_mirror)
    (root / "sweeps").mkdir()
    (root / "sweeps" / "bad.tsv").write_text("lr\n0.01\n-1\n")
    result = run(root, "snakemake", "-c2", "sweeps", check=False)
    assert result.returncode != 0
    assert "error: invalid sweeps/bad.tsv line 3: lr: -1 is less than or equal to the minimum of 0" in result.stderr
    assert not (root / "data").exists()


def test_a_diverging_point_shows_as_diverged_and_the_others_still_run(snakemake_sweep, tmp_path):
    root = copy_project(snakemake_sweep[0], tmp_path / "project")
    (root / "sweeps" / "screen.tsv").write_text("model\toptimizer\tlr\nconv1\tsgd\t1e20\nconv1\tsgd\t0.01\n")
    result = run(root, "snakemake", "-c2", "sweeps")
    # Only the new table's points, and only the model its `model` column names.
    assert planned_jobs(result.stdout + result.stderr) == {
        "sweep_train": 2, "sweep_evaluate": 2, "sweep_report": 1, "sweeps": 1}
    table = (root / "sweeps" / "screen" / "results.md").read_text().splitlines()
    assert table[0] == "| optimizer | lr | conv1 validation | conv1 test |"  # no row trains conv2 or conv3
    assert table[2] == "| sgd | 1e20 | diverged | diverged |"
    assert re.fullmatch(r"\| sgd \| 0\.01 \| 0\.\d{4} \| 0\.\d{4} \|", table[3])
    log = (root / "logs" / "sweeps" / "screen" / "model~conv1_optimizer~sgd_lr~1e20" / "train_conv1.log").read_text()
    assert [line for line in log.splitlines() if "diverged" in line][0].startswith(
        "warning: conv1 diverged: the loss became nan by epoch 1")


def test_the_readmes_rerun_of_one_point_reruns_just_that_point(snakemake_sweep):
    root, _ = snakemake_sweep
    target = "sweeps/lr/optimizer~sgd_lr~1e-2/metrics/test/conv2.json"
    output = run(root, "snakemake", "-n", "-c2", target, "-R", "sweep_train").stdout
    assert planned_jobs(output) == {"sweep_train": 1, "sweep_evaluate": 1}
    assert "sweeps/lr/optimizer~sgd_lr~1e-2/models/conv2.keras" in output
