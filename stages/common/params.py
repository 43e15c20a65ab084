"""Load params.yaml, apply `key=value` overrides, and validate against params.schema.yaml.

Stages get their settings only through `load_params`; the Snakefile gets its own through
`snakemake_params`, and hands values to stages with `as_set_args`, so both tools enforce
the same schema and pass the same values.

YAML is read as YAML 1.2, the version DVC writes (`dvc exp run -S lr=0.00005` stores
`lr: 5e-05`): `5e-05`, `1E-4` and `.5e-4` are floats, `yes` is a string and not true,
and a key given twice is an error, as it is for DVC.
"""

from __future__ import annotations

import functools
import json
import math
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import YAMLError
from ruamel.yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent, NodeEvent

from stages.common.errors import SHOWN_WIDTH, PipelineError, clipped, shown
from stages.common.inputs import TEXT_LIMIT, read_text

if TYPE_CHECKING:
    import jsonschema

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "params.schema.yaml"
# params.yaml nests four levels (models.conv1.conv_filters); sweep values, --set values and
# floors fewer. The pure-Python parser slows with the square of the depth: 20,000 `[` (40 KB)
# ran for minutes, and a deep mapping ended in a RecursionError.
MAX_DEPTH = 32


class ParamsError(PipelineError):
    pass


def parse_yaml(text: str, source: str = "the YAML") -> Any:
    """`text` read as YAML 1.2 (as DVC reads it), duplicate keys, anchors, aliases and nesting past
    MAX_DEPTH refused; `source` names the text in the error."""
    # Refused from the parser's events, before any object is built: an alias lets a few
    # lines stand for billions of nodes ("billion laughs"), and settings have no use for one.
    # The events come one at a time and the check stops at MAX_DEPTH + 1, so a deep text costs
    # what its first 33 levels cost (milliseconds): linear in the text, never the square of its
    # depth. The parser's own tokens, not a scan of brackets: a quote or a comment could hide one.
    depth = 0
    for event in YAML(typ="safe", pure=True).parse(text):
        depth += isinstance(event, CollectionStartEvent) - isinstance(event, CollectionEndEvent)
        if depth > MAX_DEPTH:
            raise ParamsError(f"{source} nests deeper than {MAX_DEPTH} levels (line {event.start_mark.line + 1}), "
                              "far more than any setting needs; write the value out flat")
        if isinstance(event, NodeEvent) and event.anchor is not None:
            kind, sign = ("alias", "*") if isinstance(event, AliasEvent) else ("anchor", "&")
            raise ParamsError(f"{source} has a YAML {kind} ({sign}{clipped(event.anchor)}) at line "
                              f"{event.start_mark.line + 1}, and settings take none; write each value out in full")
    return YAML(typ="safe", pure=True).load(text)


def load_params(path: str | Path, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """Read `path`, apply `key.sub=value` overrides (values are YAML), validate, return."""
    path = Path(path)
    try:
        text = read_text(path, TEXT_LIMIT, "a params file")
    except OSError as exc:
        raise ParamsError(f"cannot read params file {path}: {exc.strerror}") from None
    try:
        config = parse_yaml(text, str(path))
    except DuplicateKeyError as exc:
        raise ParamsError(f"{path} sets {_yaml_problem(exc).removeprefix('found ')}; keep one of them") from None
    except YAMLError as exc:
        raise ParamsError(f"{path} is not valid YAML ({_yaml_problem(exc)}); fix its syntax") from None
    if not isinstance(config, dict):
        raise ParamsError(f"{path} holds no settings (it is empty or not a mapping); restore it, "
                          "e.g. with `git checkout params.yaml`")
    given = {}
    for override in overrides:
        key, value = parse_override(override)
        set_dotted(config, key, value, f"override key {shown(key)}", path)
        given[key] = f"--set {clipped(override)}"
    return validate(config, source=str(path), overridden=given)


def snakemake_params(path: str | Path, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """params.yaml with Snakemake's `--config` / `--configfile` values on top, validated.

    Snakemake parses `--config a=b` values itself, and nested ones (`models={...}`)
    only as strings, so a string is read again as YAML 1.2, as `--set` reads it.
    """
    config = load_params(path)
    given = {}
    for key, value in _flatten(dict(overrides)):
        set_dotted(config, key, _reparse(value), f"override key {shown(key)}", path)
        given[key] = f"snakemake --config {key}"
    return validate(config, source="Snakemake config", overridden=given)


def validate(config: Any, source: str = "params.yaml",
             overridden: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Raise ParamsError naming the first offending key if `config` breaks the schema.

    `overridden` maps dotted keys to how they were given; an error under one of them
    says to fix that, any other to fix params.yaml.
    """
    errors = sorted(_validator().iter_errors(config), key=_error_order)
    if errors:
        error = errors[0]
        where = ".".join(str(part) for part in error.absolute_path) or "top level"
        culprits = [".".join(str(part) for part in [*error.absolute_path, key]) for key in _unexpected_keys(error)]
        override = next((how for key, how in (overridden or {}).items() for path in culprits or [where]
                         if path == key or path.startswith(key + ".")), None)
        origin, fix = (override, "that override") if override else (source, "it in params.yaml")
        raise ParamsError(f"invalid {origin}: {clipped(where)}: {_describe(error)}; fix {fix}")
    return config


def _unexpected_keys(error: jsonschema.ValidationError) -> list[str]:
    """The keys an `additionalProperties: false` error is about (the error itself names only their parent)."""
    if error.validator != "additionalProperties" or not isinstance(error.instance, dict):
        return []
    return [key for key in error.instance if key not in error.schema.get("properties", {})]


def parse_override(text: str) -> tuple[str, Any]:
    """Split `a.b=value` into ("a.b", value read as YAML 1.2)."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise ParamsError(f"override {shown(text)} is not KEY=VALUE; write it like lr=0.01")
    try:
        return key, parse_yaml(raw, f"override {shown(text)}")
    except YAMLError:
        raise ParamsError(f"override {shown(text)} has a value that is not valid YAML") from None


def as_set_args(config: dict[str, Any], keys: Iterable[str]) -> list[str]:
    """The `--set key=value` arguments that pin each dotted key of `keys` to its value in config.

    A list of words, for the Snakefile to quote (`{params.values:q}`) like every other field.
    """
    args = []
    for key in keys:
        value = _get_dotted(config, key)
        args += ["--set", f"{key}={json.dumps(value, sort_keys=True)}"]
    return args


@functools.cache  # built once per process: a sweep validates each of its points
def _validator() -> jsonschema.protocols.Validator:
    # Where rfc3987-syntax is installed (Jupyter brings it: the dev venv, the container image),
    # importing jsonschema builds 38 Earley parsers for the "iri" format: 2.5 s of every stage
    # process and every Snakemake start on 2 slow cores. The schema checks no format, and
    # jsonschema leaves that one out when the import fails, as where the package is absent.
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
    import jsonschema

    # JSON Schema counts 10.0 as an integer and NaN as a number; neither is a sane setting here.
    checker = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine_many({
        "integer": lambda _, value: isinstance(value, int) and not isinstance(value, bool),
        "number": lambda _, value: (isinstance(value, (int, float)) and not isinstance(value, bool)
                                    and math.isfinite(value)),
    })
    strict = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=checker)
    return strict(parse_yaml(SCHEMA_PATH.read_text()))


def _describe(error: jsonschema.ValidationError) -> str:
    value = shown(error.instance)
    if error.validator == "type":
        wanted = error.validator_value
        if wanted == "integer":
            return f"{value} is not an integer; write a whole number such as 10 (1e1 and 10.0 are floats)"
        if wanted == "number" and isinstance(error.instance, float):
            return f"{value} is not a finite number"
        if wanted == "number":
            return f"{value} is not a number; write it like 0.001 or 1e-3"
        if wanted == "boolean":
            return f"{value} is not a boolean; write true or false"
    # jsonschema's own messages quote the whole value, and unexpected keys in full.
    return clipped(error.message.replace(repr(error.instance), value), 3 * SHOWN_WIDTH)


def _get_dotted(config: dict[str, Any], key: str) -> Any:
    node = config
    for part in key.split("."):
        node = node[part]
    return node


def set_dotted(config: dict[str, Any], key: str, value: Any, given: str, path: Path | str) -> None:
    """config[a][b] = value for key "a.b"; `given` says where the key came from, for the error."""
    *parents, leaf = key.split(".")
    node = config
    for part in parents:
        if not isinstance(node.get(part), dict):
            raise ParamsError(f"{given}: {shown(part)} is not a section of {path}")
        node = node[part]
    node[leaf] = value


def _flatten(overrides: dict[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    """Dotted keys for the leaves of nested overrides, so `models={conv2: {...}}` changes only what it names."""
    for key, value in overrides.items():
        if isinstance(value, dict) and value:
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _reparse(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return parse_yaml(value, "a snakemake --config value")
        except YAMLError:
            return value
    if isinstance(value, list):
        return [_reparse(item) for item in value]
    return value


def _error_order(error: jsonschema.ValidationError) -> tuple[int, list[str], bool]:
    # Report the shallowest problem first (an unknown top-level key explains more than the
    # nested errors it might cause), and a wrong type before the bounds it breaks.
    return len(error.absolute_path), [str(part) for part in error.absolute_path], error.validator != "type"


def _yaml_problem(exc: YAMLError) -> str:
    problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
    mark = getattr(exc, "problem_mark", None)
    return f"{problem} at line {mark.line + 1}" if mark else problem
