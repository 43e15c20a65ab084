"""A fresh clone of a project whose results are committed: the README's `dvc repro`, then Snakemake.

DVC rebuilds the data and the models with new times (identical bytes), and git gave every
committed result its checkout's time. Snakemake must not read either as a change: it plans
only what is new, and still sees a real edit.
"""

import re

import pytest

from tests.e2e.conftest import copy_project, planned_jobs, run

pytestmark = pytest.mark.e2e
MODELS = ["conv1", "conv2", "conv3"]
POINT = "sweeps/one/model~conv1_lr~0.002"


def dry_run(root, *args: str) -> str:
    result = run(root, "snakemake", "-n", "-c2", *args)
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def origin(reproduced, tmp_path_factory):
    """A project with DVC's results and a one-point Snakemake sweep (conv1 only) committed, the sweep run here."""
    origin = copy_project(reproduced[0], tmp_path_factory.mktemp("origin") / "project")
    (origin / "sweeps").mkdir()
    (origin / "sweeps" / "one.tsv").write_text("model\tlr\nconv1\t0.002\n")
    run(origin, "snakemake", "-c2", "sweeps")
    run(origin, "git", "add", "-A")
    run(origin, "git", "commit", "-qm", "a sweep's results (its models stay out of git)")
    return origin


@pytest.fixture(scope="module")
def clone(origin, tmp_path_factory):
    """A fresh clone of `origin`, after `dvc repro`, and that run's output."""
    base = tmp_path_factory.mktemp("fresh_clone")
    root = base / "clone"
    run(base, "git", "clone", "-q", str(origin), str(root))
    assert not (root / POINT / "models").exists() and (root / POINT / "metrics" / "test" / "conv1.json").exists()
    repro = run(root, "dvc", "repro")
    return root, repro.stdout + repro.stderr


def test_dvc_repro_in_the_clone_left_results_older_than_their_inputs(clone):
    # The situation under test: by times alone, evaluate and every sweep point are stale.
    root, repro = clone
    assert "Stage 'evaluate@conv1' didn't change, skipping" in repro
    def mtime(path: str) -> float:
        return (root / path).stat().st_mtime

    for model in MODELS:
        assert mtime(f"models/{model}.keras") > mtime(f"metrics/test/{model}.json")
    assert mtime("data/processed/train.npz") > mtime(f"{POINT}/metrics/test/conv1.json")


def test_after_dvc_repro_snakemake_plans_nothing(clone):
    root, _ = clone
    output = dry_run(root)
    assert planned_jobs(output) == {}, output
    assert "DVC finds every stage up to date" in output


def test_the_committed_sweep_is_not_retrained(clone):
    output = dry_run(clone[0], "sweeps")
    assert planned_jobs(output) == {}, output


def test_a_new_table_plans_only_its_own_jobs(clone, tmp_path):
    root = copy_project(clone[0], tmp_path / "project")
    (root / "sweeps" / "two.tsv").write_text("lr\n0.004\n")
    output = dry_run(root, "sweeps")
    assert planned_jobs(output) == {"sweep_train": 3, "sweep_evaluate": 3, "sweep_report": 1, "sweeps": 1}
    assert set(re.findall(r"output: (sweeps/[^/]+/[^/]+)/models/", output)) == {"sweeps/two/lr~0.004"}


def test_a_code_edit_is_still_a_change(clone, tmp_path):
    root = copy_project(clone[0], tmp_path / "project")
    with (root / "stages" / "common" / "training.py").open("a") as training:
        training.write("\n# an edit\n")
    assert "DVC finds every stage" not in dry_run(root)  # DVC sees the edit: times count again
    output = dry_run(root, "sweeps")
    assert planned_jobs(output)["sweep_train"] == 1  # the point's one model
    assert re.search(r"reason: .*Updated input files: .*stages/common/training\.py", output)


def test_a_config_override_is_not_vouched_for_by_dvc(clone):
    output = dry_run(clone[0], "--config", "epochs=2")
    assert "DVC finds every stage" not in output
    assert planned_jobs(output).get("evaluate") == 3  # times count: DVC's newer models are seen


def test_a_forced_rerun_is_not_vouched_for_by_dvc(clone):
    output = dry_run(clone[0], "-R", "report")
    assert "DVC finds every stage" not in output


# Where a point ran, Snakemake recorded its params and code digest: a change reruns it even
# when DVC vouches for everything (`dvc commit` records the change without running anything).
@pytest.mark.parametrize("edit", ["params", "code"])
def test_where_a_point_ran_a_change_to_what_it_used_reruns_it(origin, tmp_path, edit):
    root = copy_project(origin, tmp_path / "project")
    if edit == "params":
        params = (root / "params.yaml").read_text()
        (root / "params.yaml").write_text(params.replace("batch_size: 32", "batch_size: 16"))
    else:
        with (root / "stages" / "common" / "training.py").open("a") as training:
            training.write("\n# an edit\n")
    run(root, "dvc", "commit", "-f", "-q")
    output = dry_run(root, "sweeps")
    assert "DVC finds every stage up to date" in output
    assert planned_jobs(output) == {"sweep_train": 1, "sweep_evaluate": 1, "sweep_report": 1, "sweeps": 1}
