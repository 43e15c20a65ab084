"""What the SLURM e2e tests share: one test cluster per pytest session, and Snakemake through profiles/slurm.

The cluster (scripts/slurm-test-cluster.sh) starts when a test first asks for it and stops when
pytest ends, whatever happened before (a failed test, Ctrl-C): `session_cluster` registers the
stop with pytest's config. A test that asks for the other kind (with or without accounting)
stops the running cluster and starts that one: there can be only one, as both link
/etc/slurm/slurm.conf. pytest-randomly shuffles whole modules, each module asks for one kind, so a
session starts at most two clusters. Jobs of earlier tests stay listed (MinJobAge=3600): tests
find their own jobs by their run's ID, never by listing everything.

Every Snakemake call has a timeout: a lost job or an unreachable controller must fail a test,
not hang it.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import ENV, REPO

SCRIPT = REPO / "scripts" / "slurm-test-cluster.sh"
# Test-only polling: the plugin's first status check 1 s after a submission, not the profile's 20 s.
# Its later checks back off by 10 s each (11, 21, 31 s ...) until a job finishes; that step is
# hard-coded in snakemake-executor-plugin-slurm 2.8.0 (no setting shortens it), so a job that
# takes under ~11 s costs ~12 s, one that takes 12-32 s costs ~33 s.
FAST_POLLING = ("--slurm-init-seconds-before-status-checks", "1")


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
    """The folder of the running test cluster started with `options` (e.g. `--accounting`), started
    now if need be, in place of one of the other kind; it is stopped when pytest ends."""
    global _stop_registered
    if _running and _running[0].options == options:
        if _running[0].failure:
            pytest.fail(_running[0].failure)
        return Path(_running[0].env["SLURM_TEST_CLUSTER_DIR"])
    if shutil.which("slurmctld") is None:
        pytest.skip("SLURM is not installed: scripts/slurm-test-cluster.sh install")
    if not _stop_registered:
        config.add_cleanup(_stop)
        _stop_registered = True
    _stop()
    # Its own folder, so a cluster someone started by hand makes `start` refuse, not share;
    # CI names it, to `stop` it even if pytest is killed. Not under pytest's tmp_path: munged
    # refuses a socket below a folder others cannot enter.
    folder = os.environ.get("SLURM_TEST_CLUSTER_DIR") or f"{tempfile.gettempdir()}/slurm-test-cluster-{os.getpid()}"
    cluster = _Cluster(options, {**ENV, "SLURM_TEST_CLUSTER_DIR": folder})
    _running.append(cluster)  # from here on, `stop` is due whatever happens
    started = subprocess.run(["bash", SCRIPT, "start", *options], env=cluster.env, capture_output=True, text=True,
                             timeout=120)
    if started.returncode != 0:
        cluster.failure = f"cluster did not start:\n{started.stdout}\n{started.stderr}"
        pytest.fail(cluster.failure)
    return Path(folder)
