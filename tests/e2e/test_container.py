"""The container image (Dockerfile, scripts/container.sh): built once per session from a base made
without a registry, it runs the tiny pipeline in a mounted checkout with DVC and with Snakemake, as
users the image has no account for, and writes the host run's results byte for byte."""

import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import stop_when_the_session_ends
from tests.e2e.conftest import REPO, make_project
from tests.e2e.docker import IMAGE, Daemon, container_sh, make_base_image

pytestmark = pytest.mark.e2e

# Users with no account in the image: what `-u "$(id -u):$(id -g)"` gives on most hosts.
USER_A, USER_B = "12345:12345", "23456:23457"
# The tiny mirror listens on the host's 127.0.0.1, which the container reaches through the host's network.
NETWORK = "--network host"
# Every file a run writes but metrics/timing (seconds differ between any two runs). The .npz files
# of data/processed are zip archives stamped with the time they were written: their arrays are compared.
COMPARED = ("metrics", "models", "data/processed")


@pytest.fixture(scope="session")
def daemon(request, tmp_path_factory) -> Daemon:
    daemon = Daemon(tmp_path_factory.mktemp("docker"))
    stop_when_the_session_ends(request.config, daemon.stop)
    return daemon


@pytest.fixture(scope="session")
def image(daemon) -> str:
    base = make_base_image(daemon)
    started = time.monotonic()
    built = container_sh(daemon, "build", "--progress=plain", BASE=base)
    assert built.returncode == 0, built.stderr[-4000:]
    print(f"image built in {time.monotonic() - started:.1f} s")
    return IMAGE


def checkout(root: Path, tiny_mirror, owner: str | None = None) -> Path:
    """A tiny project with scripts/container.sh, owned by `owner` ("uid:gid") if given."""
    make_project(root, tiny_mirror)
    (root / "scripts").mkdir()
    shutil.copy2(REPO / "scripts" / "container.sh", root / "scripts")
    shutil.copytree(REPO / "notebooks", root / "notebooks")
    if owner:
        own(root, owner)
    return root


def own(root: Path, owner: str) -> None:
    uid, gid = map(int, owner.split(":"))
    for path in [root, *root.rglob("*")]:
        os.lchown(path, uid, gid)


def copy_owned(source: Path, root: Path, owner: str) -> Path:
    """A copy of a checkout, git history and DVC cache included, owned by `owner` as the source was."""
    shutil.copytree(source, root, symlinks=True)
    own(root, owner)
    return root


def in_container(daemon, root: Path, user: str, *command: str, timeout: float = 900,
                 options: str = "") -> subprocess.CompletedProcess:
    result = container_sh(daemon, "run", *command, cwd=root, timeout=timeout,
                          RUN_OPTIONS=f"{NETWORK} -u {user} {options}".strip())
    assert result.returncode == 0, f"{' '.join(command)} as {user}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def results(root: Path) -> dict[str, bytes]:
    found = {}
    for folder in COMPARED:
        for path in sorted((root / folder).rglob("*")):
            relative = path.relative_to(root).as_posix()
            if (not path.is_file() or relative.startswith("metrics/timing/")
                    or path.name in (".gitignore", ".snakemake_timestamp")):  # git's and Snakemake's bookkeeping
                continue
            if path.suffix == ".npz":
                with np.load(path) as arrays:
                    found[relative] = b"".join(name.encode() + arrays[name].tobytes() for name in sorted(arrays))
            else:
                found[relative] = path.read_bytes()
    return found


def assert_same_results(container: Path, host: Path) -> None:
    ours, theirs = results(container), results(host)
    assert sorted(ours) == sorted(theirs)
    differing = [path for path in ours if ours[path] != theirs[path]]
    assert not differing, f"differ from the host's run: {differing}"


@pytest.fixture(scope="module")
def dvc_checkout(tmp_path_factory, tiny_mirror, daemon, image) -> Path:
    """A tiny checkout after `dvc repro` in the container, as USER_A."""
    root = checkout(tmp_path_factory.mktemp("container_dvc") / "project", tiny_mirror, owner=USER_A)
    in_container(daemon, root, USER_A, "dvc", "repro")
    return root


def test_image_is_the_pinned_environment_as_a_non_root_user(daemon, image):
    probe = daemon.docker("run", "--rm", image, "sh", "-c",
                          "id -u; python --version; ls /usr/share/datasets/fashion-mnist; "
                          "jupyter lab --version; pip freeze")
    lines = probe.stdout.splitlines()
    assert lines[0] != "0"
    assert lines[1].startswith("Python 3.11.")
    for name in ("train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert name in lines
    pins = {line.strip() for line in (REPO / "requirements" / "constraints.txt").read_text().splitlines()}
    frozen = {line for line in lines if "==" in line}
    assert frozen and frozen <= {pin.replace("_", "-") for pin in pins} | pins, frozen - pins


def test_dvc_repro_in_the_container_writes_the_hosts_results_byte_for_byte(dvc_checkout, reproduced):
    host, _ = reproduced
    assert_same_results(dvc_checkout, host)


def test_files_written_in_the_container_belong_to_the_user(dvc_checkout):
    uid, gid = map(int, USER_A.split(":"))
    written = [dvc_checkout / "models" / "conv1.keras", dvc_checkout / "metrics" / "test" / "conv2.json",
               dvc_checkout / "dvc.lock", dvc_checkout / ".dvc" / "cache"]
    assert {(path.stat().st_uid, path.stat().st_gid) for path in written} == {(uid, gid)}


def test_dvc_exp_run_commits_an_experiment_in_the_container(daemon, dvc_checkout, tmp_path):
    root = copy_owned(dvc_checkout, tmp_path / "project", USER_A)
    in_container(daemon, root, USER_A, "dvc", "exp", "run", "-n", "faster", "-S", "lr=0.01", "train@conv1")
    shown = in_container(daemon, root, USER_A, "dvc", "exp", "show", "--csv").stdout
    assert "faster" in shown and "0.01" in shown
    assert (root / "params.yaml").read_text().count("lr: 0.01") == 1


def test_git_reads_a_checkout_that_another_user_owns(daemon, image, tmp_path, tiny_mirror):
    # Owned by root (this test's user), read by a uid with no account: Git's "dubious ownership".
    root = checkout(tmp_path / "project", tiny_mirror)
    log = in_container(daemon, root, USER_B, "git", "log", "--format=%s").stdout
    assert log.strip() == "tiny project"


def test_snakemake_in_the_container_on_one_core_writes_the_hosts_results_byte_for_byte(
        daemon, image, tmp_path, tiny_mirror, reproduced):
    host, _ = reproduced
    root = checkout(tmp_path / "project", tiny_mirror, owner=USER_B)
    # On one core of the host's two, as `docker run --cpus 1` and a CPU set allow: the pinned
    # thread count, not the cores, decides the bits (stages/common/tensorflow.py).
    in_container(daemon, root, USER_B, "snakemake", "-c2", options="--cpus 1 --cpuset-cpus 0")
    assert_same_results(root, host)


def test_the_results_notebook_runs_in_the_container(daemon, dvc_checkout, tmp_path):
    root = copy_owned(dvc_checkout, tmp_path / "project", USER_A)
    # The notebook shows the committed run: commit it, in the container, as the container's user.
    in_container(daemon, root, USER_A, "sh", "-c", "git add -A && git commit -qm results")
    # As the workflow's container job runs it.
    in_container(daemon, root, USER_A, "jupyter", "execute", "--output=executed", "notebooks/results.ipynb")
    executed = (root / "notebooks" / "executed.ipynb").read_text()
    assert "of 12 right" in executed and '"output_type": "error"' not in executed


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_no_docker_no_daemon_and_no_checkout_each_say_what_to_do(daemon, image, tmp_path):
    missing = container_sh(daemon, "run", "dvc", "repro", DOCKER=str(tmp_path / "no-docker"))
    assert "is not installed; install Docker" in one_error_line(missing)
    silent = container_sh(daemon, "run", "dvc", "repro", DOCKER_HOST=f"unix://{tmp_path}/no.sock")
    assert "no Docker daemon answers" in one_error_line(silent)
    elsewhere = tmp_path / "not-a-checkout"
    (elsewhere / "scripts").mkdir(parents=True)
    shutil.copy2(REPO / "scripts" / "container.sh", elsewhere / "scripts")
    assert "is not a git checkout of the project" in one_error_line(container_sh(daemon, "run", "dvc", "repro",
                                                                                  cwd=elsewhere))
    # The image alone, no checkout mounted:
    unmounted = daemon.docker("run", "--rm", image, "dvc", "repro", check=False)
    assert "no checkout is mounted at /work" in one_error_line(unmounted)


def test_jupyter_lab_serves_the_checkout_on_localhost(daemon, image, tmp_path, tiny_mirror):
    import socket
    import urllib.error
    import urllib.request

    root = checkout(tmp_path / "project", tiny_mirror)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    name = f"jupyter-e2e-{port}"
    server = subprocess.Popen(["bash", str(root / "scripts" / "container.sh"), "jupyter", str(port)], cwd=root,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=daemon.env(IMAGE=IMAGE, RUN_OPTIONS=f"--name {name}"))
    try:
        deadline, status = time.monotonic() + 120, None
        while time.monotonic() < deadline and status is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api", timeout=5) as reply:
                    status = reply.status
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None, server.stdout.read()
                time.sleep(1)
        assert status == 200  # /api answers without the token: the server is up, serving /work
    finally:
        daemon.docker("stop", name, check=False)
        server.wait(timeout=60)


def test_build_without_a_name_tags_the_readmes_image(daemon, image):
    # The README's `bash scripts/container.sh build`, no IMAGE: the default name. The layers are
    # the session image's, so this only tags; it once ended silently with status 1 instead.
    built = container_sh(daemon, "build", "-q", IMAGE="", BASE=make_base_image(daemon))
    assert built.returncode == 0, built.stderr
    try:
        assert daemon.docker("image", "inspect", "fashion-mnist", check=False).returncode == 0
    finally:
        daemon.docker("image", "rm", "fashion-mnist", check=False)
