"""Scores of a model's predicted class probabilities, shared by evaluation and cross-validation."""

import numpy as np


def accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(probabilities.argmax(axis=1) == labels))


def cross_entropy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean -log p(true class): the plain loss, whatever label smoothing training used."""
    true_class = probabilities[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.clip(true_class, 1e-7, 1.0))))
