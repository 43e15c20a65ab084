"""dvc_reports_up_to_date against the real `dvc status`, on a one-stage project."""

import subprocess
import sys
from pathlib import Path

import pytest

from stages.common.dvc_state import dvc_reports_up_to_date


def run(cwd: Path, *command: str) -> None:
    subprocess.run(command, cwd=cwd, check=True, capture_output=True, timeout=120)


@pytest.fixture
def project(tmp_path) -> Path:
    run(tmp_path, "git", "init", "-q")
    run(tmp_path, sys.executable, "-m", "dvc", "init", "-q")
    (tmp_path / "input.txt").write_text("one\n")
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  copy:\n    cmd: cp input.txt output.txt\n    deps: [input.txt]\n    outs: [output.txt]\n")
    run(tmp_path, sys.executable, "-m", "dvc", "repro", "-q")
    return tmp_path


def test_true_after_dvc_repro(project):
    assert dvc_reports_up_to_date(project)


def test_true_when_an_output_is_rebuilt_with_the_same_content(project):
    (project / "output.txt").unlink()
    (project / "output.txt").write_text("one\n")
    assert dvc_reports_up_to_date(project)


def test_false_when_a_dependency_changes(project):
    (project / "input.txt").write_text("two\n")
    assert not dvc_reports_up_to_date(project)


def test_false_when_an_output_is_missing(project):
    (project / "output.txt").unlink()
    assert not dvc_reports_up_to_date(project)


def test_false_without_a_lock_file_and_without_running_dvc(tmp_path, monkeypatch):
    monkeypatch.setattr(subprocess, "run", lambda *args, **kwargs: pytest.fail("dvc was started"))
    assert not dvc_reports_up_to_date(tmp_path)


def test_false_where_dvc_fails(tmp_path):
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")  # not a DVC repository
    assert not dvc_reports_up_to_date(tmp_path)


def test_false_when_dvc_does_not_answer_in_time(project, monkeypatch):
    monkeypatch.setattr("stages.common.dvc_state.TIMEOUT_S", 0.01)
    assert not dvc_reports_up_to_date(project)


def test_false_when_dvc_answers_with_something_other_than_json(project, monkeypatch, tmp_path_factory):
    fake = tmp_path_factory.mktemp("bin") / "python"
    fake.write_text("#!/bin/sh\necho 'Everything is up to date.'\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake))
    assert not dvc_reports_up_to_date(project)
