from pathlib import Path

import pytest

from stages.common.errors import PipelineError
from stages.common.models import INPUT_SHAPE, build_model, check_model_is, keras, load_trained_model
from stages.common.params import load_params
from tests.bounded import time_limit

SETTINGS = load_params(Path("params.yaml"))["models"]


@pytest.mark.parametrize("name, expected, convs", [("conv1", 173_738, 1), ("conv2", 515_146, 2),
                                                   ("conv3", 1_421_194, 3)])
def test_parameter_counts_and_depth_match_the_design(name, expected, convs):
    model = build_model(name, SETTINGS[name])
    assert model.count_params() == expected
    assert model.name == name
    assert model.output_shape == (None, 10)
    assert sum(type(layer).__name__ == "Conv2D" for layer in model.layers) == convs


def test_params_yaml_holds_exactly_the_designs_models():
    assert list(SETTINGS) == ["conv1", "conv2", "conv3"]


@pytest.mark.parametrize("name, layers", [
    ("conv1", ["Conv2D", "MaxPooling2D", "Dropout", "Flatten", "Dense", "Dense"]),
    ("conv2", ["Conv2D", "MaxPooling2D", "Dropout", "Conv2D", "Dropout", "Flatten", "Dense", "Dense"]),
    ("conv3", ["Conv2D", "MaxPooling2D", "Dropout", "Conv2D", "Dropout", "Conv2D", "Dropout", "Flatten",
               "Dense", "Dropout", "Dense"]),
])
def test_layers_in_the_designs_order(name, layers):
    assert [type(layer).__name__ for layer in build_model(name, SETTINGS[name]).layers] == layers


def test_dropout_rates_come_from_settings():
    model = build_model("x", {"conv_filters": [32, 64, 128], "dense_units": 128,
                              "conv_dropout": 0.11, "dense_dropout": 0.22})
    assert [layer.rate for layer in model.layers if hasattr(layer, "rate")] == [0.11, 0.11, 0.11, 0.22]


def test_a_model_that_carries_code_is_refused_for_safety_with_how_to_load_it_if_trusted(tmp_path):
    # Keras's safe mode refuses to load a Lambda layer's Python function: loading would run it.
    model = keras.Sequential([keras.Input(shape=INPUT_SHAPE), keras.layers.Lambda(lambda images: images * 2),
                              keras.layers.Flatten(), keras.layers.Dense(10)])
    model.save(tmp_path / "lambda.keras")
    with pytest.raises(PipelineError, match=(
            r"lambda.keras contains code \(a Lambda layer or another arbitrary Python object\) that loading it "
            r"would run, so it is refused for safety; run the train stage again, or, only if you trust its source, "
            r"load it in your own code with keras.models.load_model\(path, safe_mode=False\)$")):
        load_trained_model(tmp_path / "lambda.keras", "run the train stage again")


@pytest.mark.parametrize("kind", ["character device", "directory"])
def test_a_model_path_that_is_not_a_file_is_refused_unread(tmp_path, kind):
    # What the evaluate stage says for `--model-file /dev/zero` (tests/test_failures.py runs that as a process,
    # under a memory limit). /dev/null here: were the check gone, reading it would end, where /dev/zero's never does.
    path = Path("/dev/null") if kind == "character device" else tmp_path
    with time_limit(10), pytest.raises(PipelineError, match=f"^{path} is a {kind}, not a file; give the path of a "
                                                            "Keras model$"):
        load_trained_model(path, "run the train stage again")


MODELS = load_params("params.yaml")["models"]


def test_the_model_params_describe_passes_its_check():
    for name, settings in MODELS.items():
        check_model_is(build_model(name, settings), name, settings, Path(f"models/{name}.keras"), "fix")


def test_another_model_under_a_models_name_is_refused():
    # The probe's case: a conv2 saved as models/conv1.keras was scored, and its parameters recorded, as conv1's.
    with pytest.raises(PipelineError, match=r"^models/conv1.keras holds model 'conv2' \(515,146 parameters\), "
                                            r"not conv1; fix$"):
        check_model_is(build_model("conv2", MODELS["conv2"]), "conv1", MODELS["conv1"], Path("models/conv1.keras"),
                       "fix")


@pytest.mark.parametrize("change, layer", [
    ({"dense_units": 64}, r"its layer 5 is Dense\(units=64, activation=relu\), where models.conv1 makes "
                          r"Dense\(units=32, activation=relu\)"),
    ({"conv_filters": [32, 64]}, r"\(\d[\d,]* parameters, not 173,738\): its layer 4 is Conv2D"),
    ({"dense_dropout": 0.5}, r"its layer 6 is Dropout\(rate=0.5\), where models.conv1 makes Dense"),
], ids=["dense-units", "conv-layers", "dropout-layer"])
def test_a_model_built_with_other_settings_under_the_same_name_is_refused(change, layer):
    model = build_model("conv1", {**MODELS["conv1"], **change})
    with pytest.raises(PipelineError, match=f"is not conv1 as the params describe it.*{layer}.*; fix$"):
        check_model_is(model, "conv1", MODELS["conv1"], Path("models/conv1.keras"), "fix")
    check_model_is(model, "conv1", None, Path("models/conv1.keras"), "fix")  # its name alone is right
