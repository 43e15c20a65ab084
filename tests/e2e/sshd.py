"""A real OpenSSH server on 127.0.0.1 for the remote-storage tests, in a folder of its own.

Debian's `openssh-server` (`/usr/sbin/sshd`) runs in the foreground (`-D`) with a generated
config, host key and one authorised client key, on a free port; `stop()` ends it. Nothing
outside the folder is used except /run/sshd, the empty folder sshd insists on when run as root.
"""

import getpass
import socket
import subprocess
import time
from pathlib import Path

import pytest

SSHD = Path("/usr/sbin/sshd")


def keygen(path: Path) -> Path:
    """A new passphrase-less ed25519 key pair at `path` and `path`.pub."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "e2e", "-f", str(path)], check=True)
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SSHServer:
    def __init__(self, folder: Path) -> None:
        if not SSHD.exists():
            pytest.skip(f"{SSHD} is missing: scripts/setup.sh --dev installs Debian's openssh-server where it can")
        folder.mkdir(parents=True, exist_ok=True)
        self.user = getpass.getuser()
        self.host_key = keygen(folder / "host_key")
        self.client_key = keygen(folder / "client_key")
        (folder / "authorized_keys").write_text(Path(f"{self.client_key}.pub").read_text())
        self.port = free_port()
        config = folder / "sshd_config"
        config.write_text("\n".join([
            f"Port {self.port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {self.host_key}",
            f"PidFile {folder / 'sshd.pid'}",
            f"AuthorizedKeysFile {folder / 'authorized_keys'}",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "UsePAM no",
            "StrictModes no",  # the temporary folders' permissions are not sshd's business here
            "Subsystem sftp internal-sftp",  # DVC talks SFTP
            "LogLevel ERROR",
            "",
        ]))
        # A client trusts this server only through this file (see `known_hosts_line`).
        kind, key = Path(f"{self.host_key}.pub").read_text().split()[:2]
        self.known_hosts_line = f"[127.0.0.1]:{self.port} {kind} {key}\n"
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation folder
        self.log = folder / "sshd.log"
        with self.log.open("w") as log:
            self._process = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stdout=log, stderr=log)
        self._wait_until_listening()

    def url(self, path: Path) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}{path}"

    def _wait_until_listening(self, timeout_s: float = 20) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"sshd exited ({self._process.returncode}): {self.log.read_text().strip()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"sshd did not listen on port {self.port} within {timeout_s} s")

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


def client_home(folder: Path, server: SSHServer) -> Path:
    """A HOME whose ~/.ssh/known_hosts trusts only `server`, so no user's own SSH settings leak in."""
    ssh = folder / ".ssh"
    ssh.mkdir(parents=True, exist_ok=True, mode=0o700)
    (ssh / "known_hosts").write_text(server.known_hosts_line)
    return folder
