"""dvc.yaml and the Snakefile describe one pipeline: the same commands, params, outputs and code.

DVC is asked for its stages (its own index of dvc.yaml) and Snakemake for its jobs (a
forced dry run), so the comparison is of what each tool will run, not of file text.
"""

import ast
import re
import shlex
import shutil

import pytest
from dvc.repo import Repo

from stages.common.code import code_files
from stages.common.params import load_params, parse_yaml
from tests.e2e.conftest import PROJECT_FILES, REPO
from tests.e2e.conftest import run as run_command

MODELS = list(load_params(REPO / "params.yaml")["models"])


def related(a: str, b: str) -> bool:
    """The same path, or one a folder holding the other (`data/processed` and `data/processed/test.npz`)."""
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def without_pins(command: str) -> tuple[str, list[str]]:
    """A Snakemake shell command without its log redirection and `--set` pins, and the pinned keys."""
    words = shlex.split(command.split(" > ")[0])
    keys = [words[i + 1].split("=")[0] for i, word in enumerate(words) if word == "--set"]
    kept = [word for i, word in enumerate(words) if word != "--set" and (i == 0 or words[i - 1] != "--set")]
    return " ".join(kept), keys


@pytest.fixture(scope="module")
def dvc_stages() -> dict[str, dict]:
    stages = {}
    with Repo(str(REPO)) as repo:
        for stage in repo.index.stages:
            params = [key for dep in stage.deps if hasattr(dep, "params") for key in dep.params]
            deps = [dep.def_path for dep in stage.deps if not hasattr(dep, "params")]
            name = stage.addressing.split(":")[-1]  # cv/dvc.yaml:cv_report -> cv_report
            stages[name] = {"command": " ".join(shlex.split(stage.cmd)), "params": params,
                            "deps": deps, "outs": [out.def_path for out in stage.outs]}
    return stages


@pytest.fixture(scope="module")
def snakemake_jobs(tmp_path_factory) -> dict[str, dict]:
    root = tmp_path_factory.mktemp("wiring")
    for name in PROJECT_FILES:
        source = REPO / name
        copy = shutil.copytree if source.is_dir() else shutil.copy2
        copy(source, root / name)
    result = run_command(root, "snakemake", "-n", "-p", "--forceall", "-c1", "all", "cv")
    jobs = {}
    for block in (result.stdout + result.stderr).split("\nrule ")[1:]:
        rule = block.split(":")[0]
        if rule in ("all", "cv"):
            continue
        fields = dict(re.findall(r"^    (\w+): (.*)$", block, re.MULTILINE))
        command = re.search(r"^Shell command: (.*)$", block, re.MULTILINE).group(1)
        name = rule + (f"@{fields['wildcards'].split('=')[1]}" if "wildcards" in fields else "")
        jobs[name] = {"inputs": fields["input"].split(", "), "outputs": fields["output"].split(", "),
                      "command": command}
    return jobs


def test_both_tools_have_the_same_stages(dvc_stages, snakemake_jobs):
    per_model = {f"{stage}@{model}" for stage in ("train", "evaluate", "cv_train") for model in MODELS}
    single = {"download", "normalize", "split", "report", "cv_report"}
    assert set(dvc_stages) == set(snakemake_jobs) == single | per_model


@pytest.mark.parametrize("stage", ["download", "normalize", "split", "train@conv1", "evaluate@conv2", "report",
                                   "cv_train@conv3", "cv_report"])
def test_same_command_and_params(stage, dvc_stages, snakemake_jobs):
    command, pinned = without_pins(snakemake_jobs[stage]["command"])
    assert command == dvc_stages[stage]["command"]
    assert pinned == dvc_stages[stage]["params"]


@pytest.mark.parametrize("stage", ["download", "normalize", "split", "train@conv3", "evaluate@conv1", "report",
                                   "cv_train@conv2", "cv_report"])
def test_same_outputs_and_data_inputs(stage, dvc_stages, snakemake_jobs):
    dvc, smk = dvc_stages[stage], snakemake_jobs[stage]
    for outputs, others in ((dvc["outs"], smk["outputs"]), (smk["outputs"], dvc["outs"])):
        for path in outputs:
            assert any(related(path, other) for other in others), path
    data_deps = [path for path in dvc["deps"] if not path.endswith(".py")]
    data_inputs = [path for path in smk["inputs"] if not path.endswith(".py")]
    for deps, others in ((data_deps, data_inputs), (data_inputs, data_deps)):
        for path in deps:
            assert any(related(path, other) for other in others), path


@pytest.mark.parametrize("stage", ["download", "normalize", "split", "train@conv2", "evaluate@conv3", "report",
                                   "cv_train@conv1", "cv_report"])
def test_code_inputs_are_every_project_module_the_stage_runs(stage, dvc_stages, snakemake_jobs):
    module = dvc_stages[stage]["command"].split()[2]  # python -m stages.<stage>
    expected = set(code_files(module))
    assert {path for path in dvc_stages[stage]["deps"] if path.endswith(".py")} == expected
    assert {path for path in snakemake_jobs[stage]["inputs"] if path.endswith(".py")} == expected


def test_code_files_follow_imports_through_other_modules():
    evaluate = code_files("stages.evaluate")
    assert "stages/common/classes.py" in evaluate  # imported by evaluate itself
    assert "stages/common/errors.py" in evaluate  # imported only through other modules
    assert "stages/common/training.py" not in evaluate


def test_code_digest_changes_with_any_file_the_stage_runs_and_only_those(tmp_path, monkeypatch):
    import stages.common.code as code

    shutil.copytree(REPO / "stages", tmp_path / "stages")
    monkeypatch.setattr(code, "ROOT", tmp_path)
    before = {module: code.code_digest(module) for module in ("stages.train", "stages.evaluate")}
    with (tmp_path / "stages" / "common" / "training.py").open("a") as training:  # train's, not evaluate's
        training.write("\n# an edit\n")
    assert code.code_digest("stages.train") != before["stages.train"]
    assert code.code_digest("stages.evaluate") == before["stages.evaluate"]


def test_package_init_files_hold_no_code():
    # code_files leaves them out, which is right only while they are docstrings.
    for init in (REPO / "stages").rglob("__init__.py"):
        body = ast.parse(init.read_text()).body
        assert all(isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) for node in body), init


def test_every_plot_draws_every_model():
    plots = parse_yaml((REPO / "dvc.yaml").read_text())["plots"]
    assert len(plots) == 3
    for plot in plots:
        [definition] = plot.values()
        assert list(definition["y"]) == [f"metrics/curves/{model}.tsv" for model in MODELS]


def test_report_reads_every_models_training_folder(dvc_stages):
    folders = [path for path in dvc_stages["report"]["deps"] if path.startswith("metrics/train")]
    assert folders == [f"metrics/train/{model}" for model in MODELS]


def test_cv_report_reads_every_models_folds(dvc_stages):
    files = [path for path in dvc_stages["cv_report"]["deps"] if path.startswith("metrics/cv")]
    assert files == [f"metrics/cv/{model}.json" for model in MODELS]


def test_registry_holds_every_model():
    artifacts = parse_yaml((REPO / "dvc.yaml").read_text())["artifacts"]
    assert {name: spec["path"] for name, spec in artifacts.items()} == {model: f"models/{model}.keras"
                                                                         for model in MODELS}
