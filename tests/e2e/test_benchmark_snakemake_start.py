"""benchmarks/snakemake_start.py: Snakemake's reading of the Snakefile, in fresh clones of two revisions."""

import re
import subprocess
import sys

import pytest

from tests.e2e.conftest import ENV, REPO, make_project, run

pytestmark = pytest.mark.e2e


def benchmark(project, *args):
    return subprocess.run([sys.executable, "-m", "benchmarks.snakemake_start", *args],
                          cwd=project, env={**ENV, "PYTHONPATH": str(REPO)},  # run from inside the tiny project
                          capture_output=True, text=True, timeout=300)


def test_times_both_revisions_in_turn(tiny_mirror, tmp_path):
    project = make_project(tmp_path / "project", tiny_mirror)
    (project / "sweeps").mkdir()
    (project / "sweeps" / "lr.tsv").write_text("lr\n0.01\n0.02\n")
    run(project, "git", "add", "sweeps")
    run(project, "git", "commit", "-qm", "a sweep")
    result = benchmark(project, "--before", "HEAD~1", "--after", "HEAD", "--repeats", "2")
    assert result.returncode == 0, result.stderr
    rows = re.findall(r"^round (\d): (before|after) +\w+ +\d+\.\d\d s$", result.stdout, re.MULTILINE)
    assert rows == [("1", "before"), ("1", "after"), ("2", "before"), ("2", "after")]
    assert re.search(r"^  after / before: \d+\.\d\d \(", result.stdout, re.MULTILINE)


def test_a_revision_whose_snakefile_fails_is_named_in_one_line(tiny_mirror, tmp_path):
    project = make_project(tmp_path / "project", tiny_mirror)
    (project / "sweeps").mkdir()
    (project / "sweeps" / "lr.tsv").write_text("lr\nfast\n")  # not a number: the Snakefile refuses it
    run(project, "git", "add", "sweeps")
    run(project, "git", "commit", "-qm", "a bad sweep")
    result = benchmark(project, "--before", "HEAD~1", "--after", "HEAD", "--repeats", "1")
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert re.fullmatch(r"error: snakemake --list-rules failed in \S+/after: "
                        r"error: invalid sweeps/lr.tsv line 2: lr: .fast. is not a number.*", line)
    assert benchmark(project, "--before", "no-such-revision").stderr.strip() == (
        "error: --before 'no-such-revision' is not a git revision here")
