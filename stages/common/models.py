"""The design's CNNs, built from their `models.<name>` settings in params.yaml.

Every model has the same shape, read top to bottom: one Conv2D(3x3, relu) per entry of
`conv_filters`, the first followed by MaxPool(2), each followed by Dropout(conv_dropout);
then Flatten, Dense(dense_units, relu), Dropout(dense_dropout) where that is above zero,
and the 10-way softmax. params.yaml's conv1 / conv2 / conv3 are the design's 1-, 2- and
3-conv-layer networks; their parameter counts (173,738 / 515,146 / 1,421,194) are fixed by
the design and checked by tests/test_models.py.
"""

from typing import Any

from stages.common.tensorflow import keras

INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 10


def build_model(name: str, settings: dict[str, Any]) -> keras.Sequential:
    """The model called `name` (a key of `models` in params.yaml), built from its settings."""
    # Layers are named, not numbered by Keras's per-process counter, so the same model
    # saves to the same bytes whatever was built before it.
    model = keras.Sequential(name=name)
    model.add(keras.Input(shape=INPUT_SHAPE, name="image"))
    for number, filters in enumerate(settings["conv_filters"], start=1):
        model.add(keras.layers.Conv2D(filters, kernel_size=(3, 3), activation="relu", name=f"conv{number}"))
        if number == 1:
            model.add(keras.layers.MaxPooling2D(pool_size=(2, 2), name="pool"))
        model.add(keras.layers.Dropout(settings["conv_dropout"], name=f"conv{number}_dropout"))
    model.add(keras.layers.Flatten(name="flatten"))
    model.add(keras.layers.Dense(settings["dense_units"], activation="relu", name="dense"))
    if settings["dense_dropout"] > 0:  # no layer at all at 0, as in the design's smaller two models
        model.add(keras.layers.Dropout(settings["dense_dropout"], name="dense_dropout"))
    model.add(keras.layers.Dense(NUM_CLASSES, activation="softmax", name="output"))
    return model
