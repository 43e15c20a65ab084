"""Docker for the container tests: a daemon, a client that builds with BuildKit, a base image made
without a registry, and the project's image, each made at most once per pytest session.

Where no daemon answers, the session starts Debian's `dockerd` itself (as root, no systemd; it is
up in about 2 s) and stops it when pytest ends, whatever happened before: the stop is registered
with pytest's config, as the SLURM tests do. Images stay in Docker's own store, so the next session
finds the base image and the build cache and rebuilds only what changed. The only skip is where
Docker cannot run at all: not root and no daemon, or no dockerd installed.
"""

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO

BASE_IMAGE = "fmnist-base:bookworm"  # scripts/make-base-image.sh's default name
IMAGE = "fashion-mnist:e2e"
CONTAINER_SH = REPO / "scripts" / "container.sh"


def answers(client: str, env: dict | None = None) -> bool:
    """Whether a docker daemon answers `client`."""
    probe = subprocess.run([client, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True,
                           env=env, timeout=30)
    return probe.returncode == 0 and not probe.stderr.strip()


def buildkit_client() -> str | None:
    """A docker client that can build with BuildKit: the one on PATH if it has BuildKit (Docker < 23,
    or buildx installed), else Debian's own, which has it built in."""
    for candidate in (shutil.which("docker"), "/usr/bin/docker"):
        if not candidate or not Path(candidate).exists():
            continue
        version = subprocess.run([candidate, "version", "--format", "{{.Client.Version}}"],
                                 capture_output=True, text=True).stdout.strip() or "0"
        buildx = subprocess.run([candidate, "buildx", "version"], capture_output=True).returncode == 0
        if int(version.split(".")[0]) < 23 or buildx:
            return candidate
    return None


class Daemon:
    """The docker daemon the session uses: one already running, or one started here."""

    def __init__(self, folder: Path) -> None:
        client = buildkit_client()
        if client is None:
            pytest.skip("no docker client with BuildKit: scripts/setup.sh --dev installs Debian's docker.io")
        self.client = client
        self._process: subprocess.Popen | None = None
        if answers(client):
            return
        if os.geteuid() != 0:
            pytest.skip("Docker cannot run here: no daemon answers, and starting dockerd needs root")
        dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
        if not Path(dockerd).exists():
            pytest.skip("dockerd is missing: scripts/setup.sh --dev installs Debian's docker.io")
        folder.mkdir(parents=True, exist_ok=True)
        self.log = folder / "dockerd.log"
        with self.log.open("w") as log:
            # Its own pid file, so that a stale /var/run/docker.pid of a killed daemon is no obstacle.
            self._process = subprocess.Popen([dockerd, "--pidfile", str(folder / "dockerd.pid")],
                                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while not answers(client):
            if self._process.poll() is not None:
                raise RuntimeError(f"dockerd exited ({self._process.returncode}): {self.log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"dockerd did not answer within 60 s: {self.log.read_text()[-2000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop the daemon if this session started it (its containers stop with it)."""
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def env(self, **extra: str) -> dict[str, str]:
        """The environment for scripts/container.sh and docker commands."""
        return {**os.environ, "DOCKER": self.client, **extra}

    def docker(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        result = subprocess.run([self.client, *args], capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result


def make_base_image(daemon: Daemon) -> str:
    """The Debian base, made from the apt mirror by scripts/make-base-image.sh unless Docker has it."""
    if daemon.docker("image", "inspect", BASE_IMAGE, check=False).returncode != 0:
        if shutil.which("debootstrap") is None:
            pytest.skip("debootstrap is missing: scripts/setup.sh --dev installs it")
        made = subprocess.run(["bash", str(REPO / "scripts" / "make-base-image.sh"), BASE_IMAGE],
                              capture_output=True, text=True, env=daemon.env(), timeout=900)
        assert made.returncode == 0, made.stderr
    return BASE_IMAGE


def container_sh(daemon: Daemon, *args: str, cwd: Path = REPO, timeout: float = 900,
                 **env: str) -> subprocess.CompletedProcess:
    """`bash scripts/container.sh ARGS` of the checkout `cwd`, with the session's client and image."""
    return subprocess.run(["bash", str(cwd / "scripts" / "container.sh"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=daemon.env(**{"IMAGE": IMAGE, **env}))
