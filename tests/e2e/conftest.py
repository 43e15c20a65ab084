"""A throw-away copy of this project, in its own git repo, pointed at tiny data served over HTTP."""

import fcntl
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from stages.common.params import load_params
from tests.conftest import TINY_MIRROR_URL, TINY_SIZES
from tests.tiny_data import files_spec, idx_bytes, tiny_arrays

REPO = Path(__file__).resolve().parents[2]
PROJECT_FILES = [
    "stages", "dvc.yaml", "Snakefile", "params.yaml", "params.schema.yaml", ".dvcignore", ".gitignore",
    "profiles", "report", "envs", "pyproject.toml",
]
ENV = {
    **os.environ,
    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",  # `python` in commands = this one
    "DVC_NO_ANALYTICS": "1",
    "GIT_AUTHOR_NAME": "e2e", "GIT_AUTHOR_EMAIL": "e2e@localhost",
    "GIT_COMMITTER_NAME": "e2e", "GIT_COMMITTER_EMAIL": "e2e@localhost",
}


def run(cwd: Path, *command: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=ENV, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="session")
def tiny_mirror() -> tuple[str, dict]:
    """The session's HTTP mirror on 127.0.0.1 (tests/conftest.py), serving tiny gzipped IDX files, and
    their `data.files` spec."""
    return os.environ[TINY_MIRROR_URL], files_spec(idx_bytes(tiny_arrays(**TINY_SIZES)))


def only_models(*names: str) -> dict:
    """params.yaml's `models`, only `names`: for make_project(models=...), where a test needs every
    rule to run but not for every model (two models still show what runs per model)."""
    every = load_params(REPO / "params.yaml")["models"]
    return {name: every[name] for name in names}


def make_project(root: Path, tiny_mirror: tuple[str, dict], **overrides) -> Path:
    """Copy the project into `root`, set tiny-data params, and commit it in a fresh git+DVC repo."""
    url, files = tiny_mirror
    root.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, root / name)
    params = load_params(root / "params.yaml")
    params["data"]["mirrors"] = [f"{url}missing/", url]  # the first mirror 404s: fallback is exercised
    params["data"]["files"] = files
    params.update(epochs=1, batch_size=32)
    params["train"]["warmup_epochs"] = 0
    params.update(overrides)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(root, "git", "init", "-q", "-b", "main")
    run(root, "dvc", "init", "-q")
    run(root, "git", "add", "-A")
    run(root, "git", "commit", "-qm", "tiny project")
    return root


@pytest.fixture(scope="session")
def reproduced(tmp_path_factory, tiny_mirror, worker_id) -> tuple[Path, str]:
    """A tiny project after `dvc repro`, its results committed, and that run's output.

    Built once per test session, by the first xdist worker that needs it, in the workers' shared
    folder; each worker reads its own copy of it. A test that changes a project works on a copy of
    that (`copy_project`).
    """
    if worker_id == "master":  # no xdist: this process's session is the whole session
        return build_reproduced(tmp_path_factory.mktemp("reproduced") / "project", tiny_mirror)
    shared = tmp_path_factory.getbasetemp().parent / "reproduced"
    with open(f"{shared}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other worker waits here while this one builds it
        if not (shared / "output.txt").exists():
            shutil.rmtree(shared / "project", ignore_errors=True)  # a build that failed in a worker before
            _, output = build_reproduced(shared / "project", tiny_mirror)
            (shared / "output.tmp").write_text(output)
            (shared / "output.tmp").rename(shared / "output.txt")
        root = copy_project(shared / "project", tmp_path_factory.mktemp("reproduced") / "project")
    return root, (shared / "output.txt").read_text()


def build_reproduced(root: Path, tiny_mirror: tuple[str, dict]) -> tuple[Path, str]:
    make_project(root, tiny_mirror)
    first = run(root, "dvc", "repro")
    run(root, "git", "add", "-A")
    run(root, "git", "commit", "-qm", "results")
    return root, first.stdout + first.stderr


def fresh_clone(origin: Path, base: Path) -> Path:
    """A `git clone` of `origin` in `base`: what a new user starts from, with no data, models or DVC cache."""
    run(base, "git", "clone", "-q", str(origin), "clone")
    return base / "clone"


def copy_project(source: Path, root: Path) -> Path:
    """A copy of a tiny project, its git history and DVC cache included, for a test to change."""
    shutil.copytree(source, root, symlinks=True)
    return root


def dvc_ran_and_skipped(output: str) -> tuple[set[str], set[str]]:
    """The stages DVC's output says it ran, and those it skipped as unchanged."""
    ran = set(re.findall(r"Running stage '([^']+)'", output))
    skipped = set(re.findall(r"Stage '([^']+)' didn't change, skipping", output))
    return ran, skipped


def planned_jobs(output: str) -> dict[str, int]:
    """Snakemake's own 'Job stats' table of a (dry) run: {rule: count}."""
    if "Nothing to be done" in output:
        return {}
    table = output.split("Job stats:")[1].split("total")[0]
    return {rule: int(count) for rule, count in re.findall(r"^(\w+)\s+(\d+)$", table, re.MULTILINE)}


def wait_for_queue(root, timeout_s: float = 900) -> str:
    """Poll `dvc queue status` until nothing is queued or running; return the last status."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = run(root, "dvc", "queue", "status").stdout
        if not re.search(r"\b(Queued|Running)\b", status):
            return status
        time.sleep(3)
    run(root, "dvc", "queue", "kill", "--all", check=False)
    raise AssertionError(f"the queue did not finish in {timeout_s} s:\n{status}")
