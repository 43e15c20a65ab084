"""benchmarks/pull_verify.py: `dvc pull` into fresh clones with the remote's verify off and on."""

import re
import shutil
import subprocess
import sys

import pytest

from tests.e2e.conftest import ENV, REPO, copy_project

pytestmark = pytest.mark.e2e


def pull_verify(project, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.pull_verify", *args],
        cwd=project, env={**ENV, "PYTHONPATH": str(REPO)},  # the benchmark, run from inside the tiny project
        capture_output=True, text=True, timeout=600)


def test_times_a_pull_with_verify_off_and_on_in_each_round(reproduced, tmp_path):
    project = copy_project(reproduced[0], tmp_path / "project")
    config = (project / ".dvc" / "config").read_text()
    result = pull_verify(project, "--repeats", "2")
    assert result.returncode == 0, result.stderr
    rounds = re.findall(r"^round (\d): verify (off|on ) dvc pull +[\d.]+ s$", result.stdout, re.MULTILINE)
    assert rounds == [("1", "off"), ("1", "on "), ("2", "off"), ("2", "on ")]
    assert re.search(r"^  on / off, per round: \d+\.\d\d \(\d+\.\d\d-\d+\.\d\d\)$", result.stdout, re.MULTILINE)
    assert (project / ".dvc" / "config").read_text() == config  # the checkout's own remotes are untouched
    assert not (project / ".dvc" / "config.local").exists()


def test_without_cached_outputs_it_says_so_in_one_line(reproduced, tmp_path):
    project = copy_project(reproduced[0], tmp_path / "project")
    shutil.rmtree(project / ".dvc" / "cache")
    result = pull_verify(project, "--repeats", "1")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "error: this checkout's DVC cache lacks outputs that dvc.lock names; run `dvc repro` or `dvc pull` here first"]
