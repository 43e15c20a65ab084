import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

FLOORS = Path(".ci/accuracy_floor.yaml")


def gate(run_module, metrics: Path) -> subprocess.CompletedProcess:
    """The gate as CI runs it, on the committed floors and params: in this process, and in e2e as a script."""
    return run_module("scripts/check_accuracy_floor.py", "--metrics", str(metrics), timeout=60)


def write_metrics(folder: Path, accuracies: dict[str, float]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for model, accuracy in accuracies.items():
        (folder / f"{model}.json").write_text(json.dumps({"accuracy": accuracy, "loss": 0.5}))
    return folder


def test_every_model_has_one_floor():
    floors = yaml.safe_load(FLOORS.read_text())
    assert list(floors) == list(yaml.safe_load(Path("params.yaml").read_text())["models"])
    assert all(0.1 < floor < 1 for floor in floors.values())  # above a constant guess


def test_a_run_at_the_floors_passes(run_module, tmp_path):
    floors = yaml.safe_load(FLOORS.read_text())
    result = gate(run_module, write_metrics(tmp_path, floors))
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == len(floors)


@pytest.mark.also_as_process
@pytest.mark.parametrize("model", ["conv1", "conv3"])
def test_a_forced_bad_run_fails_with_one_line_naming_the_model(run_module, tmp_path, model):
    floors = yaml.safe_load(FLOORS.read_text())
    result = gate(run_module, write_metrics(tmp_path, {**floors, model: floors[model] - 0.0001}))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: {model}: test accuracy {floors[model] - 0.0001:.4f} is below its floor {floors[model]} "
        f"({tmp_path / f'{model}.json'})"
    ]


def test_missing_metrics_fail_the_gate(run_module, tmp_path):
    result = gate(run_module, write_metrics(tmp_path, {"conv1": 0.99}))
    assert result.returncode == 1
    assert [line.split(":")[1].strip() for line in result.stderr.splitlines()] == ["conv2", "conv3"]


# The gate cannot be passed without accuracy: every case below runs the real script on files
# in tmp_path and must fail with exit 1 and one `error: <what>; <what to do>` line. It runs
# through the `run_module` fixture: in pytest's process in the fast tier, in a new one in e2e too.

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "check_accuracy_floor.py"
FLOORS_TEXT = FLOORS.read_text()
PARAMS_TEXT = Path("params.yaml").read_text()
PASSING = {model: json.dumps({"accuracy": 0.95, "loss": 0.3}) for model in yaml.safe_load(FLOORS_TEXT)}
OVER_LIMIT = 1 << 20  # the gate reads no floors or metrics file larger than 1 MiB


def gate_in(run_module, tmp_path: Path, floors: str | None = FLOORS_TEXT,
            metrics: dict[str, str | None] | None = None, params: str | None = PARAMS_TEXT
            ) -> subprocess.CompletedProcess:
    """The gate on tmp_path's floors.yaml, metrics/ and params.yaml, written from the texts given
    (None: left missing) unless the test put something there first (a FIFO, a folder)."""
    texts = {"floors.yaml": floors, "params.yaml": params,
             **{f"metrics/{model}.json": text for model, text in {**PASSING, **(metrics or {})}.items()}}
    for name, text in texts.items():
        path = tmp_path / name
        path.parent.mkdir(exist_ok=True)
        if text is not None and not os.path.lexists(path):
            path.write_text(text)
    return run_module(str(SCRIPT), "--floors", str(tmp_path / "floors.yaml"), "--metrics", str(tmp_path / "metrics"),
                      "--params", str(tmp_path / "params.yaml"), timeout=30)


def assert_one_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "; " in lines[0], lines[0]
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.also_as_process
def test_a_passing_run_prints_one_ok_line_per_model_of_params(run_module, tmp_path):
    result = gate_in(run_module, tmp_path)
    assert result.returncode == 0, result.stderr
    assert [line.split(":")[1].strip() for line in result.stdout.splitlines()] == list(PASSING)
    assert result.stderr == ""


@pytest.mark.parametrize(("metrics", "shown"), [
    ('{"accuracy": NaN}', "nan"),
    ('{"accuracy": Infinity}', "inf"),
    ('{"accuracy": "NaN"}', "'NaN'"),
    ('{"accuracy": "0.95"}', "'0.95'"),
    ('{"accuracy": true}', "True"),
    ('{"accuracy": null}', "None"),
    ('{"accuracy": 95.1}', "95.1"),  # a percentage
])
def test_an_accuracy_that_is_not_a_fraction_fails(run_module, tmp_path, metrics, shown):
    assert_one_error(gate_in(run_module, tmp_path, metrics={"conv1": metrics}), "conv1", shown,
                     "not a number in [0, 1]")


@pytest.mark.parametrize(("floors", "words"), [
    ("conv1: 0.86\nconv2: 0.865\n", ["no floor for conv3"]),
    (FLOORS_TEXT + "conv9: 0.5\n", ["'conv9'", "not a model"]),
    (FLOORS_TEXT.replace("conv1: 0.86", 'conv1: "0.86"'), ["conv1", "'0.86'", "not a number in [0, 1]"]),
    (FLOORS_TEXT.replace("conv1: 0.86", "conv1: .nan"), ["conv1", "nan", "not a number in [0, 1]"]),
    (FLOORS_TEXT.replace("conv1: 0.86", "conv1: -1"), ["conv1", "-1", "not a number in [0, 1]"]),
    (FLOORS_TEXT.replace("conv1: 0.86", "conv1: false"), ["conv1", "False", "not a number in [0, 1]"]),
    ("", ["holds no floors"]),
    ("- 0.86\n- 0.865\n- 0.865\n", ["holds no floors"]),
    ("conv1: [0.86\n", ["not valid YAML"]),
    ("conv1: &f 0.865\nconv2: *f\nconv3: 0.865\n", ["YAML anchor"]),
    ("[" * 100_000, ["nests deeper than"]),  # would stall the parser for minutes
    ("conv1: 0.86\nconv1: 0.1\n" + FLOORS_TEXT.split("\n", 1)[1], ["duplicate key"]),
    (FLOORS_TEXT + "#" * OVER_LIMIT + "\n", ["over the 1 MiB limit"]),
    (None, ["cannot read floors file", "No such file"]),
], ids=["missing-floor", "stray-floor", "string", "nan", "negative", "bool", "empty", "list", "malformed",
        "alias", "deeply-nested", "duplicate-key", "over-1MiB", "missing-file"])
def test_a_bad_floors_file_fails(run_module, tmp_path, floors, words):
    metrics = {"conv9": json.dumps({"accuracy": 0.99})}  # so that a stray conv9 floor has metrics
    assert_one_error(gate_in(run_module, tmp_path, floors=floors, metrics=metrics), *words)


def test_a_model_of_params_without_a_floor_fails(run_module, tmp_path):
    params = yaml.safe_load(PARAMS_TEXT)
    params["models"]["conv4"] = {"conv_filters": [8], "dense_units": 8, "conv_dropout": 0, "dense_dropout": 0}
    result = gate_in(run_module, tmp_path, params=json.dumps(params),
                     metrics={"conv4": json.dumps({"accuracy": 0.05})})
    assert_one_error(result, "no floor for conv4", "params.yaml")


@pytest.mark.parametrize(("params", "words"), [
    (None, ["cannot read params file", "No such file"]),
    (PARAMS_TEXT.replace("lr: 0.003", "lr: fast"), ["lr", "'fast' is not a number"]),
    (PARAMS_TEXT.replace("lr: 0.003", "lr: " + "[" * 20_000 + "]" * 20_000), ["nests deeper than 32"]),  # was 60 s+
], ids=["missing", "invalid", "deeply-nested"])
def test_a_bad_params_file_fails(run_module, tmp_path, params, words):
    assert_one_error(gate_in(run_module, tmp_path, params=params), *words)


@pytest.mark.parametrize("where", ["floors.yaml", "metrics/conv1.json", "params.yaml"])
@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_a_file_that_is_not_a_regular_file_fails_without_being_read(run_module, tmp_path, where, kind):
    (tmp_path / "metrics").mkdir()
    os.mkfifo(tmp_path / where) if kind == "fifo" else (tmp_path / where).mkdir()  # a FIFO would block a read
    assert_one_error(gate_in(run_module, tmp_path), "not a file")


@pytest.mark.parametrize(("metrics", "words"), [
    ('{"accuracy": 0.95}' + " " * OVER_LIMIT, ["over the 1 MiB limit"]),
    ("[" * 100_000, ["not valid JSON (it nests deeper than 32 levels)"]),  # past Python's recursion limit
    ('{"loss": ' + "{" * 500 + "}" * 500 + ', "accuracy": 0.95}', ["it nests deeper than 32 levels"]),
    ('{"accuracy": 0.1, "accuracy": 0.99}', ['it gives the key "accuracy" twice']),  # passed the gate before
], ids=["over-1MiB", "deeply-nested", "nested-under-500", "duplicate-key"])
def test_a_bad_metrics_file_fails(run_module, tmp_path, metrics, words):
    assert_one_error(gate_in(run_module, tmp_path, metrics={"conv1": metrics}), "conv1", *words)
