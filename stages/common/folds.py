"""Stratified k-fold cross-validation over the training portion (train + validation, never test)."""

import numpy as np

from stages.common.errors import PipelineError


def stratified_folds(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """The fold (0 to folds - 1) of each image. Each class, shuffled, is dealt round-robin over the
    folds, starting where the previous class stopped: every fold holds each class's share give or
    take one image, and the folds' sizes differ by at most one."""
    smallest = int(np.unique(labels, return_counts=True)[1].min()) if len(labels) else 0
    if folds > smallest:
        raise PipelineError(f"cv.folds={folds} needs at least {folds} images of every class, and the training "
                            f"portion has {smallest} of its smallest class; choose cv.folds of at most {smallest}")
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(labels), dtype=np.int64)
    dealt = 0
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        fold_of[members] = (dealt + np.arange(len(members))) % folds
        dealt += len(members)
    return fold_of
