"""The three CNNs of the design, from one to three convolutional layers.

Each is a plain `keras.Sequential`; the parameter counts are fixed by the design
(173,738 / 515,146 / 1,421,194) and checked by tests/test_models.py.
"""

from typing import Any, Callable

import keras
from keras import layers

from stages.common.errors import PipelineError

INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 10


def one_layer(conv_dropout: float) -> keras.Sequential:
    return keras.Sequential(
        [
            keras.Input(shape=INPUT_SHAPE),
            layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Dropout(conv_dropout),
            layers.Flatten(),
            layers.Dense(32, activation="relu"),
            layers.Dense(NUM_CLASSES, activation="softmax"),
        ],
        name="1_layer",
    )


def two_layer(conv_dropout: float) -> keras.Sequential:
    return keras.Sequential(
        [
            keras.Input(shape=INPUT_SHAPE),
            layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Dropout(conv_dropout),
            layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            layers.Dropout(conv_dropout),
            layers.Flatten(),
            layers.Dense(64, activation="relu"),
            layers.Dense(NUM_CLASSES, activation="softmax"),
        ],
        name="2_layer",
    )


def three_layer(conv_dropout: float, dense_dropout: float) -> keras.Sequential:
    return keras.Sequential(
        [
            keras.Input(shape=INPUT_SHAPE),
            layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Dropout(conv_dropout),
            layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            layers.Dropout(conv_dropout),
            layers.Conv2D(128, kernel_size=(3, 3), activation="relu"),
            layers.Dropout(conv_dropout),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dropout(dense_dropout),
            layers.Dense(NUM_CLASSES, activation="softmax"),
        ],
        name="3_layer",
    )


MODELS: dict[str, Callable[..., keras.Sequential]] = {
    "1_layer": one_layer,
    "2_layer": two_layer,
    "3_layer": three_layer,
}


def build_model(name: str, settings: dict[str, Any]) -> keras.Sequential:
    """The model called `name`, built with its `models.<name>` settings from params.yaml."""
    if name not in MODELS:
        raise PipelineError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[name](**settings)
