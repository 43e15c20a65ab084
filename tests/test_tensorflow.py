"""The pinned arithmetic (stages/common/tensorflow.py): the bytes of a training and an
evaluation do not depend on the visible cores or on the user's environment.

Each run is a new process, as TensorFlow fixes its threads and instruction set once per
process: these tests are in the e2e tier.
"""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stages.common.params import load_params
from stages.common.tensorflow import PINNED_ENVIRONMENT, UNSET_ENVIRONMENT

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[1]
TINY = ["--set", "epochs=1", "--set", "batch_size=32"]
# What a user's shell may hold that would otherwise change the bits.
HOSTILE_ENVIRONMENT = {"ONEDNN_MAX_CPU_ISA": "SSE41", "TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL": "false",
                       "TF_ENABLE_ONEDNN_OPTS": "1", "TF_XLA_FLAGS": "--tf_xla_auto_jit=2 --tf_xla_cpu_global_jit",
                       "KERAS_BACKEND": "jax", "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
                       "OMP_NUM_THREADS": "1"}
# ... and what a user's keras.json may say.
HOSTILE_KERAS_CONFIG = '{"floatx": "float16", "epsilon": 0.01, "image_data_format": "channels_first"}'
one_core = pytest.mark.skipif(not shutil.which("taskset"), reason="taskset (util-linux) is not installed")


def train_and_evaluate(out: Path, data: Path, prefix: tuple[str, ...] = (), env: dict[str, str] | None = None,
                       evaluate: bool = True, extra: tuple[str, ...] = ()) -> dict[str, str]:
    """conv1 trained for one epoch on tiny data, then evaluated, by the stages' own command lines
    (under `prefix`, e.g. taskset); the MD5 of every output but the training time."""
    environment = {**os.environ, **(env or {})}

    def stage(*args: str) -> None:
        done = subprocess.run([*prefix, sys.executable, "-m", *args, *TINY, *extra], cwd=REPO, env=environment,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]

    stage("stages.train", "--model", "conv1", "--data", str(data), "--out", str(out / "conv1.keras"),
          "--live", str(out / "live"), "--timing", str(out / "timing.json"))
    if evaluate:
        stage("stages.evaluate", "--model-file", str(out / "conv1.keras"), "--data", str(data),
              "--metrics", str(out / "test.json"), "--details", str(out / "details.json"),
              "--predictions", str(out / "predictions.csv"), "--figures", str(out / "figures"))
    return {path.relative_to(out).as_posix(): hashlib.md5(path.read_bytes()).hexdigest()
            for path in sorted(out.rglob("*")) if path.is_file() and path.name != "timing.json"}


@pytest.fixture(scope="module")
def two_cores(tiny_processed, tmp_path_factory) -> dict[str, str]:
    return train_and_evaluate(tmp_path_factory.mktemp("two_cores"), tiny_processed)


@one_core
def test_one_visible_core_gives_the_bytes_of_two(two_cores, tiny_processed, tmp_path):
    one = train_and_evaluate(tmp_path, tiny_processed, prefix=("taskset", "-c", "0"))
    assert one == two_cores
    assert {"conv1.keras", "test.json", "predictions.csv"} <= set(one)


@one_core
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores to compare with one")
def test_without_the_pin_one_core_gives_other_bytes(two_cores, tiny_processed, tmp_path):
    # What the test above guards against: with `threads: 0` the cores decide the bits again.
    unpinned = train_and_evaluate(tmp_path, tiny_processed, prefix=("taskset", "-c", "0"), evaluate=False,
                                  extra=("--set", "threads=0"))
    assert unpinned["conv1.keras"] != two_cores["conv1.keras"]


def test_the_users_environment_changes_no_bit(two_cores, tiny_processed, tmp_path):
    assert set(PINNED_ENVIRONMENT) | set(UNSET_ENVIRONMENT) <= set(HOSTILE_ENVIRONMENT)
    (tmp_path / "keras_home").mkdir()
    (tmp_path / "keras_home" / "keras.json").write_text(HOSTILE_KERAS_CONFIG)
    hostile = {**HOSTILE_ENVIRONMENT, "KERAS_HOME": str(tmp_path / "keras_home")}
    assert train_and_evaluate(tmp_path / "run", tiny_processed, env=hostile) == two_cores


def test_predict_runs_on_the_pipelines_threads_by_default():
    # predict has no params file to read; its default must follow params.yaml's.
    from stages import predict

    assert load_params(REPO / "params.yaml")["threads"] == predict.DEFAULT_THREADS
