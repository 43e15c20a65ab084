"""The train / validation / test files the split stage writes and the later stages read."""

import zipfile
from pathlib import Path

import numpy as np

from stages.common.errors import PipelineError, written_by


def save_split(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    np.savez(path, images=images, labels=labels)


def load_split(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images with a channel axis (N, 28, 28, 1), as the models take them, and labels."""
    with written_by("split stage", path):
        _check_archive(path)
        with np.load(path, allow_pickle=False) as data:
            images, labels = data["images"], data["labels"]
    if images.ndim != 3 or labels.shape != images.shape[:1]:
        raise PipelineError(f"{path} holds images of shape {images.shape} and labels of shape {labels.shape}, "
                            "not what the split stage writes; delete it and run the split stage again")
    return images[..., np.newaxis], labels


def _check_archive(path: Path) -> None:
    # numpy reads an .npz member without checking its CRC, so damage inside a file
    # (rather than a cut-off end) would load as wrong pixels; zipfile checks every CRC.
    with zipfile.ZipFile(path) as archive:
        damaged = archive.testzip()
    if damaged:
        raise zipfile.BadZipFile(f"member {damaged} fails its checksum")
