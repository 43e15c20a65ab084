"""Sharing results through DVC remotes: a local folder and a real SSH server on 127.0.0.1.

One project ("A", a copy of the session's tiny `reproduced` project) pushes its outputs and
run-cache to both remotes; every test then works in fresh clones of it, so no test needs
another's leftovers.
"""

import csv
import hashlib
import io
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import ENV, copy_project, dvc_ran_and_skipped
from tests.e2e.sshd import SSHServer, client_home, free_port

pytestmark = pytest.mark.e2e
MODELS = ["conv1", "conv2", "conv3"]
REMOTES = ["local", "ssh"]


class Shell:
    """Runs commands with a HOME whose ~/.ssh trusts only the test's sshd (no user settings leak in)."""

    def __init__(self, home: Path) -> None:
        self.env = {**ENV, "HOME": str(home)}

    def __call__(self, cwd: Path, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(command, cwd=cwd, env=self.env, capture_output=True, text=True, timeout=600)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result


def ran(output: str) -> set[str]:
    return dvc_ran_and_skipped(output)[0]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    server = SSHServer(tmp_path_factory.mktemp("sshd"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def sh(tmp_path_factory, sshd) -> Shell:
    return Shell(client_home(tmp_path_factory.mktemp("home"), sshd))


@pytest.fixture(scope="module")
def origin(tmp_path_factory, reproduced, sshd, sh):
    """Project A, its results pushed to both remotes; clones come from its bare git `origin`.

    Returns (A's folder, the bare repo, `dvc push --run-cache`'s output).
    """
    base = tmp_path_factory.mktemp("origin")
    a = copy_project(reproduced[0], base / "a")
    sh(a, "dvc", "remote", "add", "-d", "local", str(base / "local-storage"))
    sh(a, "dvc", "remote", "add", "ssh", sshd.url(base / "ssh-storage"))
    sh(a, "dvc", "remote", "modify", "--local", "ssh", "keyfile", str(sshd.client_key))  # a credential: not committed
    for remote in REMOTES:  # as the README sets up a remote: what is pulled is checked against its hash
        sh(a, "dvc", "remote", "modify", remote, "verify", "true")
    sh(a, "git", "commit", "-qam", "where the results are stored")
    pushed = sh(a, "dvc", "push", "--run-cache")
    sh(a, "dvc", "push", "--run-cache", "-r", "ssh")
    sh(a, "gto", "register", "conv2", "--version", "v1.0.0")  # the registry's tag: conv2@v1.0.0
    bare = base / "origin.git"
    sh(base, "git", "init", "-q", "--bare", "-b", "main", str(bare))
    sh(a, "git", "remote", "add", "origin", str(bare))
    sh(a, "git", "push", "-q", "--tags", "origin", "main")
    return a, bare, pushed.stdout


def clone(sh: Shell, bare: Path, folder: Path, remote: str = "local", sshd: SSHServer | None = None) -> Path:
    """A fresh clone that uses `remote`; for SSH, the key is this clone's own setting (.dvc/config.local)."""
    sh(folder.parent, "git", "clone", "-q", str(bare), folder.name)
    if remote == "ssh":
        sh(folder, "dvc", "remote", "default", "--local", "ssh")
        sh(folder, "dvc", "remote", "modify", "--local", "ssh", "keyfile", str(sshd.client_key))
    return folder


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file of a clone with its size and time, except in git's folder and DVC's scratch folder."""
    files = {}
    for path in folder.rglob("*"):
        relative = path.relative_to(folder)
        if path.is_file() and relative.parts[0] != ".git" and relative.parts[:2] != (".dvc", "tmp"):
            files[str(relative)] = (path.stat().st_size, path.stat().st_mtime_ns)
    return files


def test_push_sends_outputs_and_run_cache(origin):
    _, _, pushed = origin
    assert re.search(r"\d+ files pushed", pushed)


@pytest.mark.parametrize("remote", REMOTES)
def test_fresh_clone_pulls_everything_and_reruns_nothing(origin, sh, sshd, tmp_path, remote):
    a, bare, _ = origin
    b = clone(sh, bare, tmp_path / "b", remote, sshd)
    sh(b, "dvc", "pull")
    assert "up to date" in sh(b, "dvc", "status").stdout
    assert ran(sh(b, "dvc", "repro").stdout) == set()
    for model in MODELS:
        assert (b / "models" / f"{model}.keras").read_bytes() == (a / "models" / f"{model}.keras").read_bytes()
    load = "from stages.common.tensorflow import keras; import sys; " \
           "[keras.models.load_model(f'models/{m}.keras', compile=False) for m in sys.argv[1:]]"
    sh(b, "python", "-c", load, *MODELS)


@pytest.mark.parametrize("remote", REMOTES)
def test_repro_pull_allow_missing_runs_nothing(origin, sh, sshd, tmp_path, remote):
    _, bare, _ = origin
    c = clone(sh, bare, tmp_path / "c", remote, sshd)
    output = sh(c, "dvc", "repro", "--pull", "--allow-missing").stdout
    assert ran(output) == set(), output
    # It checks that everything is up to date without downloading the outputs nobody needs.
    assert not list(c.glob("models/*.keras"))


# The experiment's params: a new lr, as a teammate would try, and a new validation share, so
# that the split stage reruns too (see test_run_cache_restores_training_run_elsewhere).
EXPERIMENT = ["-S", "lr=0.01", "-S", "split.validation_size=0.15"]


@pytest.fixture(scope="module")
def experiment(origin, sh, tmp_path_factory):
    """Clone B runs an experiment and shares it: `dvc exp push`, and its run-cache."""
    _, bare, _ = origin
    b = clone(sh, bare, tmp_path_factory.mktemp("exp") / "b")
    sh(b, "dvc", "pull")
    output = sh(b, "dvc", "exp", "run", "-n", "lr-0.01", *EXPERIMENT).stdout
    assert {"split"} | {f"train@{model}" for model in MODELS} <= ran(output)  # really ran here
    sh(b, "dvc", "exp", "push", "origin", "lr-0.01")
    sh(b, "dvc", "push", "--run-cache")
    return "lr-0.01"


def test_exp_pushed_from_one_clone_is_pulled_by_another(origin, experiment, sh):
    a, _, _ = origin
    sh(a, "dvc", "exp", "pull", "origin", experiment)
    assert experiment in sh(a, "dvc", "exp", "list", "--name-only").stdout.split()
    rows = csv.DictReader(io.StringIO(sh(a, "dvc", "exp", "show", "--csv").stdout))
    assert [row["lr"] for row in rows if row["Experiment"] == experiment] == ["0.01"]


@pytest.fixture(scope="module")
def rerun_elsewhere(origin, experiment, sh, tmp_path_factory) -> str:
    """A fresh clone C pulls the run-cache and runs B's params again; DVC's output.

    `dvc pull --run-cache` brings the record of every run, not their outputs; `--pull` lets
    `exp run` (like `repro`) download the outputs of a run it finds there instead of running it.
    """
    _, bare, _ = origin
    c = clone(sh, bare, tmp_path_factory.mktemp("rerun") / "c")
    sh(c, "dvc", "pull", "--run-cache")
    return sh(c, "dvc", "exp", "run", "--pull", *EXPERIMENT).stdout


def test_run_cache_restores_a_stage_run_elsewhere(rerun_elsewhere):
    assert "Stage 'split' is cached - skipping run" in rerun_elsewhere, rerun_elsewhere
    assert "split" not in ran(rerun_elsewhere)


def test_run_cache_restores_training_run_elsewhere(rerun_elsewhere):
    for model in MODELS:
        assert f"Stage 'train@{model}' is cached - skipping run" in rerun_elsewhere, rerun_elsewhere
    assert not any(stage.startswith("train@") for stage in ran(rerun_elsewhere))


@pytest.mark.parametrize("failure", ["unreachable", "refused credentials"])
def test_remote_failure_gives_one_clear_line_and_changes_nothing(origin, sh, sshd, tmp_path, failure):
    _, bare, _ = origin
    c = clone(sh, bare, tmp_path / "c", "ssh", sshd)
    if failure == "unreachable":  # nothing listens on a fresh free port
        sh(c, "dvc", "remote", "modify", "--local", "ssh", "url", f"ssh://{sshd.user}@127.0.0.1:{free_port()}/x")
        cause = "Connect call failed"
    else:  # a key the server does not know
        sh(c, "dvc", "remote", "modify", "--local", "ssh", "keyfile", str(sshd.host_key))
        cause = "Permission denied"
    before = snapshot(c)
    result = sh(c, "dvc", "pull", check=False)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    why = [line for line in lines if cause in line]
    assert len(why) == 1 and why[0].startswith("ERROR: failed to connect to ssh"), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert snapshot(c) == before
    assert not list(c.glob("models/*.keras"))


def test_registry_gets_a_registered_model(origin, sh, tmp_path):
    a, bare, _ = origin
    sh(tmp_path, "dvc", "artifacts", "get", str(bare), "conv2", "--rev", "v1.0.0", "-o", "conv2.keras")
    assert (tmp_path / "conv2.keras").read_bytes() == (a / "models" / "conv2.keras").read_bytes()


def object_path(storage: Path, md5: str) -> Path:
    """Where a DVC 3 remote keeps the object with this hash."""
    return storage / "files" / "md5" / md5[:2] / md5[2:]


def locked_md5(project: Path, path: str) -> str:
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    return next(out["md5"] for stage in lock["stages"].values() for out in stage.get("outs", []) if out["path"] == path)


@pytest.mark.parametrize("remote", REMOTES)
def test_pull_refuses_a_damaged_object_and_checks_out_nothing_damaged(origin, sh, sshd, tmp_path, remote):
    a, bare, _ = origin
    storage = tmp_path / "storage"  # a damaged copy of the remote; the shared one stays intact
    shutil.copytree(a.parent / f"{remote}-storage", storage)
    damaged = object_path(storage, locked_md5(a, "models/conv1.keras"))
    content = bytearray(damaged.read_bytes())
    content[len(content) // 2] ^= 0xFF  # one flipped byte, size unchanged
    damaged.write_bytes(bytes(content))
    b = clone(sh, bare, tmp_path / "b", remote, sshd)
    sh(b, "dvc", "remote", "modify", "--local", remote, "url", sshd.url(storage) if remote == "ssh" else str(storage))
    result = sh(b, "dvc", "pull", check=False)
    assert result.returncode != 0
    assert "Checkout failed for following targets:\nmodels/conv1.keras" in result.stderr, result.stderr
    assert not (b / "models" / "conv1.keras").exists()
    for path in b.glob("models/*.keras"):  # what was checked out is what was pushed
        assert path.read_bytes() == (a / path.relative_to(b)).read_bytes()


@pytest.fixture
def small_disk(tmp_path) -> Path:
    """A 1 MiB tmpfs: a remote on it fills up part-way through a push."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small disk needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


@pytest.mark.parametrize("remote", REMOTES)
def test_a_push_that_fills_the_disk_leaves_nothing_a_pull_could_take_for_data(
        origin, sh, sshd, tmp_path, small_disk, remote):
    a, bare, _ = origin
    storage = small_disk / "storage"
    b = clone(sh, bare, tmp_path / "b", remote, sshd)
    sh(b, "dvc", "pull")
    sh(b, "dvc", "remote", "modify", "--local", remote, "url", sshd.url(storage) if remote == "ssh" else str(storage))
    full = sh(b, "dvc", "push", check=False)
    assert full.returncode != 0 and "files failed to upload" in full.stderr, full.stderr  # SFTP says only "Failure"
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    sh(b, "dvc", "push")  # the retry
    objects = [path for path in storage.glob("files/md5/*/*") if not path.name.startswith(".")]
    assert len(objects) > 10
    for path in objects:  # every object is whole: its content has the hash it is named by
        assert hashlib.md5(path.read_bytes()).hexdigest() == path.parent.name + path.name.removesuffix(".dir")
    c = clone(sh, bare, tmp_path / "c", remote, sshd)
    sh(c, "dvc", "remote", "modify", "--local", remote, "url", sshd.url(storage) if remote == "ssh" else str(storage))
    sh(c, "dvc", "pull")
    for model in MODELS:
        assert (c / "models" / f"{model}.keras").read_bytes() == (a / "models" / f"{model}.keras").read_bytes()
