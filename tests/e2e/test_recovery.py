"""What a failed stage leaves behind under each tool, and the way back to the last results (docs/failures.md).

A stage run by hand keeps earlier outputs (tests/test_failures.py). Under `dvc exp run` and
`snakemake -R`, the tool deletes a stage's outputs before running it, so a failure leaves
them deleted; DVC's cache brings them back. `dvc exp run --temp` runs outside the workspace.
"""

import hashlib
from pathlib import Path

import pytest

from tests.e2e.conftest import copy_project, run

pytestmark = pytest.mark.e2e
DIVERGES = ["optimizer=sgd", "lr=1e20"]  # training fails at its first step


def fingerprint(root: Path) -> dict[str, str]:
    """Every output and params file, by content."""
    paths = [root / "params.yaml", *root.glob("models/*"), *root.glob("metrics/**/*")]
    return {str(path.relative_to(root)): hashlib.md5(path.read_bytes()).hexdigest()
            for path in paths if path.is_file()}


@pytest.fixture(scope="module")
def committed(reproduced) -> tuple[Path, dict[str, str]]:
    """A tiny project after `dvc repro`, its results committed, and their fingerprint."""
    return reproduced[0], fingerprint(reproduced[0])


def set_flags(values: list[str]) -> list[str]:
    return [word for value in values for word in ("-S", value)]


def test_failed_dvc_exp_run_deletes_outputs_and_the_readme_brings_them_back(committed, tmp_path):
    source, before = committed
    root = copy_project(source, tmp_path / "project")
    result = run(root, "dvc", "exp", "run", *set_flags(DIVERGES), check=False)
    assert result.returncode != 0 and "error: training diverged" in result.stderr
    assert not (root / "models" / "conv1.keras").exists()  # DVC removed it before the stage ran
    assert "params.yaml" in run(root, "git", "status", "--porcelain").stdout
    run(root, "git", "checkout", "params.yaml")  # the README's way back
    run(root, "dvc", "checkout")
    assert fingerprint(root) == before
    assert "up to date" in run(root, "dvc", "status").stdout


def test_failed_dvc_exp_run_temp_leaves_the_workspace_as_it_was(committed, tmp_path):
    source, before = committed
    root = copy_project(source, tmp_path / "project")
    result = run(root, "dvc", "exp", "run", "--temp", *set_flags(DIVERGES), check=False)
    assert result.returncode != 0 and "failed to reproduce 'train@conv1'" in result.stderr
    assert fingerprint(root) == before
    assert run(root, "git", "status", "--porcelain").stdout == ""


def test_failed_snakemake_job_loses_its_outputs_and_dvc_brings_them_back(committed, tmp_path):
    source, before = committed
    root = copy_project(source, tmp_path / "project")
    config = ["--config", *DIVERGES]
    result = run(root, "snakemake", "-c1", "models/conv1.keras", "-R", "train", *config, check=False)
    assert result.returncode != 0
    assert "error: training diverged" in (root / "logs" / "train" / "conv1.log").read_text()
    assert not (root / "models" / "conv1.keras").exists()  # Snakemake removes a failed job's outputs
    run(root, "git", "checkout", "metrics")  # the README's way back: git's files, then DVC's
    run(root, "dvc", "checkout", "--force")
    assert fingerprint(root) == before
