"""Stage `normalize`: parse the four IDX files, join train and test, scale pixels to [0, 1].

All 70,000 images are scaled the same way (divided by 255, as float32), so the split
that follows may mix the original train and test sets freely.

    python -m stages.normalize --raw data/raw --out data/interim

Writes `images.npy` (float32, N x 28 x 28) and `labels.npy` (uint8, N).
"""

from pathlib import Path

import numpy as np

from stages.common import cli
from stages.common.errors import PipelineError, written_by
from stages.common.files import atomic_dir
from stages.common.idx import IMAGES_MAGIC, LABELS_MAGIC, parse_idx, raw_name
from stages.common.inputs import DATA_LIMIT, read_bytes

NUM_CLASSES = 10


def main(raw_dir: Path, files: dict[str, dict[str, str]], out_dir: Path) -> None:
    """Read {train,test}_{images,labels} named in `files` from `raw_dir`; write the scaled arrays."""
    parts = [read_pair(raw_dir, files[f"{part}_images"]["name"], files[f"{part}_labels"]["name"])
             for part in ("train", "test")]
    if parts[0][0].shape[1:] != parts[1][0].shape[1:]:
        raise PipelineError(
            f"train images are {parts[0][0].shape[1:]} pixels but test images are "
            f"{parts[1][0].shape[1:]}; the raw files do not belong together, check data.files"
        )
    images = scale(np.concatenate([images for images, _ in parts]))
    labels = np.concatenate([labels for _, labels in parts])
    with atomic_dir(out_dir) as tmp:
        np.save(tmp / "images.npy", images)
        np.save(tmp / "labels.npy", labels)


def read_pair(raw_dir: Path, images_name: str, labels_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Parse one images/labels pair, checking that counts agree and labels are classes 0-9."""
    images_path, labels_path = raw_dir / raw_name(images_name), raw_dir / raw_name(labels_name)
    with written_by("download stage (dvc repro download)"):
        images_bytes = read_bytes(images_path, DATA_LIMIT, "an IDX file")
        labels_bytes = read_bytes(labels_path, DATA_LIMIT, "an IDX file")
    images = parse_idx(images_bytes, IMAGES_MAGIC, str(images_path))
    labels = parse_idx(labels_bytes, LABELS_MAGIC, str(labels_path))
    if images.ndim != 3 or labels.ndim != 1:
        raise PipelineError(
            f"{images_path} must hold 3-D images and {labels_path} 1-D labels, got "
            f"{images.ndim}-D and {labels.ndim}-D; check data.files"
        )
    if len(images) != len(labels):
        raise PipelineError(
            f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels; "
            "the files do not belong together, check data.files"
        )
    if labels.size and labels.max() >= NUM_CLASSES:
        raise PipelineError(f"{labels_path} has label {labels.max()}; Fashion-MNIST labels are 0-9")
    return images, labels


def scale(images: np.ndarray) -> np.ndarray:
    """uint8 pixels to float32 in [0, 1]."""
    return images.astype(np.float32) / np.float32(255)


def _cli() -> None:
    parser = cli.stage_parser(__doc__)
    parser.add_argument("--raw", type=Path, required=True, help="folder of decompressed IDX files")
    parser.add_argument("--out", type=Path, required=True, help="folder for images.npy and labels.npy")
    args = parser.parse_args()
    main(args.raw, cli.params_from(args)["data"]["files"], args.out)


if __name__ == "__main__":
    cli.run(_cli)
