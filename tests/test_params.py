import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stages.common.params import ParamsError, as_set_args, load_params, parse_override, validate

DEFAULTS = yaml.safe_load(Path("params.yaml").read_text())


def with_change(path: str, value) -> dict:
    config = yaml.safe_load(Path("params.yaml").read_text())
    *parents, leaf = path.split(".")
    node = config
    for part in parents:
        node = node[part]
    if value is DELETE:
        del node[leaf]
    else:
        node[leaf] = value
    return config


DELETE = object()


def test_committed_params_are_valid():
    assert validate(DEFAULTS) == DEFAULTS


@pytest.mark.parametrize(
    "path, value, expected",
    [
        ("learning_rate", 0.1, r"top level: Additional properties are not allowed \('learning_rate' was unexpected\)"),
        ("train.schedul", "cosine", r"train: Additional properties .*'schedul'"),
        ("lr", "fast", r"lr: 'fast' is not of type 'number'"),
        ("epochs", 2.5, r"epochs: 2.5 is not of type 'integer'"),
        ("lr", 0, r"lr: 0 is less than or equal to the minimum of 0"),
        ("lr", -0.1, r"lr: -0.1 is less than or equal to the minimum of 0"),
        ("split.test_size", 0, r"split.test_size: 0 is less than or equal to the minimum of 0"),
        ("split.test_size", 1, r"split.test_size: 1 is greater than or equal to the maximum of 1"),
        ("optimizer", "adagrad", r"optimizer: 'adagrad' is not one of \['adam', 'adamw', 'sgd', 'rmsprop'\]"),
        ("models.4_layer", {"conv_dropout": 0.1}, r"models: Additional properties .*'4_layer'"),
        ("data.files.train_images.sha256", "abc", r"data.files.train_images.sha256: 'abc' does not match"),
        ("data.mirrors", ["ftp://x/"], r"data.mirrors.0: 'ftp://x/' does not match"),
        ("seed", DELETE, r"top level: 'seed' is a required property"),
    ],
)
def test_bad_params_name_the_key_and_the_fix(path, value, expected):
    with pytest.raises(ParamsError, match=expected) as error:
        validate(with_change(path, value))
    assert str(error.value).endswith("; fix it in params.yaml")
    assert "\n" not in str(error.value)


def test_overrides_use_dvc_set_syntax(tmp_path):
    params = load_params("params.yaml", ["lr=0.01", "train.schedule=step", "models.1_layer={conv_dropout: 0.5}"])
    assert params["lr"] == 0.01
    assert params["train"]["schedule"] == "step"
    assert params["models"]["1_layer"] == {"conv_dropout": 0.5}


def test_override_is_validated_too():
    with pytest.raises(ParamsError, match="lr: -1 is less than or equal"):
        load_params("params.yaml", ["lr=-1"])


@pytest.mark.parametrize("text", ["lr", "=3", "lr=[unclosed"])
def test_malformed_override(text):
    with pytest.raises(ParamsError, match="override"):
        parse_override(text)


def test_override_into_a_missing_section_is_an_error():
    with pytest.raises(ParamsError, match="'nosuch' is not a section"):
        load_params("params.yaml", ["nosuch.key=1"])


def test_set_args_round_trip_to_the_same_values():
    changed = with_change("lr", 0.0123)
    args = shlex.split(as_set_args(changed, ["lr", "data", "models.3_layer"]))
    overrides = args[1::2]
    assert args[0::2] == ["--set"] * 3
    assert load_params("params.yaml", overrides) == changed


def test_unreadable_or_invalid_yaml(tmp_path):
    with pytest.raises(ParamsError, match="cannot read params file"):
        load_params(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("lr: [0.1\n")
    with pytest.raises(ParamsError, match="is not valid YAML"):
        load_params(broken)


def test_stage_cli_exits_1_with_one_line_and_writes_nothing(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text(yaml.safe_dump(with_change("split.test_size", 1.5)))
    result = subprocess.run(
        [sys.executable, "-m", "stages.split", "--params", str(bad),
         "--interim", str(tmp_path / "interim"), "--out", str(tmp_path / "processed")],
        capture_output=True, text=True,
    )
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("error: invalid ") and "split.test_size" in result.stderr
    assert not (tmp_path / "processed").exists()
