import numpy as np
import pytest

from stages.common.scores import accuracy, cross_entropy


def test_loss_is_plain_cross_entropy():
    probabilities = np.array([[0.5, 0.5, 0.0], [0.25, 0.0, 0.75]])
    assert cross_entropy(probabilities, np.array([0, 2])) == pytest.approx(-(np.log(0.5) + np.log(0.75)) / 2)
    assert cross_entropy(probabilities, np.array([2, 1])) == pytest.approx(-np.log(1e-7))  # clipped, not inf


def test_accuracy_is_the_share_of_rows_whose_largest_probability_is_the_label():
    probabilities = np.array([[0.6, 0.3, 0.1], [0.2, 0.3, 0.5], [0.1, 0.8, 0.1], [0.4, 0.4, 0.2]])
    assert accuracy(probabilities, np.array([0, 2, 0, 1])) == 0.5
