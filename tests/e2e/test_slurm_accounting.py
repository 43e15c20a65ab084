"""profiles/slurm with `--slurm-status-command sacct`, on a test cluster with accounting (slurmdbd)."""

import shutil
import subprocess

import pytest

from tests.e2e.conftest import make_project
from tests.e2e.test_slurm import run_id, snakemake, started_cluster

pytestmark = pytest.mark.e2e


def test_sacct_status_checks_work_with_accounting(tmp_path, tiny_mirror):
    if shutil.which("slurmdbd") is None or shutil.which("mariadbd") is None:
        pytest.skip("accounting is not installed: scripts/slurm-test-cluster.sh install --accounting")
    project = make_project(tmp_path / "project", tiny_mirror)
    with started_cluster("--accounting"):
        # Without a database behind sacct, this run would wait forever (and hit the timeout).
        code, output = snakemake(project, "data/raw", "--slurm-status-command", "sacct", timeout=180)
        assert code == 0, output
        record = subprocess.run(["sacct", "-X", "-n", "-P", f"--name={run_id(output)}", "-o", "State"],
                                capture_output=True, text=True, timeout=30, check=True).stdout
    assert record.split() == ["COMPLETED"]
