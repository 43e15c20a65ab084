"""What the SLURM e2e tests share: one test cluster per pytest session, and Snakemake through profiles/slurm.

The cluster (scripts/slurm-test-cluster.sh) starts when a test first asks for it and stops when
the session ends, whatever happened before (a failed test, Ctrl-C): `session_cluster` registers
the stop (tests/conftest.py, `stop_when_the_session_ends`). Its options pick the kind: every test
runs on three nodes, each with its own /tmp (NODES), as a real cluster would be, with or without
accounting. A test that asks for the other kind stops the running cluster and starts that one:
there can be only one, as both link /etc/slurm/slurm.conf. pytest-randomly shuffles whole
modules, each module asks for one kind, so a session starts at most two clusters. Jobs of earlier
tests stay listed (MinJobAge=3600): tests find their own jobs by their run's ID, never by listing
everything.

Every Snakemake call has a timeout: a lost job or an unreachable controller must fail a test,
not hang it.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import stop_when_the_session_ends
from tests.e2e.conftest import ENV, REPO, make_project, only_models

SCRIPT = REPO / "scripts" / "slurm-test-cluster.sh"
# The cluster the tests run on: three nodes (node1-3), each with its own /tmp.
NODES = ("--nodes", "3", "--private-tmp")
# Test-only polling: the plugin's first status check 1 s after a submission, not the profile's 20 s,
# and, through snakemake_test_cluster.py, every later one at most 1 s after the last, rather than
# 10 s longer each time (11, 21, 31 s ...; a step fixed in snakemake-executor-plugin-slurm 2.8.0).
# A job is then seen finished within ~1 s, where the plugin alone would see one that takes 5 s at
# ~12 s and one that takes 15 s at ~33 s (benchmarks/slurm_overhead.py measures both).
FAST_POLLING = ("--slurm-init-seconds-before-status-checks", "1")
# Snakemake as the tests run it: that polling cap, and every Snakemake, the jobs' included, exits
# when its work is done rather than up to 1 s later (snakemake_test_cluster.py says why).
SNAKEMAKE = (sys.executable, str(REPO / "tests" / "e2e" / "snakemake_test_cluster.py"))


# The models of a test project: two of the three, for fewer jobs; a failing job still has a sibling.
MODELS = ["conv1", "conv2"]


def slurm_project(root: Path, tiny_mirror, models: list[str] = MODELS) -> Path:
    """make_project with only `models`."""
    return make_project(root, tiny_mirror, models=only_models(*models))


def snakemake_command(*args: str) -> list[str]:
    """`snakemake --profile profiles/slurm ...`, polling as the tests do."""
    return [*SNAKEMAKE, "--profile", "profiles/slurm", *FAST_POLLING, *args]


def snakemake(root: Path, *args: str, timeout: int = 300, env: dict | None = None) -> tuple[int, str]:
    """Run `snakemake --profile profiles/slurm ...` in `root`; (exit code, stdout + stderr)."""
    command = snakemake_command(*args)
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


def job_nodes(name: str) -> dict[str, str]:
    """The node each job named `name` ran on (its last one, if requeued): {job ID: node}."""
    listed = subprocess.run(["squeue", "--noheader", "--states=all", f"--name={name}", "--format=%i %N"],
                            capture_output=True, text=True, timeout=30, check=True).stdout
    return dict(line.split() for line in listed.splitlines())


def running_training(root: Path, model: str) -> tuple[str, str] | None:
    """(SLURM job ID, node) of the training of `model` for the project in `root`, once its
    `python -m stages.train` process runs; None before. Read from that process's environment."""
    for process in Path("/proc").iterdir():
        try:
            words = (process / "cmdline").read_bytes().split(b"\0")
            if b"stages.train" not in words or model.encode() not in words or os.readlink(process / "cwd") != str(root):
                continue
            environ = (process / "environ").read_bytes().split(b"\0")
        except OSError:  # not a process, or gone
            continue
        variables = dict(item.decode().split("=", 1) for item in environ if b"=" in item)
        return variables["SLURM_JOB_ID"], variables["SLURMD_NODENAME"]
    return None


def job_record(job: str) -> dict[str, str]:
    """`scontrol show job`: the controller's whole record of a job, finished ones included."""
    shown = subprocess.run(["scontrol", "--oneliner", "show", "job", job],
                           capture_output=True, text=True, timeout=30, check=True).stdout
    return dict(field.split("=", 1) for field in shown.split() if "=" in field)


def wait_until(what: str, condition, timeout: float, interval: float = 0.5):
    """Poll `condition` until it returns something true, and return that; fail after `timeout` s.
    For the controller's view of jobs and nodes, which nothing announces."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout} s")
        time.sleep(interval)
    return result


def cluster_command(cluster: Path, *args: str, timeout: int = 90) -> str:
    """scripts/slurm-test-cluster.sh ARGS on the running test cluster; its stderr."""
    done = subprocess.run(["bash", SCRIPT, *args], env={**ENV, "SLURM_TEST_CLUSTER_DIR": str(cluster)},
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"slurm-test-cluster.sh {' '.join(args)} failed:\n{done.stderr}"
    return done.stderr


def snapshot(source: Path, target: Path) -> Path:
    """A copy of a finished project, timestamps and Snakemake's records included."""
    shutil.copytree(source, target, symlinks=True)  # copy2: mtimes kept, so nothing looks changed
    return target


@dataclass
class _Cluster:
    options: tuple[str, ...]
    env: dict
    failure: str | None = None  # why it did not start: every later test that asks fails with it


_running: list[_Cluster] = []  # at most one
_stop_registered = False


def _stop() -> None:
    while _running:
        cluster = _running.pop()
        stopped = subprocess.run(["bash", SCRIPT, "stop"], env=cluster.env, capture_output=True, text=True,
                                 timeout=120)
        if stopped.returncode != 0:  # at the very end of the session: nothing but stderr to tell
            print(f"the SLURM test cluster did not stop:\n{stopped.stderr}", file=sys.stderr)


def session_cluster(config: pytest.Config, *options: str) -> Path:
    """The folder of the running test cluster started with `options` (e.g. NODES, `--accounting`),
    started now if need be, in place of one of the other kind; it is stopped when pytest ends.
    With `--private-tmp`, the nodes share what a real cluster keeps on shared storage: pytest's
    temporary folder (the projects), and this virtualenv and checkout where they are under /tmp."""
    global _stop_registered
    if _running and _running[0].options == options:
        if _running[0].failure:
            pytest.fail(_running[0].failure)
        return Path(_running[0].env["SLURM_TEST_CLUSTER_DIR"])
    if shutil.which("slurmctld") is None:
        pytest.skip("SLURM is not installed: scripts/slurm-test-cluster.sh install")
    if not _stop_registered:
        stop_when_the_session_ends(config, _stop)
        _stop_registered = True
    _stop()
    # Its own folder, so a cluster someone started by hand makes `start` refuse, not share;
    # CI names it, to `stop` it even if pytest is killed. Not under pytest's tmp_path: munged
    # refuses a socket below a folder others cannot enter.
    folder = os.environ.get("SLURM_TEST_CLUSTER_DIR") or f"{tempfile.gettempdir()}/slurm-test-cluster-{os.getpid()}"
    cluster = _Cluster(options, {**ENV, "SLURM_TEST_CLUSTER_DIR": folder})
    _running.append(cluster)  # from here on, `stop` is due whatever happens
    shared = shared_folders(config._tmp_path_factory.getbasetemp()) if "--private-tmp" in options else ()
    shares = [word for path in shared for word in ("--share", str(path))]
    started = subprocess.run(["bash", SCRIPT, "start", *options, *shares], env=cluster.env, capture_output=True,
                             text=True, timeout=120)
    if started.returncode != 0:
        cluster.failure = f"cluster did not start:\n{started.stdout}\n{started.stderr}"
        pytest.fail(cluster.failure)
    return Path(folder)


def shared_folders(basetemp: Path) -> list[Path]:
    """What a node must see of this machine's /tmp: pytest's temporary folder (the projects), and,
    where they are under /tmp, this virtualenv and this checkout, whose tests/e2e/snakemake_test_cluster.py
    every job runs. A checkout under /tmp, unshared, failed every SLURM test. A folder inside another
    shared one is left out: it is seen already."""
    tmp = Path(tempfile.gettempdir()).resolve()
    candidates = [basetemp.resolve(), *(path.resolve() for path in (Path(sys.prefix), REPO)
                                         if tmp in path.resolve().parents)]
    return [path for path in dict.fromkeys(candidates)
            if not any(other in path.parents for other in candidates if other != path)]


@dataclass
class NodeFailure:
    returncode: int
    output: str
    job: str  # the SLURM job that was training when its node failed
    node: str


def snakemake_failing_a_node(cluster: Path, root: Path, log: Path, command: list[str], model: str,
                             then=lambda job: None, timeout: int = 240) -> NodeFailure:
    """Run `command` (a Snakemake through the profile) in `root`, writing to `log`; once `model`
    trains, fail its node, call `then(job)`, and wait for Snakemake to end. The node is restored
    whatever happens."""
    node = None
    with log.open("w") as out, subprocess.Popen(command, cwd=root, env=ENV, stdout=out, stderr=out) as smk:
        try:
            def started():
                if smk.poll() is not None:
                    pytest.fail(f"Snakemake ended before training {model}:\n{log.read_text()}")
                return running_training(root, model)
            job, node = wait_until(f"training {model} starts", started, timeout=180, interval=0.2)
            cluster_command(cluster, "fail-node", node)
            then(job)
            try:
                smk.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pytest.fail(f"Snakemake still ran {timeout} s after the node failed:\n{log.read_text()}")
        finally:
            if smk.poll() is None:
                smk.kill()
            if node:
                cluster_command(cluster, "restore-node", node)
    return NodeFailure(smk.returncode, log.read_text(), job, node)
