"""k-fold cross-validation through the real `dvc` and `snakemake`, on tiny data, each from a fresh clone."""

import json
import re
import shutil

import pytest
import yaml

from tests.e2e.conftest import REPO, copy_project, dvc_ran_and_skipped, fresh_clone, planned_jobs, run

pytestmark = pytest.mark.e2e
MODELS = ["conv1", "conv2", "conv3"]
CV_STAGES = {f"cv_train@{model}" for model in MODELS} | {"cv_report"}
DATA_STAGES = {"download", "normalize", "split"}


def cv_files(root) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted((root / "metrics" / "cv").iterdir())}


@pytest.fixture(scope="module")
def main_pipeline(reproduced, tmp_path_factory):
    """A tiny project after the default `dvc repro`, with the cross-validation pipeline and k=3, committed.

    The other e2e projects leave cv/dvc.yaml out: it would make their `dvc status` list stages never run.
    """
    root = copy_project(reproduced[0], tmp_path_factory.mktemp("cv") / "project")
    shutil.copytree(REPO / "cv", root / "cv")
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["cv"] = {"folds": 3, "seed": 0}  # read by no stage of the main pipeline, which stays cached
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(root, "git", "add", "-A")
    run(root, "git", "commit", "-qm", "cross-validation, 3 folds")
    return root


@pytest.fixture(scope="module")
def dvc_cv(main_pipeline, tiny_mirror, tmp_path_factory):
    """A fresh clone after the README's `dvc repro cv/dvc.yaml`, and DVC's output."""
    root = fresh_clone(main_pipeline, tmp_path_factory.mktemp("dvc-cv"))
    output = run(root, "dvc", "repro", "cv/dvc.yaml").stdout
    return root, output


def test_the_default_repro_does_not_run_cross_validation(main_pipeline):
    assert not (main_pipeline / "metrics" / "cv").exists()


def test_dvc_runs_every_fold_of_every_model_and_only_that(dvc_cv):
    root, output = dvc_cv
    ran = {stage.removeprefix("cv/dvc.yaml:") for stage in dvc_ran_and_skipped(output)[0]}
    assert ran == CV_STAGES | DATA_STAGES  # the clone has no data yet; no model of the main pipeline trains
    for model in MODELS:
        result = json.loads((root / "metrics" / "cv" / f"{model}.json").read_text())
        assert [fold["fold"] for fold in result["per_fold"]] == [1, 2, 3]
        assert sum(fold["images"] for fold in result["per_fold"]) == 200  # 80 % of the 250 tiny images, once
        assert 0 <= result["accuracy_mean"] <= 1 and result["accuracy_sd"] >= 0
    table = (root / "metrics" / "cv" / "results.md").read_text().splitlines()
    assert [line.split(" | ")[0] for line in table[2:]] == [f"| {model}" for model in MODELS]


@pytest.fixture(scope="module")
def snakemake_cv(main_pipeline, tiny_mirror, tmp_path_factory):
    """Another fresh clone after `snakemake -c2 cv`."""
    root = fresh_clone(main_pipeline, tmp_path_factory.mktemp("snakemake-cv"))
    run(root, "snakemake", "-c2", "cv")
    return root


def test_snakemake_gives_byte_identical_results(dvc_cv, snakemake_cv):
    assert cv_files(snakemake_cv) == cv_files(dvc_cv[0])


def test_changing_cv_settings_reruns_only_cross_validation_in_dvc(dvc_cv, tmp_path):
    root = copy_project(dvc_cv[0], tmp_path / "project")
    run(root, "git", "add", "-A")
    run(root, "git", "commit", "-qm", "cv results")
    main_status = run(root, "dvc", "status", "dvc.yaml").stdout  # the clone has trained no model
    output = run(root, "dvc", "exp", "run", "-S", "cv.folds=2", "cv/dvc.yaml").stdout
    ran = {stage.removeprefix("cv/dvc.yaml:") for stage in dvc_ran_and_skipped(output)[0]}
    assert ran == CV_STAGES, output
    assert run(root, "dvc", "status", "dvc.yaml").stdout == main_status  # the main pipeline is untouched


def test_a_new_cv_seed_is_a_change_to_cross_validation_only_in_dvc(dvc_cv, tmp_path):
    root = copy_project(dvc_cv[0], tmp_path / "project")
    main_status = run(root, "dvc", "status", "dvc.yaml").stdout
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["cv"]["seed"] = 7
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    changed = run(root, "dvc", "status", "cv/dvc.yaml").stdout
    stages = {name.removeprefix("cv/dvc.yaml:") for name in re.findall(r"^(\S+):$", changed, re.MULTILINE)}
    assert {f"cv_train@{model}" for model in MODELS} <= stages, changed
    assert re.findall(r"modified:\s+(\S+)", changed) == ["cv"] * len(MODELS), changed  # the stages read all of `cv`
    assert run(root, "dvc", "status", "dvc.yaml").stdout == main_status


def test_changing_cv_settings_reruns_only_cross_validation_in_snakemake(main_pipeline, snakemake_cv, tmp_path):
    config = ("--config", "cv={'folds': 2, 'seed': 0}")
    output = run(snakemake_cv, "snakemake", "-n", "-c2", "cv", *config)
    planned = planned_jobs(output.stdout + output.stderr)
    assert {rule for rule in planned if rule != "cv"} == {"cv_train", "cv_report"}, planned
    assert planned["cv_train"] == len(MODELS)
    # The clone trained no model of the main pipeline; where it did, the same config plans none of its jobs.
    complete = copy_project(main_pipeline, tmp_path / "project")
    output = run(complete, "snakemake", "-n", "-c2", "all", *config)
    assert set(planned_jobs(output.stdout + output.stderr)) <= {"all"}, output.stdout


@pytest.mark.parametrize("change, line", [
    ({"folds": 1}, "error: invalid params.yaml: cv.folds: 1 is less than the minimum of 2"),
    ({"folds": 100}, "error: cv.folds=100 needs at least 100 images of every class, and the training portion has"),
    ({"folds": "3"}, "error: invalid params.yaml: cv.folds: '3' is not an integer"),
])
def test_bad_cv_settings_stop_before_any_training(main_pipeline, tmp_path, change, line):
    root = copy_project(main_pipeline, tmp_path / "project")
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["cv"].update(change)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = run(root, "python", "-m", "stages.cv_train", "--model", "conv1", "--data", "data/processed",
                 "--out", "metrics/cv/conv1.json", check=False)
    assert result.returncode == 1
    [message] = result.stderr.strip().splitlines()
    assert message.startswith(line), message
    assert "Epoch" not in result.stdout + result.stderr
    assert not (root / "metrics" / "cv").exists()
