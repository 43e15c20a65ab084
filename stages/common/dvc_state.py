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
