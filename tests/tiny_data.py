"""Tiny Fashion-MNIST look-alikes: real IDX files, gzipped, with their checksums."""

import gzip
import hashlib
from pathlib import Path

import numpy as np

from stages.common.idx import to_idx

GZ_NAMES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}


def tiny_arrays(n_train: int = 100, n_test: int = 50, seed: int = 0) -> dict[str, np.ndarray]:
    """28x28 uint8 images whose brightness pattern depends on the class, every class equally often."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for part, count in (("train", n_train), ("test", n_test)):
        labels = np.arange(count, dtype=np.uint8) % 10
        rng.shuffle(labels)
        images = rng.integers(0, 60, size=(count, 28, 28), dtype=np.uint8)
        for i, label in enumerate(labels):
            images[i, label * 2: label * 2 + 8, :] = 250  # a class-specific bright band
        arrays[f"{part}_images"], arrays[f"{part}_labels"] = images, labels
    return arrays


def idx_bytes(arrays: dict[str, np.ndarray]) -> dict[str, bytes]:
    return {role: to_idx(array) for role, array in arrays.items()}


def files_spec(raw: dict[str, bytes]) -> dict[str, dict[str, str]]:
    """`data.files` for params.yaml: each role's name and the SHA-256 of its decompressed bytes."""
    return {role: {"name": GZ_NAMES[role], "sha256": hashlib.sha256(data).hexdigest()}
            for role, data in raw.items()}


def write_mirror(folder: Path, raw: dict[str, bytes]) -> Path:
    """Write the gzipped files into `folder`, as a mirror serves them."""
    folder.mkdir(parents=True, exist_ok=True)
    for role, data in raw.items():
        (folder / GZ_NAMES[role]).write_bytes(gzip.compress(data))
    return folder


# A small conv1-shaped model for fast training tests.
TINY_MODEL = {"conv_filters": [32], "dense_units": 32, "conv_dropout": 0.1, "dense_dropout": 0}
