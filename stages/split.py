"""Stage `split`: a seeded, stratified split into train, validation and test sets.

`split.test_size` of all images go to test; `split.validation_size` of the rest to
validation (which steers training); the remainder is train. Each class keeps its share
in every set.

    python -m stages.split --interim data/interim --out data/processed

Writes `train.npz`, `validation.npz` and `test.npz`, each with `images` and `labels`.
"""

from pathlib import Path

import numpy as np

from stages.common import cli
from stages.common.errors import PipelineError, written_by
from stages.common.files import atomic_dir
from stages.common.inputs import DATA_LIMIT, load_npy
from stages.common.splits import save_split


def main(interim_dir: Path, out_dir: Path, test_size: float, validation_size: float, seed: int) -> None:
    images, labels = (_load(interim_dir / name) for name in ("images.npy", "labels.npy"))
    rng = np.random.default_rng(seed)
    test, rest = stratified_split(labels, test_size, rng)
    validation, train = (rest[part] for part in stratified_split(labels[rest], validation_size, rng))
    for name, indices in (("train", train), ("validation", validation), ("test", test)):
        check_every_class(name, labels, labels[indices], test_size, validation_size)
    with atomic_dir(out_dir) as tmp:
        for name, indices in (("train", train), ("validation", validation), ("test", test)):
            save_split(tmp / f"{name}.npz", images[indices], labels[indices])


def stratified_split(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices (held_out, kept): `fraction` of each class, rounded, is held out; both shuffled."""
    held_out, kept = [], []
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        cut = round(len(members) * fraction)
        held_out.append(members[:cut])
        kept.append(members[cut:])
    return rng.permutation(np.concatenate(held_out)), rng.permutation(np.concatenate(kept))


def check_every_class(name: str, labels: np.ndarray, part: np.ndarray, test_size: float,
                      validation_size: float) -> None:
    """Refuse a split that leaves a class out of a set: training or scoring without it is meaningless."""
    missing = sorted(set(np.unique(labels)) - set(np.unique(part)))
    if missing:
        raise PipelineError(
            f"split.test_size={test_size} and split.validation_size={validation_size} leave no image of "
            f"class {', '.join(map(str, missing))} in the {name} set ({len(part)} images); "
            "choose sizes that keep every class in every set"
        )


def _load(path: Path) -> np.ndarray:
    with written_by("normalize stage", path):
        return load_npy(path, DATA_LIMIT, "a data file")


def _cli() -> None:
    parser = cli.stage_parser(__doc__)
    parser.add_argument("--interim", type=Path, required=True, help="folder with images.npy, labels.npy")
    parser.add_argument("--out", type=Path, required=True, help="folder for train/validation/test .npz")
    args = parser.parse_args()
    params = cli.params_from(args)
    main(args.interim, args.out, params["split"]["test_size"], params["split"]["validation_size"], params["seed"])


if __name__ == "__main__":
    cli.run(_cli)
