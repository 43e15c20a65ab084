"""profiles/slurm on three nodes, each with its own /tmp: jobs spread, and nodes that die mid-job.

The session's test cluster (tests/e2e/slurm.py, NODES): node1-3 share the projects and the
virtualenv, as a real cluster's shared storage would, and nothing else; a job that relied on a file
another node wrote to local disk would fail here. Each node takes one training job at a time (6 GB
asked, 7000 MB per node). A node is failed with `slurm-test-cluster.sh fail-node`: its slurmd and
every process of its jobs get SIGKILL, and the controller marks it DOWN ~20-30 s later
(SlurmdTimeout=10). The projects start with their data stages already run locally, so that the
SLURM runs are the training and what follows.
"""

import subprocess
import time

import pytest

from tests.e2e.conftest import ENV, run
from tests.e2e.slurm import (
    MODELS,
    NODES,
    job_nodes,
    job_record,
    run_id,
    session_cluster,
    slurm_jobs,
    slurm_project,
    snakemake,
    snakemake_command,
    snakemake_failing_a_node,
    snapshot,
    wait_until,
)

pytestmark = pytest.mark.e2e
MODEL_FILES = [f"models/{model}.keras" for model in MODELS]


@pytest.fixture
def cluster(pytestconfig):
    return session_cluster(pytestconfig, *NODES)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, tiny_mirror):
    """A tiny project with its data stages run locally (`snakemake -c2`)."""
    root = slurm_project(tmp_path_factory.mktemp("nodes") / "project", tiny_mirror)
    run(root, "timeout", "300", "snakemake", "-c2", "data/processed")
    return root


def test_a_sweeps_jobs_spread_over_the_nodes_and_match_a_local_run(prepared, cluster, tmp_path):
    points = ("lr~0.001_model~conv1", "lr~0.01_model~conv1")
    projects = {way: snapshot(prepared, tmp_path / way) for way in ("slurm", "local")}
    for root in projects.values():
        (root / "sweeps").mkdir()
        (root / "sweeps" / "two.tsv").write_text("lr\tmodel\n0.001\tconv1\n0.01\tconv1\n")
    # The local run alongside: the SLURM run spends most of its time waiting.
    with subprocess.Popen(["timeout", "600", "snakemake", "-c2", "sweeps"], cwd=projects["local"], env=ENV,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as local:
        code, output = snakemake(projects["slurm"], "sweeps", timeout=600)
        local_output = local.communicate(timeout=600)[0]
    assert code == 0, output
    assert local.returncode == 0, local_output

    jobs = slurm_jobs(run_id(output))
    trains = [f"rule_sweep_train_wildcards_two_{point}_conv1" for point in points]
    assert sorted(jobs) == sorted(
        trains + [f"rule_sweep_evaluate_wildcards_two_{point}_conv1" for point in points]
        + ["rule_sweep_report_wildcards_two"]), sorted(jobs)
    assert all(job["State"] == "COMPLETED" for job in jobs.values()), jobs
    nodes = job_nodes(run_id(output))
    # The two training jobs, submitted together, cannot share a node (6 GB each, 7000 MB a node).
    assert len({nodes[jobs[train]["JobID"]] for train in trains}) == 2, nodes

    # Every result, models included, as a local run writes it; only the timings differ.
    sweep = {way: root / "sweeps" / "two" for way, root in projects.items()}
    files = sorted(path.relative_to(sweep["local"]) for path in sweep["local"].rglob("*") if path.is_file())
    assert sorted(p.relative_to(sweep["slurm"]) for p in sweep["slurm"].rglob("*") if p.is_file()) == files
    for path in files:
        if "timing" not in path.parts:
            assert (sweep["slurm"] / path).read_bytes() == (sweep["local"] / path).read_bytes(), path
    assert len((sweep["slurm"] / "results.md").read_text().splitlines()) == 2 + len(points)


def test_a_node_failing_mid_training_requeues_the_job_and_the_run_succeeds(prepared, cluster, tmp_path):
    root = snapshot(prepared, tmp_path / "project")
    requeued = []

    def start_the_requeued_job_now(job):
        failed = time.monotonic()
        # SLURM finds the node dead and puts the job back in the queue (JobRequeue=1, its
        # default), held for 121 s: let it start now, as an administrator could.
        wait_until("the job is requeued", lambda: job_record(job).get("Restarts") == "1", timeout=90)
        requeued.append(time.monotonic() - failed)
        subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True, timeout=30)

    command = snakemake_command("models/conv1.keras")
    failure = snakemake_failing_a_node(cluster, root, tmp_path / "snakemake.log", command, "conv1",
                                       then=start_the_requeued_job_now)
    job, node, output = failure.job, failure.node, failure.output
    assert failure.returncode == 0, output
    print(f"requeued {requeued[0]:.0f} s after the node failed")
    record = job_record(job)
    assert record["JobState"] == "COMPLETED", record
    assert record["Restarts"] == "1", record
    assert record["NodeList"] != node, record  # the node was DOWN: it ran elsewhere
    assert "NODE_FAIL" not in output  # Snakemake saw one job, running longer
    assert sorted(slurm_jobs(run_id(output))) == ["rule_train_wildcards_conv1"]
    assert (root / "models" / "conv1.keras").stat().st_size > 0


def test_without_requeue_the_run_fails_and_the_rerun_submits_only_whats_missing(prepared, cluster, tmp_path):
    root = snapshot(prepared, tmp_path / "project")
    # --retries 0: the profile's one retry would run the job again elsewhere and succeed.
    command = snakemake_command(*MODEL_FILES, "--slurm-no-requeue", "--retries", "0")
    failure = snakemake_failing_a_node(cluster, root, tmp_path / "snakemake.log", command, "conv1")
    job, output = failure.job, failure.output
    assert failure.returncode != 0, output
    assert f"SLURM-job '{job}' failed due to a node failure, SLURM status is: 'NODE_FAIL'" in output
    assert "Error in rule train:" in output
    first = slurm_jobs(run_id(output))
    assert first["rule_train_wildcards_conv1"]["State"] == "NODE_FAIL"
    assert first["rule_train_wildcards_conv2"]["State"] == "COMPLETED"  # on another node: ran to its end

    code, output = snakemake(root, *MODEL_FILES)
    assert code == 0, output
    assert sorted(slurm_jobs(run_id(output))) == ["rule_train_wildcards_conv1"]
