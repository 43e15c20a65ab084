"""The train / validation / test files the split stage writes and the later stages read."""

from pathlib import Path

import numpy as np

from stages.common.errors import written_by


def save_split(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    np.savez(path, images=images, labels=labels)


def load_split(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images with a channel axis (N, 28, 28, 1), as the models take them, and labels."""
    with written_by("split stage"), np.load(path) as data:
        return data["images"][..., np.newaxis], data["labels"]
