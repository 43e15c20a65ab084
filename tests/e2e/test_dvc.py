"""The real `dvc` commands on a tiny copy of the project."""

import json
import re

import pytest
import yaml

from tests.e2e.conftest import make_project, run

pytestmark = pytest.mark.e2e
MODELS = ["conv1", "conv2", "conv3"]
UPSTREAM = {"download", "normalize", "split"}
PER_MODEL = {f"{stage}@{model}" for stage in ("train", "evaluate") for model in MODELS}


def ran_and_skipped(output: str) -> tuple[set[str], set[str]]:
    ran = set(re.findall(r"Running stage '([^']+)'", output))
    skipped = set(re.findall(r"Stage '([^']+)' didn't change, skipping", output))
    return ran, skipped


@pytest.fixture(scope="module")
def project(tmp_path_factory, tiny_mirror):
    root = make_project(tmp_path_factory.mktemp("dvc") / "project", tiny_mirror)
    first = run(root, "dvc", "repro")
    return root, first.stdout + first.stderr


def test_repro_runs_every_stage_and_writes_metrics(project):
    root, output = project
    ran, _ = ran_and_skipped(output)
    assert ran == UPSTREAM | PER_MODEL | {"report"}
    for model in MODELS:
        metrics = json.loads((root / "metrics" / "test" / f"{model}.json").read_text())
        assert {"accuracy", "loss", "params", "per_class_accuracy"} <= set(metrics)
        assert (root / "models" / f"{model}.keras").exists()
    assert "| conv3 | 1,421,194 |" in (root / "metrics" / "results.md").read_text()


def test_second_repro_reruns_nothing(project):
    root, _ = project
    output = run(root, "dvc", "repro").stdout
    ran, skipped = ran_and_skipped(output)
    assert ran == set()
    assert skipped == UPSTREAM | PER_MODEL | {"report"}
    assert "up to date" in run(root, "dvc", "status").stdout


def test_exp_run_with_new_lr_reruns_only_training_and_what_follows(project):
    root, _ = project
    run(root, "git", "add", "-A")
    run(root, "git", "commit", "-qm", "baseline results")
    output = run(root, "dvc", "exp", "run", "-S", "lr=0.01").stdout
    ran, skipped = ran_and_skipped(output)
    assert ran == PER_MODEL | {"report"}  # report only re-tabulates the new metrics
    assert skipped == UPSTREAM
    assert yaml.safe_load((root / "params.yaml").read_text())["lr"] == 0.01


def test_metrics_diff_compares_each_model_against_the_commit(project):
    root, _ = project
    diff = run(root, "dvc", "metrics", "diff", "--json").stdout
    changed = json.loads(diff)
    for model in MODELS:
        assert set(changed[f"metrics/test/{model}.json"]) >= {"loss"}
    # `params` (the parameter count) does not change with lr, so it is not in the diff
    assert "params" not in changed["metrics/test/conv1.json"]


def test_exp_show_lists_the_experiment_with_its_lr(project):
    root, _ = project
    table = run(root, "dvc", "exp", "show", "--json").stdout
    assert "0.01" in table and "metrics/test/conv1.json" in table


def test_plots_show_renders_curves_and_confusion_matrices(project):
    root, _ = project
    run(root, "dvc", "plots", "show", "-o", "plots_out")
    assert "<html>" in (root / "plots_out" / "index.html").read_text()
    images = {p.name for p in (root / "plots_out" / "static").iterdir()}
    assert {"workspace_metrics_figures_conv3_confusion.png",
            "workspace_metrics_figures_validation_curves.png"} <= images

    plots = json.loads(run(root, "dvc", "plots", "show", "--json").stdout)["data"]
    assert "Validation accuracy by depth" in plots
    for model in MODELS:
        [confusion] = plots[f"metrics/predictions/{model}.csv"]
        assert confusion["content"]["title"]["text"] == f"{model} confusion matrix (test split)"
        assert "rect" in json.dumps(confusion["content"]["spec"])  # the confusion template's heat map
        assert f"metrics/train/{model}/plots/metrics/eval/accuracy.tsv" in plots


@pytest.mark.parametrize(
    "change, message",
    [
        ({"learning_rate": 0.1}, "error: invalid params.yaml: top level: Additional properties are not allowed"),
        ({"lr": 0}, "error: invalid params.yaml: lr: 0 is less than or equal to the minimum of 0"),
    ],
)
def test_bad_params_stop_the_pipeline_with_one_clear_line(tmp_path, tiny_mirror, change, message):
    root = make_project(tmp_path / "bad", tiny_mirror, **change)
    result = run(root, "dvc", "repro", check=False)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert not (root / "data" / "raw").exists()


def test_no_valid_mirror_fails_with_every_mirror_named(tmp_path, tiny_mirror):
    url, files = tiny_mirror
    bad_files = {role: dict(spec, sha256="0" * 64) for role, spec in files.items()}
    root = make_project(tmp_path / "nomirror", tiny_mirror)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["data"]["files"] = bad_files
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = run(root, "dvc", "repro", "download", check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "error: no mirror gave a valid train-images-idx3-ubyte.gz" in output
    assert f"{url}missing/train-images-idx3-ubyte.gz (HTTP 404" in output
    assert f"{url}train-images-idx3-ubyte.gz (checksum mismatch" in output
    assert not (root / "data" / "raw").exists()
