import os

import numpy as np
import pytest

from stages import normalize
from stages.common.errors import PipelineError
from stages.common.idx import raw_name, to_idx
from tests.bounded import time_limit
from tests.tiny_data import GZ_NAMES, files_spec, idx_bytes, tiny_arrays

ARRAYS = tiny_arrays(n_train=30, n_test=20)
FILES = files_spec(idx_bytes(ARRAYS))


def write_raw(folder, arrays=ARRAYS):
    folder.mkdir(parents=True, exist_ok=True)
    for role, array in arrays.items():
        (folder / raw_name(GZ_NAMES[role])).write_bytes(to_idx(array))
    return folder


def test_joins_train_and_test_and_scales_to_unit_range(tmp_path):
    normalize.main(write_raw(tmp_path / "raw"), FILES, tmp_path / "interim")
    images = np.load(tmp_path / "interim" / "images.npy")
    labels = np.load(tmp_path / "interim" / "labels.npy")
    assert images.dtype == np.float32 and images.shape == (50, 28, 28)
    expected = np.concatenate([ARRAYS["train_images"], ARRAYS["test_images"]]) / 255
    np.testing.assert_allclose(images, expected, rtol=1e-6)
    assert images.min() >= 0 and images.max() <= 1
    np.testing.assert_array_equal(labels, np.concatenate([ARRAYS["train_labels"], ARRAYS["test_labels"]]))


def test_scale_maps_extremes():
    np.testing.assert_array_equal(normalize.scale(np.array([0, 255], dtype=np.uint8)), [0.0, 1.0])


def test_count_mismatch_is_an_error_and_writes_nothing(tmp_path):
    arrays = dict(ARRAYS, test_labels=ARRAYS["test_labels"][:-1])
    with pytest.raises(PipelineError, match="has 20 images but .* has 19 labels"):
        normalize.main(write_raw(tmp_path / "raw", arrays), FILES, tmp_path / "interim")
    assert not (tmp_path / "interim").exists()


def test_swapped_files_fail_on_magic(tmp_path):
    raw = write_raw(tmp_path / "raw")
    images, labels = raw / "t10k-images-idx3-ubyte", raw / "t10k-labels-idx1-ubyte"
    images_bytes = images.read_bytes()
    images.write_bytes(labels.read_bytes())
    labels.write_bytes(images_bytes)
    with pytest.raises(PipelineError, match="wrong IDX magic"):
        normalize.main(raw, FILES, tmp_path / "interim")


def test_label_out_of_range(tmp_path):
    arrays = dict(ARRAYS, train_labels=np.full(30, 12, dtype=np.uint8))
    with pytest.raises(PipelineError, match="label 12"):
        normalize.main(write_raw(tmp_path / "raw", arrays), FILES, tmp_path / "interim")


def test_missing_raw_file_says_what_to_run(tmp_path):
    raw = write_raw(tmp_path / "raw")
    (raw / "train-images-idx3-ubyte").unlink()
    with pytest.raises(PipelineError, match="missing; run the download stage"):
        normalize.main(raw, FILES, tmp_path / "interim")


@pytest.mark.parametrize("kind, refusal", [
    ("fifo", r"is a named pipe \(FIFO\), not a file; give the path of an IDX file"),
    ("oversized", r"is 1 GiB, over the 837 MiB limit for an IDX file; check that it is the right file"),
])
def test_a_raw_file_that_is_not_a_file_or_is_too_large_is_refused_unread(tmp_path, kind, refusal):
    raw = write_raw(tmp_path / "raw")
    (raw / "train-images-idx3-ubyte").unlink()
    if kind == "fifo":
        os.mkfifo(raw / "train-images-idx3-ubyte")
    else:
        with (raw / "train-images-idx3-ubyte").open("wb") as file:
            file.truncate(1 << 30)  # sparse: costs nothing to make, and would cost 1 GiB to read
    with time_limit(5), pytest.raises(PipelineError, match=f"train-images-idx3-ubyte {refusal}$"):
        normalize.main(raw, FILES, tmp_path / "interim")


def test_does_not_import_tensorflow():
    import subprocess
    import sys

    code = ("import sys, stages.normalize, stages.split, stages.download, stages.report; "
            "print('tensorflow' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
