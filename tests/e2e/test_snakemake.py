"""The real `snakemake` commands on a tiny copy of the project."""

import re
import shutil
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import REPO, make_project, run

pytestmark = pytest.mark.e2e
MODELS = ["conv1", "conv2", "conv3"]


def planned_jobs(output: str) -> dict[str, int]:
    """Snakemake's own 'Job stats' table of a dry run: {rule: count}."""
    if "Nothing to be done" in output:
        return {}
    table = output.split("Job stats:")[1].split("total")[0]
    return {rule: int(count) for rule, count in re.findall(r"^(\w+)\s+(\d+)$", table, re.MULTILINE)}


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
        for path in (f"models/{model}.keras", f"metrics/test/{model}.json", f"metrics/predictions/{model}.csv",
                     f"metrics/figures/{model}/confusion.png", f"metrics/train/{model}/metrics.json"):
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


def test_one_models_setting_reruns_only_that_model(workflow, tmp_path):
    params = yaml.safe_load((workflow / "params.yaml").read_text())
    params["models"]["conv2"]["conv_dropout"] = 0.3
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(params))
    output = run(workflow, "snakemake", "-n", "-c2", "--configfile", str(changed)).stdout
    assert planned_jobs(output) == {"train": 1, "evaluate": 1, "report": 1, "all": 1}
    trained = re.findall(r"^\s*output: models/(\w+)\.keras", output, re.MULTILINE)
    assert trained == ["conv2"]


def test_report_holds_metrics_and_plots(workflow):
    run(workflow, "snakemake", "-c2", "--report", "report.zip")
    with zipfile.ZipFile(workflow / "report.zip") as report:
        files = {Path(name).name: report.read(name) for name in report.namelist() if not name.endswith("/")}
        confusion_pngs = sum(Path(name).name == "confusion.png" for name in report.namelist())
    assert "report.html" in files
    for model in MODELS:
        assert files[f"{model}.json"] == (workflow / "metrics" / "test" / f"{model}.json").read_bytes()
    assert confusion_pngs == 3
    assert {"misclassified.png", "validation_curves.png", "results.md"} <= set(files)


def test_dvc_and_snakemake_write_identical_metrics(workflow, tmp_path):
    copy = tmp_path / "dvc_copy"
    shutil.copytree(workflow, copy)
    for generated in ("data/raw", "data/interim", "data/processed", "models", "metrics"):
        shutil.rmtree(copy / generated)
    run(copy, "dvc", "repro")
    for model in MODELS:
        assert (copy / "metrics" / "test" / f"{model}.json").read_bytes() == \
            (workflow / "metrics" / "test" / f"{model}.json").read_bytes()


@pytest.mark.parametrize(
    "config, message",
    [
        ("lr=-1", "lr: -1 is less than or equal to the minimum of 0; fix it in params.yaml"),
        ("lr=fast", "lr: 'fast' is not of type 'number'"),
        ("learning_rate=0.1", "Additional properties are not allowed ('learning_rate' was unexpected)"),
    ],
)
def test_bad_config_fails_before_any_job(tmp_path, tiny_mirror, config, message):
    root = make_project(tmp_path / "bad", tiny_mirror)
    result = run(root, "snakemake", "-c2", "--config", config, check=False)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert not (root / "data").exists()


def test_lint_is_clean():
    result = run(REPO, "snakemake", "--lint")
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr
