"""`snakemake --profile profiles/slurm` on tiny data, on a real SLURM cluster.

The tests share the session's test cluster (tests/e2e/slurm.py): three nodes, each with its own
/tmp, in squeue mode: no accounting database, as profiles/slurm expects. What is particular to
several nodes (jobs spread, nodes that fail) is tested in test_slurm_nodes.py. The project has two
of the three models: every rule still runs, twice for train and evaluate, and a failing job still
has a sibling that completes, for two fewer jobs on the critical path.
"""

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import ENV, make_project, run
from tests.e2e.slurm import (
    MODELS,
    NODES,
    SCRIPT,
    run_id,
    session_cluster,
    slurm_jobs,
    slurm_project,
    snakemake,
    snakemake_command,
    snapshot,
)
from tests.tiny_data import files_spec, idx_bytes, tiny_arrays

pytestmark = pytest.mark.e2e
# For tests that check no resources: one CPU per job, so that the jobs of one step run side by
# side on a 2-CPU node rather than one after another, even where fewer nodes than jobs are free.
SIDE_BY_SIDE = ("--set-threads", "train=1", "evaluate=1", "sweep_train=1", "sweep_evaluate=1")
# The rule instances of one full run, as the plugin names them in the job's comment.
PIPELINE_JOBS = sorted(
    ["rule_download", "rule_normalize", "rule_split", "rule_report"]
    + [f"rule_{rule}_wildcards_{model}" for rule in ("train", "evaluate") for model in MODELS]
)


@pytest.fixture
def cluster(pytestconfig):
    """The session's cluster, squeue mode, as profiles/slurm expects."""
    return session_cluster(pytestconfig, *NODES)


@pytest.fixture(scope="module")
def slurm_run(pytestconfig, tmp_path_factory, tiny_mirror):
    """The whole tiny pipeline through SLURM: (project, Snakemake's output)."""
    session_cluster(pytestconfig, *NODES)
    root = slurm_project(tmp_path_factory.mktemp("slurm_run") / "project", tiny_mirror)
    code, output = snakemake(root)
    assert code == 0, output
    return root, output


def test_every_rule_runs_as_one_slurm_job_with_its_resources(slurm_run, cluster):
    _, output = slurm_run
    jobs = slurm_jobs(run_id(output))
    assert sorted(jobs) == PIPELINE_JOBS
    # What Snakemake planned for each job (its printed `threads:` and `resources:`) against
    # what SLURM granted to the job it was submitted as.
    slurm_ids = dict(re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", output))
    for block in re.split(r"\n(?=\[.*\]\n(?:local)?rule )", output):
        if not (planned := re.search(r"^rule (\w+):\n(.*?)^Shell command", block, re.MULTILINE | re.DOTALL)):
            continue
        details = planned.group(2)
        job = next(j for j in jobs.values() if j["JobID"] == slurm_ids[re.search(r"jobid: (\d+)", details)[1]])
        threads = re.search(r"threads: (\d+)", details)
        resources = dict(re.findall(r"(\w+)=(\w+)", re.search(r"resources: (.*)", details)[1]))
        assert job["State"] == "COMPLETED", job
        assert job["NumCPUs"] == (threads[1] if threads else "1"), (block, job)
        assert job["MinMemory"] == f"{resources['mem_mb']}M", (block, job)
        assert job["TimeLimit"] == slurm_minutes(int(resources["runtime"])), (block, job)
        assert job["tres-per-job"] == "N/A", f"asked for a GPU by default: {job}"


def slurm_minutes(minutes: int) -> str:
    """SLURM's way of printing a time limit: 15:00, 1:00:00."""
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02}:00" if hours else f"{minutes}:00"


def test_metrics_are_byte_identical_to_a_local_run(slurm_run, tmp_path, tiny_mirror):
    root, _ = slurm_run
    local = slurm_project(tmp_path / "local", tiny_mirror)
    metrics = [f"metrics/test/{model}.json" for model in MODELS]
    run(local, "timeout", "600", "snakemake", "-c2", *metrics)  # what they need, not the report
    for path in metrics:
        assert (root / path).read_bytes() == (local / path).read_bytes(), path


def test_failed_job_is_reported_and_the_rerun_submits_only_what_is_left(slurm_run, cluster, tmp_path):
    project = snapshot(slurm_run[0], tmp_path / "project")
    # As if the pipeline had stopped after training: evaluate and report still to run.
    for generated in ("test", "details", "predictions", "figures", "results.md"):
        path = project / "metrics" / generated
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    model = project / "models" / "conv2.keras"
    good = shutil.copy2(model, tmp_path / "conv2.keras")
    model.write_bytes(b"not a model")  # bad input for one of the evaluate jobs

    # --retries 0: the profile's retry would only fail the same way, and take as long again.
    code, output = snakemake(project, "--retries", "0", *SIDE_BY_SIDE)
    assert code != 0
    assert "Error in rule evaluate:" in output
    assert re.search(r"SLURM-job '\d+' failed, SLURM status is: 'FAILED'", output)
    failed_id = re.search(r"external_jobid: (\d+)", output)[1]
    assert re.search(rf"log: logs/evaluate/conv2.log, \S+/rule_evaluate/conv2/{failed_id}.log", output), output
    finished = slurm_jobs(run_id(output))
    assert finished["rule_evaluate_wildcards_conv1"]["State"] == "COMPLETED"  # its sibling ran on

    shutil.copy2(good, model)  # the same bytes and timestamp as before: the cause is gone
    code, output = snakemake(project, *SIDE_BY_SIDE)
    assert code == 0, output
    assert sorted(slurm_jobs(run_id(output))) == ["rule_evaluate_wildcards_conv2", "rule_report"]


def running_job_in(folder) -> str:
    """The ID of the one running SLURM job whose working directory is `folder`."""
    listed = subprocess.run(["squeue", "--noheader", "--states=RUNNING", "--format=%i|%Z"],
                            capture_output=True, text=True, timeout=30, check=True).stdout
    jobs = [line.split("|")[0] for line in listed.splitlines() if line.split("|")[1] == str(folder)]
    assert len(jobs) == 1, listed
    return jobs[0]


def test_job_over_its_time_limit_is_reported(cluster, tmp_path):
    # A mirror that takes the download's connection and never answers.
    with socket.create_server(("127.0.0.1", 0)) as mirror:
        url = f"http://127.0.0.1:{mirror.getsockname()[1]}/fmnist/"
        project = make_project(tmp_path / "project", (url, files_spec(idx_bytes(tiny_arrays(n_train=20, n_test=10)))))
        params = yaml.safe_load((project / "params.yaml").read_text())
        params["data"]["timeout_s"] = 600
        (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        log = tmp_path / "snakemake.log"
        command = snakemake_command("data/raw", "--retries", "0")
        with log.open("w") as out, subprocess.Popen(command, cwd=project, env=ENV, stdout=out, stderr=out) as smk:
            try:
                mirror.settimeout(120)
                try:
                    connection, _ = mirror.accept()  # the job runs, and waits for an answer
                except TimeoutError:
                    pytest.fail(f"the download job did not connect within 120 s:\n{log.read_text()}")
                with connection:
                    # SLURM's smallest limit is a minute, and slurmctld checks limits every 30 s (a
                    # constant in its source): a job asking for a minute is killed 60-90 s after it
                    # starts. Instead, lower the running job's limit to zero, as an administrator can:
                    # the next check, within 30 s, finds it over its limit and ends it as at the end
                    # of any limit ("Time limit exhausted", state TIMEOUT, reason TimeLimit). Snakemake
                    # sees that at its next status check and exits after the plugin's next wait:
                    # about a minute in all, rather than two and a half.
                    job = running_job_in(project)
                    subprocess.run(["scontrol", "update", f"JobId={job}", "TimeLimit=0"], check=True, timeout=30)
                    try:
                        smk.wait(timeout=180)
                    except subprocess.TimeoutExpired:
                        pytest.fail(f"Snakemake still ran 180 s after the job's limit was lowered:\n{log.read_text()}")
            finally:
                if smk.poll() is None:
                    smk.kill()
    output = log.read_text()
    assert smk.returncode != 0, output
    assert "Error in rule download:" in output
    failed_id = re.search(r"external_jobid: (\d+)", output)[1]
    assert failed_id == job
    assert f"SLURM-job '{failed_id}' failed, SLURM status is: 'TIMEOUT'" in output
    assert re.search(rf"log: logs/download.log, \S+/rule_download/{failed_id}.log", output), output


def test_unreachable_controller_fails_with_a_clear_error(cluster, tmp_path, tiny_mirror):
    # The cluster's own config, munge included, but a port nothing listens on. MessageTimeout=1:
    # each SLURM command gives up after one refused connection, not after 10 (one a second).
    config = (cluster / "slurm.conf").read_text() + "SlurmctldPort=1\nMessageTimeout=1\n"
    (tmp_path / "slurm.conf").write_text(config)
    (tmp_path / "gres.conf").write_text((cluster / "gres.conf").read_text())
    project = make_project(tmp_path / "project", tiny_mirror)
    code, output = snakemake(project, "--retries", "0", env={**ENV, "SLURM_CONF": str(tmp_path / "slurm.conf")},
                             timeout=180)
    assert code != 0
    assert "Unable to contact slurm controller" in output
    assert not (project / "data" / "raw").exists()


def test_gpu_request_reaches_sbatch(slurm_run, cluster, tmp_path):
    project = snapshot(slurm_run[0], tmp_path / "project")
    code, output = snakemake(project, "models/conv1.keras", "--forcerun", "train", "--set-resources", "train:gpu=1")
    assert code == 0, output
    jobs = slurm_jobs(run_id(output))
    assert sorted(jobs) == ["rule_train_wildcards_conv1"]
    # Scheduled and run: the node's fake GPUs are real enough for SLURM to hand one out.
    assert jobs["rule_train_wildcards_conv1"]["State"] == "COMPLETED"
    assert jobs["rule_train_wildcards_conv1"]["tres-per-job"] == "gres:gpu:1"


def test_start_refuses_a_config_it_did_not_create(cluster, tmp_path):
    # A second cluster would have to replace the running one's /etc/slurm/slurm.conf.
    env = {**ENV, "SLURM_TEST_CLUSTER_DIR": str(tmp_path / "other")}
    result = subprocess.run(["bash", SCRIPT, "start"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    # It names the cluster that holds the config, and how to stop it (one left by a killed run, too).
    assert f"/etc/slurm/slurm.conf is another test cluster's ({cluster}): stop it first with " \
           f"SLURM_TEST_CLUSTER_DIR={cluster} " in result.stderr
    assert os.readlink("/etc/slurm/slurm.conf") == str(cluster / "slurm.conf")
    assert not (tmp_path / "other").exists()
    stopped = subprocess.run(["bash", SCRIPT, "stop"], env=env, capture_output=True, text=True, timeout=60)
    assert stopped.returncode == 0
    assert os.readlink("/etc/slurm/slurm.conf") == str(cluster / "slurm.conf")
    assert subprocess.run(["bash", SCRIPT, "status"], env={**ENV, "SLURM_TEST_CLUSTER_DIR": str(cluster)},
                          capture_output=True, timeout=60).returncode == 0


def test_a_checkout_under_tmp_is_shared_with_the_nodes(monkeypatch, tmp_path):
    # Each node's /tmp is its own: a checkout there, unshared, failed every SLURM test, its jobs
    # unable to run tests/e2e/snakemake_test_cluster.py (a clone in /tmp passes now: checked by hand).
    from tests.e2e import slurm

    checkout, elsewhere = tmp_path / "checkout", Path("/opt/checkout")
    monkeypatch.setattr(slurm, "REPO", checkout)
    monkeypatch.setattr(sys, "prefix", str(checkout / ".venv"))
    assert slurm.shared_folders(tmp_path / "basetemp") == [(tmp_path / "basetemp").resolve(), checkout.resolve()]
    monkeypatch.setattr(slurm, "REPO", elsewhere)
    assert slurm.shared_folders(tmp_path / "basetemp") == [(tmp_path / "basetemp").resolve(),
                                                          (checkout / ".venv").resolve()]
