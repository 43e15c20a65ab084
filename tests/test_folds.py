import numpy as np
import pytest

from stages.common.errors import PipelineError
from stages.common.folds import stratified_folds

LABELS = np.repeat(np.arange(10), [13, 10, 11, 10, 12, 10, 10, 17, 10, 10])


@pytest.mark.parametrize("folds", [2, 3, 5, 10])
def test_folds_are_disjoint_stratified_and_cover_everything_once(folds):
    fold_of = stratified_folds(LABELS, folds, seed=0)
    assert fold_of.shape == LABELS.shape  # one fold per image: disjoint, and each image in exactly one
    assert set(fold_of) == set(range(folds))
    sizes = np.bincount(fold_of, minlength=folds)
    assert sizes.max() - sizes.min() <= 1
    for cls in range(10):  # each class split as evenly as it can be
        per_fold = np.bincount(fold_of[cls == LABELS], minlength=folds)
        assert per_fold.max() - per_fold.min() <= 1


def test_the_seed_decides_the_folds():
    assert np.array_equal(stratified_folds(LABELS, 5, seed=1), stratified_folds(LABELS, 5, seed=1))
    assert not np.array_equal(stratified_folds(LABELS, 5, seed=1), stratified_folds(LABELS, 5, seed=2))


def test_more_folds_than_the_smallest_class_has_images_is_refused():
    with pytest.raises(PipelineError, match=r"^cv.folds=11 needs at least 11 images of every class, and the "
                                            r"training portion has 10 of its smallest class; choose cv.folds of "
                                            r"at most 10$"):
        stratified_folds(LABELS, 11, seed=0)
