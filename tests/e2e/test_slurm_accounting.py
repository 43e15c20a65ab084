"""profiles/slurm with `--slurm-status-command sacct`, on the three-node test cluster with accounting (slurmdbd)."""

import shutil
import subprocess

import pytest

from tests.e2e.conftest import make_project, run
from tests.e2e.slurm import (
    NODES,
    job_record,
    run_id,
    session_cluster,
    slurm_project,
    snakemake,
    snakemake_command,
    snakemake_failing_a_node,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def cluster(pytestconfig):
    if shutil.which("slurmdbd") is None or shutil.which("mariadbd") is None:
        pytest.skip("accounting is not installed: scripts/slurm-test-cluster.sh install --accounting")
    return session_cluster(pytestconfig, *NODES, "--accounting")  # in place of the squeue-mode one, if that runs


def sacct(name: str, *fields: str) -> list[list[str]]:
    """The accounting record of the jobs named `name`, one per job, in order of submission."""
    record = subprocess.run(["sacct", "-X", "-n", "-P", f"--name={name}", "-o", ",".join(fields)],
                            capture_output=True, text=True, timeout=30, check=True).stdout
    return [line.split("|") for line in record.splitlines()]


def test_sacct_status_checks_work_with_accounting(cluster, tmp_path, tiny_mirror):
    project = make_project(tmp_path / "project", tiny_mirror)
    # Without a database behind sacct, this run would wait forever (and hit the timeout).
    code, output = snakemake(project, "data/raw", "--slurm-status-command", "sacct", timeout=180)
    assert code == 0, output
    assert sacct(run_id(output), "State") == [["COMPLETED"]]


def test_a_failed_node_is_excluded_from_the_retry(cluster, tmp_path, tiny_mirror):
    # The plugin asks sacct for a NODE_FAIL job's node and adds --exclude=NODE to every later
    # submission (without accounting it cannot, and only SLURM keeping a DOWN node idle helps).
    # Without requeue, so that the plugin sees NODE_FAIL; the profile's one retry resubmits.
    root = slurm_project(tmp_path / "project", tiny_mirror, models=["conv1"])
    run(root, "timeout", "300", "snakemake", "-c2", "data/processed")
    command = snakemake_command("models/conv1.keras", "--slurm-status-command", "sacct", "--slurm-no-requeue")
    failure = snakemake_failing_a_node(cluster, root, tmp_path / "snakemake.log", command, "conv1")
    job, node, output = failure.job, failure.node, failure.output
    assert failure.returncode == 0, output
    assert f"SLURM-job '{job}' failed due to a node failure, SLURM status is: 'NODE_FAIL'" in output
    assert f"excluded from subsequent submissions: {node}" in output
    (first, failed_on, _), (retry, ran_on, state) = sacct(run_id(output), "JobID", "NodeList", "State")
    assert (first, failed_on) == (job, node)
    assert state == "COMPLETED" and ran_on != node
    assert job_record(retry)["ExcNodeList"] == node
