"""Whether DVC finds every stage of a project up to date: the Snakefile's reason to trust content over times.

DVC compares content (hashes in dvc.lock); Snakemake compares modification times. After
`dvc repro` rebuilds identical files, or in a fresh clone, the times say "changed" where
the content has not. When DVC reports nothing changed, the Snakefile can say so too.
"""

import json
import subprocess
import sys
from pathlib import Path

TIMEOUT_S = 120


def dvc_reports_up_to_date(root: str | Path = ".") -> bool:
    """True if `dvc status` in `root` finds every stage's code, params, data and outputs as dvc.lock has them.

    False when it cannot tell: no dvc.lock, no DVC, DVC busy (locked) or failing, or no answer in time.
    """
    root = Path(root)
    if not (root / "dvc.lock").is_file():
        return False  # nothing DVC has run here to vouch for; and no need to start it
    try:
        status = subprocess.run(
            [sys.executable, "-m", "dvc", "status", "--json"], cwd=root, capture_output=True, text=True,
            timeout=TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    if status.returncode != 0:
        return False
    try:
        return json.loads(status.stdout) == {}
    except json.JSONDecodeError:
        return False


# The lock a real Snakemake run holds, for as long as its process lives.
_held: list = []


def hold_dvc_lock(root: str | Path = ".") -> None:
    """Take DVC's own repository lock (`.dvc/tmp/lock`, as `dvc repro` and every DVC command that
    reads or changes the workspace takes it) and keep it until this process ends.

    DVC and Snakemake at once in one checkout both failed, and deleted committed metrics: each
    removes a stage's outputs before running it. Holding DVC's lock makes DVC refuse to start
    while Snakemake runs ("Unable to acquire lock"), and this refuses while DVC runs. Nothing to
    do outside a DVC project. The lock is an flock (zc.lockfile, DVC's default; not with DVC's
    `core.hardlink_lock`), so a killed holder leaves nothing to clean up."""
    import zc.lockfile

    from stages.common.errors import PipelineError

    dvc_dir = Path(root) / ".dvc"
    if _held or not dvc_dir.is_dir():
        return
    (dvc_dir / "tmp").mkdir(exist_ok=True)
    try:
        _held.append(zc.lockfile.LockFile(str(dvc_dir / "tmp" / "lock")))
    except zc.lockfile.LockError:
        raise PipelineError("DVC is running in this checkout (it holds .dvc/tmp/lock), and both tools at once "
                            "delete each other's outputs; wait for it to finish, then run Snakemake again") from None
