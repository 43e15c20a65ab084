"""`snakemake --profile profiles/slurm` on tiny data, on a real single-node SLURM cluster.

The module starts the cluster with scripts/slurm-test-cluster.sh (squeue mode: no accounting
database) and always stops it. Every Snakemake call has a timeout: a lost job or an
unreachable controller must fail a test, not hang it.
"""

import gzip
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from tests.conftest import MirrorServer, Reply
from tests.e2e.conftest import ENV, REPO, make_project, run
from tests.tiny_data import GZ_NAMES, files_spec, idx_bytes, tiny_arrays

pytestmark = pytest.mark.e2e
MODELS = ["conv1", "conv2", "conv3"]
SCRIPT = REPO / "scripts" / "slurm-test-cluster.sh"
# The plugin's first status check comes 1 s after submission, not the profile's 20 s.
FAST_POLLING = ("--slurm-init-seconds-before-status-checks", "1")
# The rule instances of one full run, as the plugin names them in the job's comment.
PIPELINE_JOBS = sorted(
    ["rule_download", "rule_normalize", "rule_split", "rule_report"]
    + [f"rule_{rule}_wildcards_{model}" for rule in ("train", "evaluate") for model in MODELS]
)


def snakemake(root: Path, *args: str, timeout: int = 300, env: dict | None = None) -> tuple[int, str]:
    """Run `snakemake --profile profiles/slurm ...` in `root`; (exit code, stdout + stderr)."""
    command = ["snakemake", "--profile", "profiles/slurm", *FAST_POLLING, *args]
    try:
        result = subprocess.run(command, cwd=root, env=env or ENV, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as hung:
        pytest.fail(f"{' '.join(command)} still running after {timeout} s:\n{hung.stdout}\n{hung.stderr}")
    return result.returncode, result.stdout + result.stderr


def run_id(output: str) -> str:
    """The plugin names every SLURM job of one Snakemake run after the run's ID."""
    return re.search(r"SLURM run ID: (\S+)", output).group(1)


def slurm_jobs(name: str) -> dict[str, dict[str, str]]:
    """The controller's record of the jobs named `name`, finished ones included: {comment: fields}."""
    fields = ["JobID", "Comment", "State", "NumCPUs", "MinMemory", "TimeLimit", "tres-per-job"]
    result = subprocess.run(
        ["squeue", "--noheader", "--states=all", f"--name={name}", "--Format=" + ",".join(f"{f}:|" for f in fields)],
        capture_output=True, text=True, timeout=30, check=True,
    )
    jobs = [dict(zip(fields, line.split("|"))) for line in result.stdout.splitlines()]
    by_comment = {job["Comment"]: job for job in jobs}
    assert len(by_comment) == len(jobs), f"a rule instance was submitted twice: {result.stdout}"
    return by_comment


def snapshot(source: Path, target: Path) -> Path:
    """A copy of a finished project, timestamps and Snakemake's records included."""
    shutil.copytree(source, target, symlinks=True)  # copy2: mtimes kept, so nothing looks changed
    return target


@contextmanager
def started_cluster(*options: str) -> Iterator[Path]:
    """A running test cluster (its folder), stopped on the way out whatever happened inside."""
    if shutil.which("slurmctld") is None:
        pytest.skip("SLURM is not installed: scripts/slurm-test-cluster.sh install")
    # Its own folder, so a cluster someone started by hand makes `start` refuse, not share;
    # CI names it, to `stop` it even if pytest is killed. Not under pytest's tmp_path: munged
    # refuses a socket below a folder others cannot enter.
    folder = os.environ.get("SLURM_TEST_CLUSTER_DIR") or f"{tempfile.gettempdir()}/slurm-test-cluster-{os.getpid()}"
    env = {**ENV, "SLURM_TEST_CLUSTER_DIR": folder}
    try:
        started = subprocess.run(["bash", SCRIPT, "start", *options], env=env, capture_output=True, text=True,
                                 timeout=120)
        assert started.returncode == 0, f"cluster did not start:\n{started.stdout}\n{started.stderr}"
        yield Path(folder)
    finally:
        subprocess.run(["bash", SCRIPT, "stop"], env=env, timeout=120)


@pytest.fixture(scope="module")
def cluster():
    """The cluster of this module: squeue mode, as profiles/slurm expects."""
    with started_cluster() as folder:
        yield folder


@pytest.fixture(scope="module")
def slurm_run(cluster, tmp_path_factory, tiny_mirror):
    """The whole tiny pipeline through SLURM: (project, Snakemake's output)."""
    root = make_project(tmp_path_factory.mktemp("slurm_run") / "project", tiny_mirror)
    code, output = snakemake(root)
    assert code == 0, output
    return root, output


def test_every_rule_runs_as_one_slurm_job_with_its_resources(slurm_run):
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
    local = make_project(tmp_path / "local", tiny_mirror)
    run(local, "timeout", "600", "snakemake", "-c2")
    for model in MODELS:
        path = f"metrics/test/{model}.json"
        assert (root / path).read_bytes() == (local / path).read_bytes(), path


def test_failed_job_is_reported_and_the_rerun_submits_only_what_is_left(slurm_run, tmp_path):
    project = snapshot(slurm_run[0], tmp_path / "project")
    # As if the pipeline had stopped after training: evaluate and report still to run.
    for generated in ("test", "details", "predictions", "figures", "results.md"):
        path = project / "metrics" / generated
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    model = project / "models" / "conv2.keras"
    good = shutil.copy2(model, tmp_path / "conv2.keras")
    model.write_bytes(b"not a model")  # bad input for one of the three evaluate jobs

    # --retries 0: the profile's retry would only fail the same way, and take as long again.
    code, output = snakemake(project, "--retries", "0")
    assert code != 0
    assert "Error in rule evaluate:" in output
    assert re.search(r"SLURM-job '\d+' failed, SLURM status is: 'FAILED'", output)
    failed_id = re.search(r"external_jobid: (\d+)", output)[1]
    assert re.search(rf"log: logs/evaluate/conv2.log, \S+/rule_evaluate/conv2/{failed_id}.log", output), output
    finished = slurm_jobs(run_id(output))
    assert finished["rule_evaluate_wildcards_conv1"]["State"] == "COMPLETED"
    assert finished["rule_evaluate_wildcards_conv3"]["State"] == "COMPLETED"

    shutil.copy2(good, model)  # the same bytes and timestamp as before: the cause is gone
    code, output = snakemake(project)
    assert code == 0, output
    assert sorted(slurm_jobs(run_id(output))) == ["rule_evaluate_wildcards_conv2", "rule_report"]


def test_job_over_its_time_limit_is_reported(cluster, tmp_path):
    # A mirror that never answers within the job's 1-minute limit (SLURM's smallest).
    server = MirrorServer()
    raw = idx_bytes(tiny_arrays(n_train=20, n_test=10))
    for role, data in raw.items():
        server.routes[f"/fmnist/{GZ_NAMES[role]}"] = Reply(body=gzip.compress(data), delay_s=600)
    try:
        project = make_project(tmp_path / "project", (f"{server.url}/fmnist/", files_spec(raw)))
        params = yaml.safe_load((project / "params.yaml").read_text())
        params["data"]["timeout_s"] = 600
        (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        # SLURM ends the job 60-90 s after it starts (it checks limits every 30 s, then waits
        # KillWait=5 s for it to go); the plugin's growing delays check at 64 s, then 105 s.
        code, output = snakemake(project, "data/raw", "--retries", "0", "--set-resources", "download:runtime=1")
    finally:
        server.close()
    assert code != 0
    assert "Error in rule download:" in output
    failed_id = re.search(r"external_jobid: (\d+)", output)[1]
    assert f"SLURM-job '{failed_id}' failed, SLURM status is: 'TIMEOUT'" in output
    assert re.search(rf"log: logs/download.log, \S+/rule_download/{failed_id}.log", output), output


def test_unreachable_controller_fails_with_a_clear_error(cluster, tmp_path, tiny_mirror):
    # The cluster's own config, munge included, but a port nothing listens on.
    config = (cluster / "slurm.conf").read_text() + "SlurmctldPort=1\n"
    (tmp_path / "slurm.conf").write_text(config)
    (tmp_path / "gres.conf").write_text((cluster / "gres.conf").read_text())
    project = make_project(tmp_path / "project", tiny_mirror)
    code, output = snakemake(project, "--retries", "0", env={**ENV, "SLURM_CONF": str(tmp_path / "slurm.conf")},
                             timeout=180)
    assert code != 0
    assert "Unable to contact slurm controller" in output
    assert not (project / "data" / "raw").exists()


def test_gpu_request_reaches_sbatch(slurm_run, tmp_path):
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
    assert "/etc/slurm/slurm.conf exists and is not ours" in result.stderr
    assert os.readlink("/etc/slurm/slurm.conf") == str(cluster / "slurm.conf")
    assert not (tmp_path / "other").exists()
    stopped = subprocess.run(["bash", SCRIPT, "stop"], env=env, capture_output=True, text=True, timeout=60)
    assert stopped.returncode == 0
    assert os.readlink("/etc/slurm/slurm.conf") == str(cluster / "slurm.conf")
    assert subprocess.run(["bash", SCRIPT, "status"], env={**ENV, "SLURM_TEST_CLUSTER_DIR": str(cluster)},
                          capture_output=True, timeout=60).returncode == 0


def test_a_sweeps_points_run_as_slurm_jobs(slurm_run, tmp_path):
    root = snapshot(slurm_run[0], tmp_path / "project")
    (root / "sweeps").mkdir()
    (root / "sweeps" / "two.tsv").write_text("lr\n0.001\n0.01\n")
    code, output = snakemake(root, "sweeps", timeout=600)
    assert code == 0, output
    jobs = slurm_jobs(run_id(output))
    points = ("lr~0.001", "lr~0.01")
    assert sorted(jobs) == sorted(
        [f"rule_sweep_{rule}_wildcards_two_{point}_{model}" for rule in ("train", "evaluate")
         for point in points for model in MODELS] + ["rule_sweep_report_wildcards_two"]), sorted(jobs)
    assert all(job["State"] == "COMPLETED" for job in jobs.values()), jobs
    assert len((root / "sweeps" / "two" / "results.md").read_text().splitlines()) == 2 + len(points)
