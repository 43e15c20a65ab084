"""Every row of docs/failures.md ("What happens when..."): the stage's one line, its exit
status, and what is (not) left behind. Stages run as the user runs them, as processes: those
that import TensorFlow through the `run_module` fixture, in the fast tier in pytest's own
process (the same code as `python -m`, without the seconds of start-up) and in the e2e tier
in a new one as well."""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from stages import evaluate, train
from stages.common import cli, training
from stages.common.errors import PipelineError
from stages.common.params import load_params
from tests.bounded import one_error_line as bounded_error_line
from tests.bounded import run_stage

TINY = ["--set", "epochs=2", "--set", "batch_size=32", "--set", "train.warmup_epochs=0"]


def stage(name: str, *args: str, user: str | None = None, wait: bool = True, **kwargs):
    """A stage in a new process, for what only a process shows: another user, a signal, a mount."""
    command = [sys.executable, "-m", f"stages.{name}", *args]
    if user:
        command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *command]
    if not wait:
        # Ctrl-C as in a terminal: a shell that ran pytest in the background (`cmd &`, nohup)
        # has SIGINT ignored, and a child would inherit that and never see the signal.
        return subprocess.Popen(command, stderr=subprocess.PIPE, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **kwargs)
    return subprocess.run(command, capture_output=True, text=True, timeout=300, **kwargs)


def one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def train_args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["--model", "conv1", "--data", str(data), "--out", str(out / "conv1.keras"),
            "--live", str(out / "live"), "--timing", str(out / "timing.json"), *TINY, *extra]


def leftovers(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob(".*.tmp*"))


# Nonsense refused up front ------------------------------------------------------------

@pytest.mark.parametrize("setting, line", [
    ("lr=.inf", "error: invalid --set lr=.inf: lr: inf is not a finite number; fix that override"),
    ("lr=.nan", "error: invalid --set lr=.nan: lr: nan is not a finite number; fix that override"),
    ("split.test_size=0.9999", "error: invalid --set split.test_size=0.9999: split.test_size: 0.9999 is greater "
                               "than the maximum of 0.5; fix that override"),
    ("epochs=1.0", "error: invalid --set epochs=1.0: epochs: 1.0 is not an integer; write a whole number such as "
                   "10 (1e1 and 10.0 are floats); fix that override"),
    ("batch_size=100000000", "error: invalid --set batch_size=100000000: batch_size: 100000000 is greater than "
                             "the maximum of 70000; fix that override"),
])
def test_nonsense_is_refused_before_any_work(run_module, tmp_path, setting, line):
    result = run_module("stages.train", *train_args(tmp_path, tmp_path), "--set", setting)
    assert result.returncode == 1
    assert one_error_line(result) == line
    assert list(tmp_path.iterdir()) == []


def test_batch_larger_than_the_training_set_is_refused(run_module, tiny_processed, tmp_path):
    result = run_module("stages.train", *train_args(tiny_processed, tmp_path), "--set", "batch_size=5000")
    assert result.returncode == 1
    assert one_error_line(result) == ("error: batch_size 5000 is larger than the training set (180 images); "
                                      "choose at most 180")
    assert list(tmp_path.iterdir()) == []


def test_split_that_leaves_a_class_out_is_refused(tmp_path):
    interim = tmp_path / "interim"
    interim.mkdir()
    labels = np.repeat(np.arange(10, dtype=np.uint8), 3)  # 3 images per class
    np.save(interim / "images.npy", np.zeros((30, 28, 28), np.float32))
    np.save(interim / "labels.npy", labels)
    result = stage("split", "--interim", str(interim), "--out", str(tmp_path / "processed"),
                   "--set", "split.test_size=0.2", "--set", "split.validation_size=0.2")
    assert result.returncode == 1
    assert one_error_line(result).startswith(
        "error: split.test_size=0.2 and split.validation_size=0.2 leave no image of class 0, 1, 2")
    assert not (tmp_path / "processed").exists()


# Divergence ---------------------------------------------------------------------------

def test_non_finite_loss_stops_training_with_nothing_written(run_module, tiny_processed, tmp_path):
    result = run_module("stages.train", *train_args(tiny_processed, tmp_path, "--set", "optimizer=sgd",
                                                    "--set", "lr=1e20"))
    assert result.returncode == 1
    line = one_error_line(result)
    assert line.startswith("error: training diverged: the loss became nan by epoch 1, step ")
    assert line.endswith("lower lr (now 1e+20) or try another optimizer; nothing was written")
    assert list(tmp_path.iterdir()) == []


def test_a_sweep_records_a_diverged_run_instead_of_failing(run_module, tiny_processed, tmp_path):
    result = run_module("stages.train", *train_args(tiny_processed, tmp_path, "--set", "optimizer=sgd",
                                                    "--set", "lr=1e20", "--record-divergence"))
    assert result.returncode == 0, result.stderr
    [warning] = [line for line in result.stderr.splitlines() if "diverged" in line]
    assert warning.startswith("warning: conv1 diverged: the loss became nan by epoch 1, step ")
    summary = json.loads((tmp_path / "live" / "metrics.json").read_text())
    assert summary["diverged"] is True and summary["epochs_run"] == 1


def test_a_run_that_ends_at_chance_says_so_in_its_output_and_metrics(run_module, tiny_processed, tmp_path):
    result = run_module("stages.train", *train_args(tiny_processed, tmp_path, "--set", "optimizer=sgd",
                                                    "--set", "lr=1000"))
    assert result.returncode == 0
    [warning] = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warning.startswith("warning: conv1 ended at chance level (validation accuracy 0.")
    assert json.loads((tmp_path / "live" / "metrics.json").read_text())["at_chance"] is True


def test_the_stop_comes_at_the_first_non_finite_batch():
    stopper = training.StopOnNonFiniteLoss(train.TrainConfig.from_params(cli.load_params("params.yaml")))
    stopper.on_epoch_begin(2)
    stopper.on_train_batch_end(0, {"loss": 2.3})
    with pytest.raises(PipelineError, match="loss became inf by epoch 3, step 8"):
        stopper.on_train_batch_end(7, {"loss": float("inf")})


@pytest.mark.parametrize("accuracy, at_chance", [(0.1, True), (0.149, True), (0.15, False), (0.9, False)])
def test_a_run_at_chance_says_so(capsys, accuracy, at_chance):
    assert train.warn_if_at_chance("conv1", accuracy) is at_chance
    err = capsys.readouterr().err
    assert ("warning: conv1 ended at chance level" in err) is at_chance
    if at_chance:  # at lr 1e-320 the weights never moved, and "lower lr" was the advice
        assert "try it 10x lower and 10x higher" in err and err.count("\n") == 1


# Corrupt inputs -----------------------------------------------------------------------

def damaged(good: bytes) -> dict[str, bytes]:
    middle = len(good) // 2
    return {"truncated": good[:middle], "empty": b"", "random": os.urandom(100),
            "damaged inside": good[:middle] + bytes(b ^ 0xFF for b in good[middle:middle + 64]) + good[middle + 64:]}


@pytest.mark.parametrize("kind", ["truncated", "empty", "random", "damaged inside"])
def test_corrupt_split_file_names_the_stage_that_writes_it(run_module, tiny_processed, tmp_path, kind):
    data = tmp_path / "processed"
    shutil.copytree(tiny_processed, data)
    (data / "train.npz").write_bytes(damaged((tiny_processed / "train.npz").read_bytes())[kind])
    result = run_module("stages.train", *train_args(data, tmp_path / "out"))
    assert result.returncode == 1
    line = one_error_line(result)
    assert line.startswith(f"error: {data / 'train.npz'} is corrupt or not what the split stage writes (")
    assert line.endswith("delete it and run the split stage again") and "allow_pickle" not in line
    assert not (tmp_path / "out").exists()


@pytest.mark.also_as_process
def test_garbage_model_file_is_named_as_such(run_module, tiny_processed, tmp_path):
    (tmp_path / "conv1.keras").write_bytes(os.urandom(300))
    result = run_module("stages.evaluate", "--model-file", str(tmp_path / "conv1.keras"), "--data", str(tiny_processed),
                        "--metrics", str(tmp_path / "m.json"), "--details", str(tmp_path / "d.json"),
                        "--predictions", str(tmp_path / "p.csv"), "--figures", str(tmp_path / "figures"))
    assert result.returncode == 1
    assert one_error_line(result) == (f"error: {tmp_path / 'conv1.keras'} is not a Keras model (not a .keras zip "
                                      "archive); run the train stage for this model again")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["conv1.keras"]


def test_a_split_file_whose_array_header_claims_too_much_is_refused_before_allocating(run_module, tiny_processed,
                                                                                     tmp_path):
    data = tmp_path / "processed"
    shutil.copytree(tiny_processed, data)
    with zipfile.ZipFile(data / "train.npz", "w") as archive:
        for name, shape in (("images.npy", (10**9, 28, 28)), ("labels.npy", (10**9,))):
            with archive.open(name, "w") as member:
                np.lib.format.write_array_header_1_0(member, {"descr": "<f4", "fortran_order": False, "shape": shape})
    result = run_module("stages.train", *train_args(data, tmp_path / "out"))
    assert one_error_line(result) == (
        f"error: {data / 'train.npz'} is corrupt or not what the split stage writes (its header says shape "
        "(1000000000, 28, 28) of float32, 3,136,000,000,000 bytes, but 0 bytes follow it); delete it and run the "
        "split stage again")


@pytest.mark.e2e  # the peak memory of a new process, which imports TensorFlow (the refusal itself: test_models.py)
def test_a_device_as_the_model_file_is_refused_unread(tiny_processed, tmp_path):
    run = run_stage("stages.evaluate", "--model-file", "/dev/zero", "--data", str(tiny_processed),
                    "--metrics", str(tmp_path / "m.json"), "--details", str(tmp_path / "d.json"),
                    "--predictions", str(tmp_path / "p.csv"), "--figures", str(tmp_path / "figures"))
    assert bounded_error_line(run) == ("error: /dev/zero is a character device, not a file; give the path of a "
                                       "Keras model")
    assert run.peak_mb < 1000, run  # TensorFlow's import alone is some 650 MB
    assert not list(tmp_path.iterdir())


# The machine says no -----------------------------------------------------------------

@pytest.fixture
def shared_dir():
    """A folder another user can enter (pytest's own tmp_path is private to this one)."""
    folder = Path(tempfile.mkdtemp())
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


def test_read_only_output_folder_names_the_path(tiny_processed, shared_dir):
    data = shared_dir / "processed"
    shutil.copytree(tiny_processed, data)
    out = shared_dir / "out"
    out.mkdir(mode=0o555)
    out.chmod(0o555)
    user = "65534" if os.geteuid() == 0 else None  # root writes anywhere, so run as nobody
    # Not measured under `pytest --cov`: as another user it could not write its coverage data.
    env = {**{key: value for key, value in os.environ.items() if not key.startswith("COVERAGE_")},
           "HOME": str(shared_dir), "MPLCONFIGDIR": str(shared_dir / "mpl")}
    interim = shared_dir / "interim"
    interim.mkdir()
    np.save(interim / "images.npy", np.zeros((40, 28, 28), np.float32))
    np.save(interim / "labels.npy", np.repeat(np.arange(10, dtype=np.uint8), 4))
    result = stage("split", "--interim", str(interim), "--out", str(out / "processed"),
                   "--set", "split.validation_size=0.5", "--set", "split.test_size=0.25",
                   "--params", str(Path("params.yaml").resolve()), user=user, env=env)
    assert result.returncode == 1
    assert one_error_line(result) == (f"error: permission denied for {out / 'processed'}; make it writable or "
                                      "choose another path")
    assert list(out.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tiny file system needs root")
def test_full_disk_names_the_path(tmp_path):
    interim = tmp_path / "interim"
    interim.mkdir()
    np.save(interim / "images.npy", np.zeros((400, 28, 28), np.float32))  # 1.2 MB of splits to write
    np.save(interim / "labels.npy", np.repeat(np.arange(10, dtype=np.uint8), 40))
    full = tmp_path / "full"
    full.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(full)], check=True)
    try:
        result = stage("split", "--interim", str(interim), "--out", str(full / "processed"))
        assert result.returncode == 1
        assert one_error_line(result) == (f"error: no space left on the device for {full / 'processed'}; "
                                          "free some space and run the stage again")
        assert list(full.iterdir()) == []
    finally:
        subprocess.run(["umount", str(full)], check=True)


@pytest.mark.parametrize("error, line", [
    (OSError(errno.EIO, "Input/output error", "data/raw"), "Input/output error (data/raw)"),
    (OSError(errno.ENAMETOOLONG, "File name too long"), "File name too long (an output)"),
])
def test_any_other_system_error_names_its_cause_and_path(error, line):
    # The full-disk and permission cases have their own tests above, through a real stage.
    assert cli.describe(error) == line


# Interrupted -------------------------------------------------------------------------

@pytest.mark.e2e  # a signal to a real process, which only reacts once TensorFlow is up and training
@pytest.mark.parametrize("signum, status, line", [
    (signal.SIGINT, 130, f"error: interrupted (Ctrl-C); {cli.NOTHING_WRITTEN}"),
    (signal.SIGTERM, 143, f"error: terminated (SIGTERM); {cli.NOTHING_WRITTEN}"),
])
def test_interrupted_training_leaves_the_previous_outputs_whole(tiny_processed, tmp_path, signum, status, line):
    out = tmp_path / "out"
    (out / "live").mkdir(parents=True)
    (out / "live" / "metrics.json").write_text('{"earlier": true}')
    (out / "conv1.keras").write_bytes(b"earlier model")
    process = stage("train", *train_args(tiny_processed, out, "--set", "epochs=1000"), wait=False)
    deadline = time.monotonic() + 120
    while not list(out.glob(".live.tmp*/plots")) and time.monotonic() < deadline:  # an epoch has been logged
        time.sleep(0.2)
    process.send_signal(signum)
    try:
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()  # a stage that does not stop must not train on after the test
    assert process.returncode == status, stderr
    assert stderr.strip().splitlines() == [line]
    assert (out / "live" / "metrics.json").read_text() == '{"earlier": true}'
    assert (out / "conv1.keras").read_bytes() == b"earlier model"
    assert leftovers(out) == []


@pytest.fixture
def stage_signal_handlers():
    """The handlers `cli.run` installs, for this test only."""
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    cli.handle_signals()
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def test_a_deferred_signal_is_raised_at_the_safe_point_only(stage_signal_handlers):
    reached = []
    with pytest.raises(cli.Terminated), cli.signals_deferred():
        os.kill(os.getpid(), signal.SIGTERM)
        reached.append("past the signal")
        cli.raise_pending_signal()
        reached.append("past the safe point")
    assert reached == ["past the signal"]


def test_a_deferred_signal_is_raised_at_the_blocks_end_at_the_latest(stage_signal_handlers):
    reached = []
    with pytest.raises(cli.Terminated):
        with cli.signals_deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            reached.append("inside")
        reached.append("after the block")
    assert reached == ["inside"]


def test_a_second_signal_is_raised_at_once(stage_signal_handlers):
    reached = []
    with pytest.raises(cli.Terminated), cli.signals_deferred():
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)
        reached.append("past both signals")
    assert reached == []


def test_a_block_that_fails_leaves_no_signal_pending(stage_signal_handlers):
    with pytest.raises(ValueError), cli.signals_deferred():
        os.kill(os.getpid(), signal.SIGTERM)
        raise ValueError("the block's own error")
    cli.raise_pending_signal()  # raises nothing


def test_a_signal_while_dvclive_logs_an_epoch_stops_training_after_it(tiny_processed, tmp_path, monkeypatch,
                                                                      stage_signal_handlers):
    # Python raises a signal's exception at the next bytecode, wherever that is; raised in the
    # middle of DVCLive's queue, it left DVCLive's exit waiting forever (a SIGTERM'd stage that
    # never exited: 1 run in 25 of a loop, under load).
    from dvclive import Live

    logged, post = [], Live.post_data_to_studio

    def signalled_while_logging(live):
        if not logged:
            os.kill(os.getpid(), signal.SIGTERM)
        post(live)
        logged.append(live.step)

    monkeypatch.setattr(Live, "post_data_to_studio", signalled_while_logging)
    out = tmp_path / "out"
    params = load_params("params.yaml", ["epochs=1000", "batch_size=32", "train.warmup_epochs=0"])
    with pytest.raises(cli.Terminated):
        train.main("conv1", params["models"]["conv1"], tiny_processed, out / "conv1.keras", out / "live",
                   out / "timing.json", training.TrainConfig.from_params(params))
    assert logged and set(logged) == {0}  # the first epoch's update went through whole; no second epoch ran
    assert not out.exists() or list(out.iterdir()) == []  # nothing written, no leftovers


@pytest.mark.also_as_process
def test_debug_switch_shows_the_traceback(run_module, tmp_path):
    result = run_module("stages.train", *train_args(tmp_path, tmp_path), env={"PIPELINE_DEBUG": "1"})
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr and "PipelineError" in result.stderr


# All or nothing ------------------------------------------------------------------------

@pytest.mark.also_as_process
def test_leftovers_of_a_killed_run_are_removed_and_ignored(run_module, tiny_processed, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / ".conv1.keras.tmp1234abcd.keras").write_bytes(b"half a model")
    (out / ".live.tmp5678efgh").mkdir()
    result = run_module("stages.train", *train_args(tiny_processed, out, "--set", "epochs=1"))
    assert result.returncode == 0, result.stderr
    assert leftovers(out) == []
    names = ["models/.conv1.keras.tmp1234abcd.keras", "data/.processed.tmpab12"]
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *names], capture_output=True, text=True)
    assert ignored.stdout.split() == names
    assert ".*.tmp*" in Path(".dvcignore").read_text().splitlines()


def test_failed_evaluation_leaves_the_previous_files_whole(tiny_model, tiny_processed, tmp_path, monkeypatch):
    paths = [tmp_path / name for name in ("m.json", "d.json", "p.csv")]
    for path in paths:
        path.write_text("earlier")

    def broken(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(evaluate, "plot_misclassified", broken)
    with pytest.raises(OSError):
        evaluate.main(tiny_model, tiny_processed, *paths[:2], paths[2], tmp_path / "figures")
    assert [path.read_text() for path in paths] == ["earlier"] * 3
    assert not (tmp_path / "figures").exists() or leftovers(tmp_path / "figures") == []


# The same training gives the same model file bytes (so `dvc repro -f train@conv1` leaves evaluate and
# report cached): tests/test_train.py::test_training_is_deterministic_and_logs_curves, and under DVC
# tests/e2e/test_dvc.py::test_a_forced_retrain_leaves_evaluate_and_report_cached.
