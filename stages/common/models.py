"""The design's CNNs, built from their `models.<name>` settings in params.yaml.

Every model has the same shape, read top to bottom: one Conv2D(3x3, relu) per entry of
`conv_filters`, the first followed by MaxPool(2), each followed by Dropout(conv_dropout);
then Flatten, Dense(dense_units, relu), Dropout(dense_dropout) where that is above zero,
and the 10-way softmax. params.yaml's conv1 / conv2 / conv3 are the design's 1-, 2- and
3-conv-layer networks; their parameter counts (173,738 / 515,146 / 1,421,194) are fixed by
the design and checked by tests/test_models.py.
"""

import zipfile
from pathlib import Path
from typing import Any

from stages.common.errors import PipelineError
from stages.common.inputs import MODEL_LIMIT, check_archive, check_file
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


# What makes a layer the layer params.yaml describes; the rest of a layer's config is Keras's.
_SHAPING = ("filters", "kernel_size", "pool_size", "rate", "units", "activation")


def check_model_is(model: keras.Model, name: str, settings: dict[str, Any] | None, path: Path, fix: str) -> None:
    """PipelineError unless `model` (loaded from `path`) is the model `name`: built under that name
    (build_model names every model after its key) and, where `settings` are given, with the layers
    build_model makes of them. A conv2 saved as conv1.keras was scored, and its parameters
    recorded, as conv1's."""
    if model.name != name:
        raise PipelineError(f"{path} holds model {model.name!r} ({model.count_params():,} parameters), "
                            f"not {name}; {fix}")
    if settings is None:
        return
    expected = build_model(name, settings)
    found, wanted = _layers(model), _layers(expected)
    if found != wanted:
        where = next((number for number, pair in enumerate(zip(found, wanted), start=1) if pair[0] != pair[1]),
                     min(len(found), len(wanted)) + 1)
        shown = {"found": found[where - 1] if where <= len(found) else "no layer",
                 "wanted": wanted[where - 1] if where <= len(wanted) else "no layer"}
        counts = (f" ({model.count_params():,} parameters, not {expected.count_params():,})"
                  if model.count_params() != expected.count_params() else "")
        raise PipelineError(f"{path} is not {name} as the params describe it{counts}: its layer {where} is "
                            f"{shown['found']}, where models.{name} makes {shown['wanted']}; {fix}")


def _layers(model: keras.Model) -> list[str]:
    described = []
    for layer in model.layers:
        config = layer.get_config()
        shaping = ", ".join(f"{key}={config[key]}" for key in _SHAPING if key in config)
        described.append(f"{type(layer).__name__}({shaping})")
    return described


def load_trained_model(path: Path, fix: str) -> keras.Model:
    """A model saved by the train stage, for inference; `fix` tells the user what to do when `path` is not one."""
    try:
        check_file(path, MODEL_LIMIT, "a Keras model")
    except FileNotFoundError:
        raise PipelineError(f"{path} is missing; {fix}") from None
    if not zipfile.is_zipfile(path):  # Keras would call it "not found"
        raise PipelineError(f"{path} is not a Keras model (not a .keras zip archive); {fix}")
    check_archive(path, MODEL_LIMIT, "a Keras model")
    try:
        model = keras.models.load_model(path, compile=False)  # losses are computed by the stages, not Keras
    except Exception as exc:  # Keras raises many kinds for an archive that is not a model
        if "safe_mode" in str(exc):  # Keras's safe mode refused to run code stored in the file
            raise PipelineError(
                f"{path} contains code (a Lambda layer or another arbitrary Python object) that loading it would "
                f"run, so it is refused for safety; {fix}, or, only if you trust its source, load it in your own "
                f"code with keras.models.load_model(path, safe_mode=False)") from None
        raise PipelineError(f"{path} is not a Keras model ({type(exc).__name__}); {fix}") from None
    if tuple(model.input_shape[1:]) != INPUT_SHAPE:
        raise PipelineError(f"{path} takes input of shape {model.input_shape[1:]}, not {INPUT_SHAPE}; {fix}")
    return model
