"""The train / validation / test files the split stage writes and the later stages read."""

import zipfile
from pathlib import Path

import numpy as np

from stages.common.errors import PipelineError, written_by
from stages.common.inputs import DATA_LIMIT, check_archive, check_file, check_npy_header


def save_split(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    np.savez(path, images=images, labels=labels)


def load_split(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images with a channel axis (N, 28, 28, 1), as the models take them, and labels."""
    with written_by("split stage", path):
        check_file(path, DATA_LIMIT, "a data file")
        _check_archive(path)
        with np.load(path, allow_pickle=False) as data:
            images, labels = data["images"], data["labels"]
    if images.ndim != 3 or labels.shape != images.shape[:1]:
        raise PipelineError(f"{path} holds images of shape {images.shape} and labels of shape {labels.shape}, "
                            "not what the split stage writes; delete it and run the split stage again")
    return images[..., np.newaxis], labels


def _check_archive(path: Path) -> None:
    check_archive(path, DATA_LIMIT, "a data file")
    # numpy reads an .npz member without checking its CRC, so damage inside a file
    # (rather than a cut-off end) would load as wrong pixels; zipfile checks every CRC.
    # It would also allocate whatever a member's header claims before finding it short.
    with zipfile.ZipFile(path) as archive:
        for member in archive.infolist():
            with archive.open(member) as array:
                check_npy_header(array, member.file_size)
        damaged = archive.testzip()
    if damaged:
        raise zipfile.BadZipFile(f"member {damaged} fails its checksum")
