"""The real `dvc` commands on a tiny copy of the project.

Every test stands alone: fixtures build what it reads, and a test that changes a
project works on its own copy (`copy_project`).
"""

import json

import pytest

from stages.common.params import parse_yaml
from tests.e2e.conftest import copy_project, dvc_ran_and_skipped, fresh_clone, make_project, run, wait_for_queue

pytestmark = pytest.mark.e2e
MODELS = ["conv1", "conv2", "conv3"]
UPSTREAM = {"download", "normalize", "split"}
PER_MODEL = {f"{stage}@{model}" for stage in ("train", "evaluate") for model in MODELS}


def exp_run(root, *args: str, check: bool = True):
    result = run(root, "dvc", "exp", "run", *args, check=check)
    return result, result.stdout + result.stderr


@pytest.fixture(scope="module")
def project(reproduced):
    """A tiny project after `dvc repro`, its results committed: the baseline (shared: only read here)."""
    return reproduced


@pytest.fixture(scope="module")
def small_lr_experiment(project, tmp_path_factory):
    """`dvc exp run -S lr=0.00005` on a copy of the baseline: DVC writes `lr: 5e-05`."""
    root = copy_project(project[0], tmp_path_factory.mktemp("exp") / "project")
    _, output = exp_run(root, "-S", "lr=0.00005")
    return root, output


def test_repro_runs_every_stage_and_writes_metrics(project):
    root, output = project
    ran, _ = dvc_ran_and_skipped(output)
    assert ran == UPSTREAM | PER_MODEL | {"report"}
    for model in MODELS:
        metrics = json.loads((root / "metrics" / "test" / f"{model}.json").read_text())
        assert set(metrics) == {"accuracy", "loss"}
        assert (root / "models" / f"{model}.keras").exists()
    assert "| conv3 | 1,421,194 |" in (root / "metrics" / "results.md").read_text()


def test_second_repro_reruns_nothing(project):
    root, _ = project
    output = run(root, "dvc", "repro").stdout
    ran, skipped = dvc_ran_and_skipped(output)
    assert ran == set()
    assert skipped == UPSTREAM | PER_MODEL | {"report"}
    assert "up to date" in run(root, "dvc", "status").stdout


def test_small_lr_is_written_as_yaml_1_2_and_used(small_lr_experiment):
    root, output = small_lr_experiment
    assert "lr: 5e-05" in (root / "params.yaml").read_text()  # what PyYAML read as a string
    ran, skipped = dvc_ran_and_skipped(output)
    assert ran == PER_MODEL | {"report"}  # report only re-tabulates the new metrics
    assert skipped == UPSTREAM


def test_metrics_diff_compares_each_model_against_the_commit(small_lr_experiment):
    root, _ = small_lr_experiment
    changed = json.loads(run(root, "dvc", "metrics", "diff", "--json").stdout)
    assert set(changed) == {f"metrics/test/{model}.json" for model in MODELS}
    for model in MODELS:
        assert set(changed[f"metrics/test/{model}.json"]) <= {"accuracy", "loss"}
        assert "loss" in changed[f"metrics/test/{model}.json"]


def test_exp_show_lists_the_experiment_with_its_params_and_metrics(small_lr_experiment):
    root, _ = small_lr_experiment
    rows = json.loads(run(root, "dvc", "exp", "show", "--json").stdout)
    experiments = [exp for row in rows for exp in (row.get("experiments") or [])]
    assert len(experiments) == 1
    [revision] = experiments[0]["revs"]
    data = revision["data"]
    assert data["params"]["params.yaml"]["data"]["lr"] == 5e-05
    for model in MODELS:
        assert set(data["metrics"][f"metrics/test/{model}.json"]["data"]) == {"accuracy", "loss"}


def test_one_models_setting_reruns_only_that_model(project, tmp_path):
    # The middle model: the one before it and the one after it must both stay cached.
    root = copy_project(project[0], tmp_path / "project")
    model, setting, value = "conv2", "dense_units", "16"
    _, output = exp_run(root, "-S", f"models.{model}.{setting}={value}")
    ran, skipped = dvc_ran_and_skipped(output)
    assert ran == {f"train@{model}", f"evaluate@{model}", "report"}
    assert skipped == UPSTREAM | PER_MODEL - ran
    assert parse_yaml((root / "params.yaml").read_text())["models"][model][setting] == parse_yaml(value)


def test_every_form_of_a_float_is_a_float(project, tmp_path):
    # Each form in one run, on four float settings that training reads; the stage validates them all.
    forms = {"lr": ("1e-3", 1e-3), "momentum": ("1E-4", 1e-4), "train.weight_decay": (".5e-4", 5e-05),
             "train.label_smoothing": ("3.0e-4", 3e-4)}
    root = copy_project(project[0], tmp_path / "project")
    settings = [word for key, (text, _) in forms.items() for word in ("-S", f"{key}={text}")]
    _, output = exp_run(root, *settings, "train@conv1")
    assert "Running stage 'train@conv1'" in output, output
    params = parse_yaml((root / "params.yaml").read_text())
    for key, (_, value) in forms.items():
        section, _, name = key.rpartition(".")
        written = (params[section] if section else params)[name]
        assert type(written) is float and written == value, (key, written)


@pytest.mark.parametrize("setting, line", [
    ("epochs=1e1", "error: invalid params.yaml: epochs: 10.0 is not an integer; write a whole number such as 10 "
                   "(1e1 and 10.0 are floats); fix it in params.yaml"),
    ("train.nesterov=yes", "error: invalid params.yaml: train.nesterov: 'yes' is not a boolean; write true or false; "
                           "fix it in params.yaml"),
])
def test_a_value_of_the_wrong_kind_stops_the_run_with_one_line(project, tmp_path, setting, line):
    root = copy_project(project[0], tmp_path / "project")
    result, output = exp_run(root, "-S", setting, "train@conv1", check=False)
    assert result.returncode != 0
    assert line in output.splitlines()


def test_editing_a_shared_module_reruns_exactly_what_runs_it(project, tmp_path):
    root = copy_project(project[0], tmp_path / "project")
    with (root / "stages" / "common" / "classes.py").open("a") as classes:
        classes.write("\n# an edit\n")
    status = json.loads(run(root, "dvc", "status", "--json").stdout)
    assert set(status) == {f"evaluate@{model}" for model in MODELS}


def test_a_forced_retrain_leaves_evaluate_and_report_cached(project, tmp_path):
    root = copy_project(project[0], tmp_path / "project")
    before = (root / "models" / "conv1.keras").read_bytes()
    run(root, "dvc", "repro", "-f", "train@conv1")
    assert (root / "models" / "conv1.keras").read_bytes() == before
    ran, _ = dvc_ran_and_skipped(run(root, "dvc", "repro").stdout)
    assert ran == set()


def test_snakemake_markers_are_not_changes_to_dvc(project, tmp_path):
    root = copy_project(project[0], tmp_path / "project")
    for folder in ["data/raw", "data/interim", "data/processed", *(f"metrics/train/{model}" for model in MODELS)]:
        (root / folder / ".snakemake_timestamp").touch()  # what Snakemake leaves in a directory() output
    assert "up to date" in run(root, "dvc", "status").stdout


def test_duplicate_keys_are_refused_by_dvc_and_the_stages_alike(project, tmp_path):
    root = copy_project(project[0], tmp_path / "project")
    with (root / "params.yaml").open("a") as params:
        params.write("lr: 0.1\n")
    result = run(root, "dvc", "repro", "-f", "split", check=False)
    assert result.returncode != 0
    assert "duplicate key" in (result.stdout + result.stderr).lower()
    stage = run(root, "python", "-m", "stages.split", "--interim", "data/interim", "--out", "data/processed",
                check=False)
    assert stage.returncode == 1
    assert stage.stderr.strip().startswith('error: params.yaml sets duplicate key "lr"')


def test_plots_show_renders_curves_and_confusion_matrices(project, tmp_path):
    root, _ = project
    run(root, "dvc", "plots", "show", "-o", str(tmp_path / "plots"))
    assert "<html>" in (tmp_path / "plots" / "index.html").read_text()
    images = {p.name for p in (tmp_path / "plots" / "static").iterdir()}
    assert {"workspace_metrics_figures_conv3_confusion.png",
            "workspace_metrics_figures_validation_curves.png"} <= images

    plots = json.loads(run(root, "dvc", "plots", "show", "--json").stdout)["data"]
    curves = {"Validation accuracy by depth", "Loss, train and validation", "Accuracy, train and validation"}
    assert curves <= set(plots)
    for model in MODELS:
        [confusion] = plots[f"metrics/predictions/{model}.csv"]
        assert confusion["content"]["title"]["text"] == f"{model} confusion matrix (test split)"
        assert "rect" in json.dumps(confusion["content"]["spec"])  # the confusion template's heat map
        assert f'"filename": "{model}.tsv"' in json.dumps(plots["Validation accuracy by depth"])  # one line each


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
    root = make_project(tmp_path / "nomirror", tiny_mirror, data={"mirrors": [f"{url}missing/", url],
                                                                  "timeout_s": 10, "files": bad_files})
    result = run(root, "dvc", "repro", "download", check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "error: no mirror gave a valid train-images-idx3-ubyte.gz" in output
    assert f"{url}missing/train-images-idx3-ubyte.gz (HTTP 404" in output
    assert f"{url}train-images-idx3-ubyte.gz (checksum mismatch" in output
    assert not (root / "data" / "raw").exists()


@pytest.mark.parametrize("queued", [False, True], ids=["run", "queue"])
def test_fresh_clone_runs_an_experiment_on_one_model(project, tmp_path, queued):
    # A clone without a remote has no cached outputs at all; the experiment must not need
    # another model's (the top-level plots once read inside conv2's cached DVCLive folder).
    root = fresh_clone(project[0], tmp_path)
    if queued:
        exp_run(root, "--queue", "-n", "one-model", "-S", "lr=0.00005", "train@conv1")
        run(root, "dvc", "queue", "start")
        assert "Success" in wait_for_queue(root), run(root, "dvc", "queue", "logs", "one-model", check=False).stdout
    else:
        _, output = exp_run(root, "-n", "one-model", "-S", "lr=0.00005", "train@conv1")
        assert dvc_ran_and_skipped(output)[0] == UPSTREAM | {"train@conv1"}
    assert "one-model" in run(root, "dvc", "exp", "list", "--name-only").stdout.split()
