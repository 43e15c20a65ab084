"""The real `snakemake` commands on a tiny copy of the project.

Every test stands alone: the module's workflow is only read, and a test that changes a
project works on its own copy (`copy_project`).
"""

import re
import shutil
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import REPO, copy_project, make_project, planned_jobs, run

pytestmark = pytest.mark.e2e
MODELS = ["conv1", "conv2", "conv3"]


def dry_run(root: Path, *args: str) -> dict[str, int]:
    result = run(root, "snakemake", "-n", "-c2", *args)
    return planned_jobs(result.stdout + result.stderr)


@pytest.fixture(scope="module")
def workflow(tmp_path_factory, tiny_mirror):
    root = make_project(tmp_path_factory.mktemp("smk") / "project", tiny_mirror)
    run(root, "snakemake", "-c2")
    return root


def test_full_run_produces_the_same_files_as_dvc(workflow):
    for model in MODELS:
        for path in (f"models/{model}.keras", f"metrics/test/{model}.json", f"metrics/details/{model}.json",
                     f"metrics/predictions/{model}.csv", f"metrics/figures/{model}/confusion.png",
                     f"metrics/train/{model}/metrics.json", f"metrics/timing/{model}.json"):
            assert (workflow / path).exists(), path
    for path in ("data/raw/train-images-idx3-ubyte", "data/processed/test.npz", "metrics/results.md"):
        assert (workflow / path).exists(), path


def test_fresh_clone_with_committed_metrics_plans_the_whole_pipeline(tmp_path, tiny_mirror):
    root = make_project(tmp_path / "clone", tiny_mirror)
    shutil.copytree(REPO / "metrics", root / "metrics")  # as committed, but no data or models
    assert dry_run(root) == {"download": 1, "normalize": 1, "split": 1, "train": 3, "evaluate": 3,
                             "report": 1, "all": 1}


def test_second_run_has_nothing_to_do(workflow):
    assert dry_run(workflow) == {}


def test_lr_change_reruns_only_train_and_evaluate(workflow):
    jobs = dry_run(workflow, "--config", "lr=0.01")
    assert jobs.pop("train") == 3 and jobs.pop("evaluate") == 3
    assert set(jobs) <= {"report", "all"}  # report only re-tabulates; nothing upstream reruns


@pytest.mark.parametrize("config", ['models={"conv2": {"conv_dropout": 0.1}}', "models={conv2: {dense_units: 16}}"])
def test_one_models_setting_reruns_only_that_model(workflow, config):
    result = run(workflow, "snakemake", "-n", "-c2", "--config", config)
    assert planned_jobs(result.stdout) == {"train": 1, "evaluate": 1, "report": 1, "all": 1}
    assert re.findall(r"^\s*output: models/(\w+)\.keras", result.stdout, re.MULTILINE) == ["conv2"]


def test_one_models_setting_from_a_config_file(workflow, tmp_path):
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump({"models": {"conv3": {"dense_dropout": 0.2}}}))
    output = run(workflow, "snakemake", "-n", "-c2", "--configfile", str(changed)).stdout
    assert planned_jobs(output) == {"train": 1, "evaluate": 1, "report": 1, "all": 1}


@pytest.mark.parametrize("text, pinned", [("5e-05", "5e-05"), ("1e-3", "0.001"), ("1E-4", "0.0001"),
                                          (".5e-4", "5e-05"), ("3.0e-4", "0.0003")])
def test_every_form_of_a_float_from_config_is_a_float(workflow, text, pinned):
    output = run(workflow, "snakemake", "-n", "-p", "-c2", "--config", f"lr={text}").stdout
    assert planned_jobs(output)["train"] == 3
    commands = [line for line in output.splitlines() if line.startswith("Shell command: python -m stages.train")]
    assert len(commands) == 3
    assert {re.search(r"--set lr=(\S+) ", command).group(1) for command in commands} == {pinned}


def test_small_lr_from_config_trains(workflow, tmp_path):
    root = copy_project(workflow, tmp_path / "project")
    before = (root / "models" / "conv1.keras").read_bytes()
    result = run(root, "snakemake", "-c2", "-p", "models/conv1.keras", "--config", "lr=0.00005")
    assert "--set lr=5e-05" in result.stdout + result.stderr
    assert (root / "models" / "conv1.keras").read_bytes() != before  # trained anew, at the small rate


def test_editing_a_shared_module_plans_what_runs_it(workflow, tmp_path):
    root = copy_project(workflow, tmp_path / "project")
    with (root / "stages" / "common" / "classes.py").open("a") as classes:
        classes.write("\n# an edit\n")
    assert dry_run(root) == {"evaluate": 3, "report": 1, "all": 1}


def test_report_holds_metrics_and_plots(workflow, tmp_path):
    run(workflow, "snakemake", "-c2", "--report", str(tmp_path / "report.zip"))
    with zipfile.ZipFile(tmp_path / "report.zip") as report:
        files = {Path(name).name: report.read(name) for name in report.namelist() if not name.endswith("/")}
        confusion_pngs = sum(Path(name).name == "confusion.png" for name in report.namelist())
    assert "report.html" in files
    for model in MODELS:
        assert files[f"{model}.json"] == (workflow / "metrics" / "test" / f"{model}.json").read_bytes()
    assert confusion_pngs == 3
    assert {"misclassified.png", "validation_curves.png", "results.md"} <= set(files)


def test_dvc_and_snakemake_write_identical_results_and_agree_they_are_done(workflow, reproduced, tmp_path):
    # `reproduced` is the same tiny project (same params, same mirror) after `dvc repro`.
    dvc_run = copy_project(reproduced[0], tmp_path / "dvc_run")
    for path in [*(f"metrics/test/{model}.json" for model in MODELS), *(f"models/{model}.keras" for model in MODELS),
                 "metrics/results.md", "metrics/train/conv2/metrics.json"]:
        assert (dvc_run / path).read_bytes() == (workflow / path).read_bytes(), path
    assert dry_run(dvc_run) == {}  # after dvc repro, Snakemake plans nothing


@pytest.mark.parametrize(
    "config, message",
    [
        ("lr=-1", "invalid snakemake --config lr: lr: -1 is less than or equal to the minimum of 0; fix that override"),
        ("lr=fast", "lr: 'fast' is not a number"),
        ("train={nesterov: yes}", "train.nesterov: 'yes' is not a boolean"),
        ("epochs=1e1", "epochs: 10.0 is not an integer"),
        ("learning_rate=0.1", "Additional properties are not allowed ('learning_rate' was unexpected)"),
    ],
)
def test_bad_config_fails_before_any_job(tmp_path, tiny_mirror, config, message):
    root = make_project(tmp_path / "bad", tiny_mirror)
    result = run(root, "snakemake", "-c2", "--config", config, check=False)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert "fix it in params.yaml" not in result.stdout + result.stderr
    assert not (root / "data").exists()


def test_duplicate_key_in_params_fails_before_any_job(tmp_path, tiny_mirror):
    root = make_project(tmp_path / "dup", tiny_mirror)
    with (root / "params.yaml").open("a") as params:
        params.write("lr: 0.1\n")
    result = run(root, "snakemake", "-c2", check=False)
    assert result.returncode != 0
    assert 'params.yaml sets duplicate key "lr"' in result.stdout + result.stderr
    assert not (root / "data").exists()


def test_lint_is_clean():
    result = run(REPO, "snakemake", "--lint")
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr
