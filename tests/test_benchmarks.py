import subprocess
import sys

from benchmarks.time_to_accuracy import TARGETS
from stages.common.params import load_params


def test_every_model_has_a_target_accuracy():
    assert set(TARGETS) == set(load_params("params.yaml")["models"])


def test_unknown_model_is_a_clear_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "benchmarks.time_to_accuracy", "--models", "conv9",
                             "--data", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: --models: no model conv9 with a target accuracy; choose from conv1, conv2, conv3"]
