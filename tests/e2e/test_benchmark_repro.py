"""benchmarks/repro.py: a full `dvc repro` in fresh clones of two revisions, timed."""

import re
import subprocess
import sys

import pytest

from tests.e2e.conftest import ENV, REPO, make_project, run

pytestmark = pytest.mark.e2e


def test_times_both_revisions_from_fresh_clones(tiny_mirror, tmp_path):
    project = make_project(tmp_path / "project", tiny_mirror)
    params = (project / "params.yaml").read_text()
    (project / "params.yaml").write_text(params.replace("seed: 42", "seed: 7"))
    run(project, "git", "commit", "-qam", "another seed")
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.repro", "--before", "HEAD~1", "--after", "HEAD", "--repeats", "1",
         "--keep", str(tmp_path / "runs")],
        cwd=project, env={**ENV, "PYTHONPATH": str(REPO)},  # the benchmark, run from inside the tiny project
        capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr
    rows = re.findall(r"^round 1: (before|after) +\w+  dvc repro +\d+ s, training \d+ / \d+ / \d+ s, "
                      r"test accuracy ([\d.]+ / [\d.]+ / [\d.]+)$", result.stdout, re.MULTILINE)
    assert [label for label, _ in rows] == ["before", "after"]
    assert rows[0][1] != rows[1][1]  # each clone trained its own revision's params
    assert re.search(r"^  after / before: \d+\.\d\d \(", result.stdout, re.MULTILINE)
    # Each run started from nothing: its clone has no outputs but its own.
    assert "seed: 42" in (tmp_path / "runs/before-1/params.yaml").read_text()
    assert (tmp_path / "runs/after-1/models/conv3.keras").exists()
