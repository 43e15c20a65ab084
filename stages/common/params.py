"""Load params.yaml, apply `key=value` overrides, and validate against params.schema.yaml.

Stages get their settings only through `load_params`; the Snakefile validates its
config with `validate` and hands values to stages with `as_set_args`, so both tools
enforce the same schema and pass the same values.
"""

import json
import shlex
from pathlib import Path
from typing import Any, Iterable

import jsonschema
import yaml

from stages.common.errors import PipelineError

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "params.schema.yaml"


class ParamsError(PipelineError):
    pass


def load_params(path: str | Path, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """Read `path`, apply `key.sub=value` overrides (values are YAML), validate, return."""
    try:
        config = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ParamsError(f"cannot read params file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path} is not valid YAML ({_first_line(exc)}); fix its syntax") from None
    for override in overrides:
        key, value = parse_override(override)
        _set_dotted(config, key, value)
    return validate(config, source=str(path))


def validate(config: Any, source: str = "params.yaml") -> dict[str, Any]:
    """Raise ParamsError naming the first offending key if `config` breaks the schema."""
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(config), key=_error_order)
    if errors:
        error = errors[0]
        where = ".".join(str(part) for part in error.absolute_path) or "top level"
        raise ParamsError(f"invalid {source}: {where}: {error.message}; fix it in params.yaml")
    return config


def parse_override(text: str) -> tuple[str, Any]:
    """Split `a.b=value` into ("a.b", parsed YAML value)."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise ParamsError(f"override {text!r} is not KEY=VALUE; write it like lr=0.01")
    try:
        return key, yaml.safe_load(raw)
    except yaml.YAMLError:
        raise ParamsError(f"override {text!r} has a value that is not valid YAML") from None


def as_set_args(config: dict[str, Any], keys: Iterable[str]) -> str:
    """The `--set key=value` arguments that pin each dotted key of `keys` to its value in config."""
    args = []
    for key in keys:
        value = _get_dotted(config, key)
        args += ["--set", f"{key}={json.dumps(value, sort_keys=True)}"]
    return shlex.join(args)


def _get_dotted(config: dict[str, Any], key: str) -> Any:
    node = config
    for part in key.split("."):
        node = node[part]
    return node


def _set_dotted(config: dict[str, Any], key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    node = config
    for part in parents:
        if not isinstance(node.get(part), dict):
            raise ParamsError(f"override key {key!r}: {part!r} is not a section of params.yaml")
        node = node[part]
    node[leaf] = value


def _error_order(error: jsonschema.ValidationError) -> tuple[int, list[str]]:
    # Report the shallowest problem first: an unknown top-level key explains more than
    # the nested errors it might cause.
    return len(error.absolute_path), [str(part) for part in error.absolute_path]


def _first_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
