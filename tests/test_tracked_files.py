"""What git keeps of the pipeline is what dvc.yaml declares: no results of stages or models that are gone.

DVC is asked for its stages (its own index of dvc.yaml, foreach expanded), as in
tests/test_wiring.py, so the check is of the outputs DVC writes, not of file text.
"""

import hashlib
import os
import subprocess

import pytest
from dvc.repo import Repo

from stages.common.params import parse_yaml
from tests.e2e.conftest import REPO

# Committed on purpose though no stage declares them: the .gitignore files DVC writes next
# to the outputs it caches (metrics/train/<model>/, metrics/timing/<model>.json), which
# keep those outputs out of git (README, "The pipeline": "all in DVC's cache, not in git").
ALLOWED = {"metrics/train/.gitignore", "metrics/timing/.gitignore"}


@pytest.fixture(scope="module")
def dvc_stages() -> dict[str, list[str]]:
    """Each stage of dvc.yaml (as DVC addresses it: `train@conv1`) and the paths of its outputs."""
    with Repo(str(REPO)) as repo:
        return {stage.addressing: [out.def_path for out in stage.outs] for stage in repo.index.stages}


def tracked(folder: str) -> list[str]:
    """The files under `folder` that git tracks and the working tree still has (so the next commit keeps)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--", folder], cwd=REPO, capture_output=True, text=True,
                            check=True).stdout
    return sorted(path for path in listed.split("\0") if path and os.path.lexists(REPO / path))


def declared(path: str, outputs: list[str]) -> bool:
    """`path` is one of `outputs`, or inside one that is a folder."""
    return any(path == out or path.startswith(out.rstrip("/") + "/") for out in outputs)


def test_every_tracked_metrics_file_is_a_declared_output(dvc_stages):
    outputs = [out for outs in dvc_stages.values() for out in outs]
    files = tracked("metrics")
    assert files, "git tracks nothing under metrics/: is this a git checkout?"
    strays = [path for path in files if not declared(path, outputs) and path not in ALLOWED]
    assert strays == [], f"tracked in git but written by no stage of dvc.yaml: {strays}; remove them (rm, then commit)"


def test_every_allowed_file_is_still_tracked():
    # An allow-list entry nothing matches any more would silently widen the check above.
    assert set(tracked("metrics")) >= ALLOWED


def test_every_stage_in_dvc_lock_is_a_stage_of_dvc_yaml(dvc_stages):
    locked = parse_yaml((REPO / "dvc.lock").read_text())["stages"]
    stale = [stage for stage in locked if stage not in dvc_stages]
    assert stale == [], f"dvc.lock keeps stages dvc.yaml no longer has: {stale}; delete their entries from dvc.lock"
    assert "download" in locked and "report" in locked  # the check reads the real stage names


@pytest.mark.parametrize("lock", ["dvc.lock", "cv/dvc.lock"])
def test_every_code_file_in_a_lock_is_recorded_as_it_is_now(lock):
    # A stage's code edited without its lock updated looks changed in every clone:
    # `dvc repro --pull` retrains instead of downloading, and `dvc status` is never clean.
    # Paths are from each stage's working folder: the project root for both (cv's stages set `wdir: ..`).
    recorded = {REPO / dep["path"]: dep["md5"]
                for stage in parse_yaml((REPO / lock).read_text())["stages"].values()
                for dep in stage.get("deps", []) if dep["path"].endswith(".py")}
    assert recorded, f"{lock} records no code file: does it still list its stages' modules?"
    stale = sorted(str(path.relative_to(REPO)) for path, md5 in recorded.items()
                   if hashlib.md5(path.read_bytes()).hexdigest() != md5)
    assert stale == [], (f"{lock} records other contents of {stale}; run the stages (`dvc repro`) or, where "
                         f"outputs cannot change, `dvc commit`, and commit {lock}")
