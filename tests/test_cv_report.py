import json
import os
import stat
from pathlib import Path

import pytest
import yaml

from tests.bounded import one_error_line, run_stage
from tests.processes import run_process
from tests.test_files import null_device, read_fifo_in_background

MODELS = list(yaml.safe_load(Path("params.yaml").read_text())["models"])


def cv_results(folder):
    folder.mkdir()
    for model in MODELS:
        per_fold = [{"accuracy": 0.9, "loss": 0.3}, {"accuracy": 0.8, "loss": 0.4}]
        (folder / f"{model}.json").write_text(json.dumps(
            {"folds": 2, "per_fold": per_fold, "accuracy_mean": 0.85, "accuracy_sd": 0.0707}))
    return folder


def test_writes_one_row_per_model(tmp_path):
    result = run_process("stages.cv_report", "--cv", str(cv_results(tmp_path / "cv")), "--out", str(tmp_path / "r.md"))
    assert result.returncode == 0, result.stderr
    rows = (tmp_path / "r.md").read_text().splitlines()[2:]
    assert [row.split(" | ")[0] for row in rows] == [f"| {model}" for model in MODELS]
    assert rows[0].endswith("| 2 | 0.8500 ± 0.0707 | 0.9000 / 0.8000 |")


def test_an_output_that_is_a_fifo_or_the_null_device_is_written_into(tmp_path):
    # The stage outputs renamed over whatever the command line named, as predict --csv did.
    cv, fifo, null = cv_results(tmp_path / "cv"), tmp_path / "fifo.md", null_device(tmp_path)
    os.mkfifo(fifo)
    reader, received = read_fifo_in_background(fifo)
    for target in (fifo, null):
        result = run_process("stages.cv_report", "--cv", str(cv), "--out", str(target))
        assert result.returncode == 0, result.stderr
    reader.join(10)
    assert received[0].decode().startswith("| model | folds |")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and stat.S_ISCHR(os.stat(null).st_mode)


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod of a character device needs root")
def test_an_output_that_is_another_device_is_refused_and_kept(tmp_path):
    full = tmp_path / "full"
    os.mknod(full, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    result = run_stage("stages.cv_report", "--cv", str(cv_results(tmp_path / "cv")), "--out", str(full))
    assert "is a character device, not a file, and is never replaced" in one_error_line(result)
    assert stat.S_ISCHR(os.stat(full).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cv", "full"]
