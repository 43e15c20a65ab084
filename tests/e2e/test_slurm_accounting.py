"""profiles/slurm with `--slurm-status-command sacct`, on a test cluster with accounting (slurmdbd)."""

import shutil
import subprocess

import pytest

from tests.e2e.conftest import make_project
from tests.e2e.slurm import run_id, session_cluster, snakemake

pytestmark = pytest.mark.e2e


def test_sacct_status_checks_work_with_accounting(pytestconfig, tmp_path, tiny_mirror):
    if shutil.which("slurmdbd") is None or shutil.which("mariadbd") is None:
        pytest.skip("accounting is not installed: scripts/slurm-test-cluster.sh install --accounting")
    session_cluster(pytestconfig, "--accounting")  # in place of the squeue-mode one, if that runs
    project = make_project(tmp_path / "project", tiny_mirror)
    # Without a database behind sacct, this run would wait forever (and hit the timeout).
    code, output = snakemake(project, "data/raw", "--slurm-status-command", "sacct", timeout=180)
    assert code == 0, output
    record = subprocess.run(["sacct", "-X", "-n", "-P", f"--name={run_id(output)}", "-o", "State"],
                            capture_output=True, text=True, timeout=30, check=True).stdout
    assert record.split() == ["COMPLETED"]
