"""The regression gate: fail when a model's test accuracy is below its floor.

    python scripts/check_accuracy_floor.py [--floors .ci/accuracy_floor.yaml] [--metrics metrics/test]
                                           [--params params.yaml]

Every model of params.yaml must have a floor in the floors file, and every floor must be
for such a model. Reads each model's `<metrics>/<model>.json` (written by the evaluate
stage). A floor and a test accuracy must each be a finite number in [0, 1]: not NaN, not
a string, not a boolean. Prints one `ok:` line per passing model; exits 1 with one
`error:` line per problem (a model below its floor or without valid metrics; a missing,
unreadable, oversized or malformed floors, metrics or params file).
"""

import argparse
import math
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # stages.common, when run as a script

from ruamel.yaml.error import YAMLError

from stages.common.errors import PipelineError
from stages.common.inputs import TEXT_LIMIT, parse_json, read_text
from stages.common.params import ParamsError, load_params, parse_yaml


class GateError(Exception):
    """One problem, as `<what>; <what to do>`."""


def read_small_file(path: Path, what: str, fix: str) -> str:
    """The text of `path`, checked as every stage checks its inputs (a regular file, at most 1 MiB)."""
    try:
        return read_text(path, TEXT_LIMIT, f"a {what}")
    except PipelineError as exc:
        raise GateError(f"{str(exc).split('; ')[0]}; {fix}") from None
    except OSError as exc:
        raise GateError(f"cannot read {what} {path} ({exc.strerror}); {fix}") from None
    except UnicodeDecodeError:
        raise GateError(f"{what} {path} is not UTF-8 text; {fix}") from None


def is_fraction(value: Any) -> bool:
    """A finite number in [0, 1]: not a bool, a string, NaN or an infinity.

    The range test comes before math.isfinite, which raises for an int too large for a float.
    """
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1 and math.isfinite(value)


def load_models(path: Path) -> list[str]:
    """The models of the params file, validated as every stage validates it."""
    read_small_file(path, "params file", f"restore it (git checkout {path}) or pass --params")
    try:
        return list(load_params(path)["models"])
    except PipelineError as exc:
        raise GateError(str(exc)) from None


def load_floors(path: Path, models: list[str], params: Path) -> tuple[dict[str, float], list[str]]:
    """The floor of each model, and one error line per problem with the floors file."""
    fix = f"restore it (git checkout {path}) or pass --floors"
    text = read_small_file(path, "floors file", fix)
    try:
        floors = parse_yaml(text, f"floors file {path}")  # its nesting bounded, as params.yaml's
    except ParamsError as exc:
        raise GateError(str(exc)) from None
    except (YAMLError, RecursionError, ValueError, TypeError) as exc:
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())[:120] or type(exc).__name__
        raise GateError(f"floors file {path} is not valid YAML ({problem}); {fix}") from None
    if not isinstance(floors, dict) or not floors:
        raise GateError(f"floors file {path} holds no floors (it is empty or not a mapping of model: floor); {fix}")
    errors = [f"error: {path}: no floor for {model}, a model of {params}; add one, like `{model}: 0.86`"
              for model in models if model not in floors]
    errors += [f"error: {path}: a floor for {name!r}, which is not a model of {params}; "
               f"remove it, or add the model to {params}" for name in floors if name not in models]
    errors += [f"error: {path}: the floor for {model} is {floor!r}, not a number in [0, 1]; write it like 0.86"
               for model, floor in floors.items() if model in models and not is_fraction(floor)]
    return floors, errors


def read_accuracy(path: Path) -> float:
    """The `accuracy` of an evaluate stage's metrics file; GateError unless a number in [0, 1]."""
    fix = "run evaluate first"
    text = read_small_file(path, "metrics file", fix)
    try:
        metrics = parse_json(text)  # nesting bounded and duplicate keys refused, before a value is trusted
    except ValueError as exc:
        raise GateError(f"metrics file {path} is not valid JSON ({' '.join(str(exc).split())[:120]}); {fix}") \
            from None
    if not isinstance(metrics, dict) or "accuracy" not in metrics:
        raise GateError(f"metrics file {path} has no \"accuracy\"; {fix}")
    accuracy = metrics["accuracy"]
    if not is_fraction(accuracy):
        raise GateError(f"test accuracy in {path} is {accuracy!r}, not a number in [0, 1]; rerun evaluate")
    return accuracy


def check(floors: dict[str, float], metrics_dir: Path) -> list[str]:
    """One `error: ...` line per failing model; empty when all pass."""
    failures = []
    for model, floor in floors.items():
        path = metrics_dir / f"{model}.json"
        try:
            accuracy = read_accuracy(path)
        except GateError as exc:
            failures.append(f"error: {model}: {exc}")
            continue
        if accuracy < floor:
            failures.append(f"error: {model}: test accuracy {accuracy:.4f} is below its floor {floor} ({path})")
        else:
            print(f"ok: {model}: test accuracy {accuracy:.4f} >= {floor}")
    return failures


def gate(floors_path: Path, metrics_dir: Path, params_path: Path) -> list[str]:
    try:
        models = load_models(params_path)
        floors, errors = load_floors(floors_path, models, params_path)
    except GateError as exc:
        return [f"error: {exc}"]
    if errors:
        return errors
    if not metrics_dir.is_dir():
        return [f"error: metrics folder {metrics_dir} is not a folder; run evaluate first, or pass --metrics"]
    return check({model: floors[model] for model in models}, metrics_dir)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--floors", type=Path, default=Path(".ci/accuracy_floor.yaml"))
    parser.add_argument("--metrics", type=Path, default=Path("metrics/test"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    failures = gate(args.floors, args.metrics, args.params)
    for line in failures:
        print(line, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
