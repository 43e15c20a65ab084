import copy
import functools
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stages.common.errors import PipelineError
from stages.common.params import ParamsError, as_set_args, load_params, parse_override, snakemake_params, validate
from tests.bounded import one_error_line, run_stage, time_limit

TEXT = Path("params.yaml").read_text()
DELETE = object()


def text_with(key: str, value: str) -> str:
    """params.yaml's text with the first `key:` line's value written as `value`, whatever the value
    is now: `dvc exp run -S epochs=1` leaves the workspace's params.yaml with epochs: 1."""
    text, found = re.subn(rf"^(\s*{key}:) [^\s#]+", rf"\g<1> {value}", TEXT, count=1, flags=re.MULTILINE)
    assert found, f"params.yaml has no '{key}:' line"
    return text


def defaults() -> dict:
    return load_params("params.yaml")


@functools.cache
def _committed() -> dict:
    return load_params("params.yaml")


def with_change(path: str, value) -> dict:
    """The committed params with one change: read once, copied for each test (reading takes 0.1 s)."""
    config = copy.deepcopy(_committed())
    *parents, leaf = path.split(".")
    node = config
    for part in parents:
        node = node[part]
    if value is DELETE:
        del node[leaf]
    else:
        node[leaf] = value
    return config


def write_params(folder: Path, text: str) -> Path:
    path = folder / "params.yaml"
    path.write_text(text)
    return path


def test_committed_params_are_valid():
    assert validate(defaults()) == defaults()


@pytest.mark.parametrize(
    "path, value, expected",
    [
        ("learning_rate", 0.1, r"top level: Additional properties are not allowed \('learning_rate' was unexpected\)"),
        ("train.schedul", "cosine", r"train: Additional properties .*'schedul'"),
        ("lr", "fast", r"lr: 'fast' is not a number; write it like 0.001 or 1e-3"),
        ("lr", "5e-05", r"lr: '5e-05' is not a number"),
        ("epochs", 2.5, r"epochs: 2.5 is not an integer; write a whole number"),
        ("epochs", 10.0, r"epochs: 10.0 is not an integer"),
        ("train.nesterov", "yes", r"train.nesterov: 'yes' is not a boolean; write true or false"),
        ("train.nesterov", 1, r"train.nesterov: 1 is not a boolean"),
        ("lr", 0, r"lr: 0 is less than or equal to the minimum of 0"),
        ("lr", -0.1, r"lr: -0.1 is less than or equal to the minimum of 0"),
        ("split.test_size", 0, r"split.test_size: 0 is less than or equal to the minimum of 0"),
        ("split.test_size", 0.9999, r"split.test_size: 0.9999 is greater than the maximum of 0.5"),
        ("optimizer", "adagrad", r"optimizer: 'adagrad' is not one of \['adam', 'adamw', 'sgd', 'rmsprop'\]"),
        ("models.4_layer", {}, r"models: '4_layer' does not match"),
        ("models.conv1.conv_filters", [], r"models.conv1.conv_filters: \[\] should be non-empty"),
        ("data.files.train_images.sha256", "abc", r"data.files.train_images.sha256: 'abc' does not match"),
        ("data.mirrors", ["ftp://x/"], r"data.mirrors.0: 'ftp://x/' does not match"),
        ("seed", DELETE, r"top level: 'seed' is a required property"),
        # Past 32 bits the split ran and training ended in a ValueError traceback.
        ("seed", 99999999999999999999999, r"seed: 99999999999999999999999 is greater than the maximum of 4294967295"),
        ("seed", 2**32, r"seed: 4294967296 is greater than the maximum of 4294967295"),
        ("cv.seed", 2**32, r"cv.seed: 4294967296 is greater than the maximum of 4294967295"),
        ("seed", -1, r"seed: -1 is less than the minimum of 0"),
    ],
)
def test_bad_params_name_the_key_and_the_fix(path, value, expected):
    with pytest.raises(ParamsError, match=expected) as error:
        validate(with_change(path, value))
    assert str(error.value).endswith("; fix it in params.yaml")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("key", ["lr", "momentum", "split.test_size", "models.conv3.dense_dropout",
                                 "train.label_smoothing", "train.decay_rate", "data.timeout_s"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_numbers_must_be_finite(key, value):
    with pytest.raises(ParamsError, match=rf"{key}: -?(nan|inf) is not a finite number"):
        validate(with_change(key, value))


@pytest.mark.parametrize("text, value", [("5e-05", 5e-05), ("1e-3", 1e-3), ("1E-4", 1e-4), (".5e-4", 5e-05),
                                         ("3.0e-4", 3e-4), ("0.003", 0.003), ("1", 1)])
def test_yaml_1_2_numbers_are_numbers_in_the_file_and_in_set(tmp_path, text, value):
    in_file = load_params(write_params(tmp_path, text_with("lr", text)))
    assert in_file["lr"] == value and type(in_file["lr"]) is type(value)
    assert load_params("params.yaml", [f"lr={text}"])["lr"] == value


@pytest.mark.parametrize("override, message", [
    ("epochs=1e1", "invalid --set epochs=1e1: epochs: 10.0 is not an integer"),
    ("epochs=1.0", "invalid --set epochs=1.0: epochs: 1.0 is not an integer"),
    ("train.nesterov=yes", "invalid --set train.nesterov=yes: train.nesterov: 'yes' is not a boolean"),
    ("lr=.nan", "invalid --set lr=.nan: lr: nan is not a finite number"),
    ("models.conv2.conv_dropout=1.5", "models.conv2.conv_dropout: 1.5 is greater than or equal to the maximum"),
])
def test_a_bad_override_is_blamed_on_the_override(override, message):
    with pytest.raises(ParamsError, match="; fix that override$") as error:
        load_params("params.yaml", [override])
    assert message in str(error.value)
    assert "params.yaml" not in str(error.value)


def test_a_bad_file_value_is_blamed_on_the_file_even_with_overrides(tmp_path):
    path = write_params(tmp_path, text_with("epochs", "1e1"))
    with pytest.raises(ParamsError, match=r"epochs: 10.0 is not an integer.*; fix it in params.yaml$"):
        load_params(path, ["lr=0.01"])


def test_booleans_are_yaml_1_2(tmp_path):
    assert load_params("params.yaml", ["train.nesterov=true"])["train"]["nesterov"] is True
    with pytest.raises(ParamsError, match="train.nesterov: 'yes' is not a boolean"):
        load_params(write_params(tmp_path, text_with("nesterov", "yes")))


def test_overrides_use_dvc_set_syntax():
    params = load_params("params.yaml", ["lr=0.01", "train.schedule=step", "models.conv1.conv_dropout=0.5",
                                         "models.conv1.conv_filters=[16, 16]"])
    assert params["lr"] == 0.01
    assert params["train"]["schedule"] == "step"
    assert params["models"]["conv1"]["conv_dropout"] == 0.5
    assert params["models"]["conv1"]["conv_filters"] == [16, 16]


@pytest.mark.parametrize("text", ["lr", "=3", "lr=[unclosed"])
def test_malformed_override(text):
    with pytest.raises(ParamsError, match="override"):
        parse_override(text)


def test_override_into_a_missing_section_is_an_error():
    with pytest.raises(ParamsError, match="'nosuch' is not a section"):
        load_params("params.yaml", ["nosuch.key=1"])


def test_set_args_round_trip_to_the_same_values():
    changed = with_change("lr", 5e-05)
    args = as_set_args(changed, ["lr", "data", "models.conv3"])
    overrides = args[1::2]
    assert args[0::2] == ["--set"] * 3
    assert load_params("params.yaml", overrides) == changed


def test_duplicate_keys_are_an_error(tmp_path):
    path = write_params(tmp_path, TEXT + "\nlr: 0.1\n")
    with pytest.raises(ParamsError, match=r'sets duplicate key "lr" .* keep one of them$'):
        load_params(path)


@pytest.mark.parametrize("text", ["", "# nothing\n", "[1, 2]\n"])
@pytest.mark.parametrize("overrides", [[], ["lr=0.1"]])
def test_empty_params_file_is_one_clear_error(tmp_path, text, overrides):
    with pytest.raises(ParamsError, match="holds no settings"):
        load_params(write_params(tmp_path, text), overrides)


def test_unreadable_or_invalid_yaml(tmp_path):
    with pytest.raises(ParamsError, match="cannot read params file"):
        load_params(tmp_path / "absent.yaml")
    with pytest.raises(ParamsError, match="is not valid YAML"):
        load_params(write_params(tmp_path, "lr: [0.1\n"))


def test_snakemake_config_is_read_as_yaml_1_2():
    # What `snakemake --config 'models={"conv2": {"conv_dropout": 0.1}}' lr=0.00005` hands the Snakefile:
    params = snakemake_params("params.yaml", {"models": {"conv2": {"conv_dropout": "0.1"}}, "lr": 5e-05})
    assert params["models"]["conv2"]["conv_dropout"] == 0.1
    assert params["models"]["conv2"]["conv_filters"] == [32, 64]  # the rest of the model is kept
    assert params["lr"] == 5e-05
    with pytest.raises(ParamsError, match=r"invalid snakemake --config train.nesterov: .*'yes' is not a boolean"):
        snakemake_params("params.yaml", {"train": {"nesterov": "yes"}})


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


def billion_laughs(levels: int = 9) -> str:
    """A YAML list of 10 ** levels strings in a few hundred bytes: each anchored list is ten aliases of the last."""
    lists = ["&l0 [" + ", ".join(["lol"] * 10) + "]"]
    lists += [f"&l{level} [" + ", ".join([f"*l{level - 1}"] * 10) + "]" for level in range(1, levels)]
    return "[" + ", ".join(lists) + "]"


@pytest.mark.parametrize("where, line", [("lr", 6), ("an unknown key", None)])
def test_a_yaml_alias_bomb_is_refused_before_it_is_built(tmp_path, where, line):
    text = TEXT.replace("\nlr: ", f"\nlr: {billion_laughs()}  # was ", 1) if where == "lr" else \
        TEXT + f"bomb: {billion_laughs()}\n"
    line = line or len(TEXT.splitlines()) + 1
    run = run_stage("stages.split", "--params", str(write_params(tmp_path, text)),
                    "--interim", str(tmp_path / "interim"), "--out", str(tmp_path / "processed"))
    assert one_error_line(run) == (f"error: {tmp_path / 'params.yaml'} has a YAML anchor (&l0) at line {line}, "
                                   "and settings take none; write each value out in full")
    assert run.peak_mb < 300 and run.seconds < 30, run


@pytest.mark.parametrize("override, kind", [("lr=[&a 0.1, *a]", "anchor (&a)"), ("lr=*a", "alias (*a)")])
def test_anchors_and_aliases_are_refused_in_overrides_too(override, kind):
    with pytest.raises(ParamsError, match=f"^override '{re.escape(override)}' has a YAML {re.escape(kind)} at line 1"):
        load_params("params.yaml", [override])


@pytest.mark.parametrize("key, value, message", [
    ("optimizer", "x" * 100_000, "is not one of"),
    ("lr", list(range(100_000)), "is not a number"),
    ("models.conv1.conv_filters", [32] * 100_000, "is too long"),
])
def test_an_error_quotes_at_most_the_start_of_a_huge_value(key, value, message):
    with pytest.raises(ParamsError) as refused:
        validate(with_change(key, value))
    assert message in str(refused.value) and len(str(refused.value)) < 300, str(refused.value)[:500]


def test_a_fifo_as_the_params_file_is_refused_not_waited_on(tmp_path):
    os.mkfifo(tmp_path / "params.yaml")
    run = run_stage("stages.split", "--params", str(tmp_path / "params.yaml"),
                    "--interim", str(tmp_path / "interim"), "--out", str(tmp_path / "processed"), timeout=30)
    assert one_error_line(run) == (f"error: {tmp_path / 'params.yaml'} is a named pipe (FIFO), not a file; "
                                   "give the path of a params file")


def test_validating_params_builds_no_iri_parsers():
    # A new process: this one may have imported rfc3987-syntax already (Jupyter's tests).
    check = ("import sys; from stages.common.params import load_params; load_params('params.yaml'); "
             "print(sorted(name for name in ('jsonschema', 'lark', 'rfc3987_syntax') if sys.modules.get(name)))")
    shown = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=60, check=True)
    assert shown.stdout.split() == ["['jsonschema']"]


DEPTH = 20_000
LR_LINE = next(number for number, line in enumerate(TEXT.splitlines(), start=1) if line.startswith("lr:"))
# Each way YAML nests, 20,000 deep where 1 MiB allows (a block mapping's indentation grows with
# its depth: 1,400 levels fill 1 MiB). Before, the parse took the square of the depth (2.7 s at
# 1,000, minutes at 20,000) or ended in a RecursionError traceback.
DEEP_VALUES = {
    "flow-sequence": "[" * DEPTH + "]" * DEPTH,
    "flow-mapping": "{a: " * DEPTH + "1" + "}" * DEPTH,
    "block-sequence": "\n" + "- " * DEPTH + "1",
}


def deep_block_mapping() -> str:
    return "lr:\n" + "".join(" " * level + "a:\n" for level in range(1, 1400)) + " " * 1400 + "b: 1\n"


@pytest.mark.parametrize("value", DEEP_VALUES.values(), ids=DEEP_VALUES.keys())
def test_deep_nesting_in_the_file_is_refused_at_once(tmp_path, value):
    path = write_params(tmp_path, text_with("lr", value))
    with time_limit(5), pytest.raises(ParamsError) as refused:
        load_params(path)
    line = LR_LINE + value.startswith("\n")
    assert str(refused.value) == (f"{path} nests deeper than 32 levels (line {line}), far more than any setting "
                                  "needs; write the value out flat")


def test_a_deep_block_mapping_is_refused_at_once(tmp_path):
    path = write_params(tmp_path, TEXT.replace("\nlr: ", "\nwas_lr: ", 1) + deep_block_mapping())
    with time_limit(5), pytest.raises(ParamsError, match="nests deeper than 32 levels"):
        load_params(path)


@pytest.mark.parametrize("value", DEEP_VALUES.values(), ids=DEEP_VALUES.keys())
def test_deep_nesting_in_an_override_is_refused_at_once(value):
    with time_limit(5), pytest.raises(ParamsError, match=r"^override 'lr=.*' nests deeper than 32 levels"):
        load_params("params.yaml", [f"lr={value}"])
    with time_limit(5), pytest.raises(ParamsError, match=r"^a snakemake --config value nests deeper than 32"):
        snakemake_params("params.yaml", {"lr": value})


@pytest.mark.e2e
def test_the_probes_deep_params_file_gets_one_line_from_a_stage_within_seconds(tmp_path):
    # `lr:` and 20,000 `[`: python -m stages.train was still parsing when killed at 120 s.
    path = write_params(tmp_path, text_with("lr", DEEP_VALUES["flow-sequence"]))
    for stage, args in (("stages.split", ["--interim", str(tmp_path), "--out", str(tmp_path / "processed")]),
                        ("stages.train", ["--model", "conv1", "--data", str(tmp_path), "--out",
                                          str(tmp_path / "m.keras"), "--live", str(tmp_path / "live"),
                                          "--timing", str(tmp_path / "t.json")])):
        run = run_stage(stage, "--params", str(path), *args, timeout=60)
        assert f"nests deeper than 32 levels (line {LR_LINE})" in one_error_line(run), run
        assert run.seconds < 20, run
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_a_utf16_params_file_gets_one_line_and_a_utf8_byte_order_mark_is_read(tmp_path):
    # UTF-16 (as Windows' Notepad may save it) ended in a UnicodeDecodeError traceback.
    path = tmp_path / "params.yaml"
    path.write_bytes(TEXT.encode("utf-16"))
    run = run_stage("stages.split", "--params", str(path), "--interim", str(tmp_path), "--out", str(tmp_path / "p"))
    assert one_error_line(run) == (f"error: {path} is not UTF-8 text (it starts with a UTF-16 byte-order mark); "
                                   "save it as UTF-8")
    path.write_bytes("lr: 0.5\n".encode("latin-1") + "# café\n".encode("latin-1"))
    with pytest.raises(PipelineError, match=r"is not UTF-8 text \(byte 0xe9 at offset 13 is not UTF-8\)"):
        load_params(path)
    path.write_bytes(b"\xef\xbb\xbf" + TEXT.encode())
    assert load_params(path) == _committed()



def test_the_seed_bound_is_what_keras_takes():
    import keras

    keras.utils.set_random_seed(2**32 - 1)  # the largest valid seed is one Keras takes
    with pytest.raises(ValueError):
        keras.utils.set_random_seed(2**32)  # and the first refused is one it refuses
    assert validate(with_change("seed", 2**32 - 1))["seed"] == 2**32 - 1
