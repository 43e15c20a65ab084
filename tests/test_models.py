import pytest
import yaml
from pathlib import Path

from stages.common.errors import PipelineError
from stages.common.models import MODELS, build_model

SETTINGS = yaml.safe_load(Path("params.yaml").read_text())["models"]


@pytest.mark.parametrize("name, expected", [("1_layer", 173_738), ("2_layer", 515_146), ("3_layer", 1_421_194)])
def test_parameter_counts_match_the_design(name, expected):
    model = build_model(name, SETTINGS[name])
    assert model.count_params() == expected
    assert model.name == name
    assert model.output_shape == (None, 10)


def test_conv_depth_grows():
    depth = {name: sum(layer.__class__.__name__ == "Conv2D" for layer in build_model(name, SETTINGS[name]).layers)
             for name in MODELS}
    assert depth == {"1_layer": 1, "2_layer": 2, "3_layer": 3}


def test_dropout_rates_come_from_settings():
    model = build_model("3_layer", {"conv_dropout": 0.11, "dense_dropout": 0.22})
    assert [layer.rate for layer in model.layers if hasattr(layer, "rate")] == [0.11, 0.11, 0.11, 0.22]


def test_unknown_model():
    with pytest.raises(PipelineError, match="unknown model '4_layer'; choose one of 1_layer, 2_layer, 3_layer"):
        build_model("4_layer", {})


def test_params_yaml_and_module_agree_on_models():
    assert list(SETTINGS) == list(MODELS)
