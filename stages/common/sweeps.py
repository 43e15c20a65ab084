"""Sweeps for Snakemake: `sweeps/<name>.tsv`, one column per dotted param key, one row per point.

    optimizer   lr
    adam        0.001
    sgd         0.01

Values are read as YAML 1.2, as `dvc exp run -S` reads them. Each point is named after
its values (`optimizer~adam_lr~0.001`, as Snakemake's Paramspace names them), so adding a
row adds a point and leaves the others' outputs where they are.

One column is not a param: `model`, where present, names the models a point trains
(comma-separated, e.g. `conv1` or `conv2,conv3`); without it, every point trains every model.
"""

import copy
import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stages.common.errors import shown
from stages.common.inputs import TEXT_LIMIT, read_text
from stages.common.params import ParamsError, parse_yaml, set_dotted, validate

MODEL_COLUMN = "model"
# A sweep's name (its file's) and a point's name (its values') become folders, Snakemake
# wildcards and words of shell commands, so they hold only these characters: a value with
# a space, a slash, a quote or a `$` is refused, not mangled into another name.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.,~+=\[\]-]*")
NAME_CHARACTERS = "letters, digits and . _ , ~ + = - [ ]"
# A column is a dotted param key (or `model`), checked apart from the values so that a bad
# header is blamed on the header, not on "a value".
KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*")


@dataclass(frozen=True)
class Point:
    params: dict[str, Any]
    models: list[str]


def read_rows(path: Path) -> list[dict[str, str]]:
    """The table's rows, {key: value as written}."""
    text = read_text(path, TEXT_LIMIT, "a sweep table")  # a UTF-8 byte-order mark dropped, not made part of a key
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="\t")
    rows = list(reader)
    columns = reader.fieldnames or []
    for column in columns:
        if not KEY.fullmatch(column):
            raise ParamsError(f"{path} line 1: column {shown(column)} is not a param key (a dotted name such as "
                              "lr or train.schedule, or model); fix the header")
    twice = [column for number, column in enumerate(columns) if column in columns[:number]]
    if twice:  # DictReader would keep the last column of the name and drop the first without a word
        raise ParamsError(f"{path} line 1 names column {shown(twice[0])} twice; keep one of them")
    if not rows:
        raise ParamsError(f"{path} has no points; write a header of param keys and one row per point")
    for number, row in enumerate(rows, start=2):  # line 1 is the header
        if None in row or None in row.values():
            raise ParamsError(f"{path} line {number} does not have one value per column; fix that row")
    return [{key: text.strip() for key, text in row.items()} for row in rows]


def point_name(row: dict[str, str]) -> str:
    return "_".join(f"{key}~{text}" for key, text in row.items())


def row_models(row: dict[str, str], all_models: list[str]) -> list[str]:
    """The models a row trains: its `model` column, or all of them."""
    if MODEL_COLUMN not in row:
        return list(all_models)
    return [name.strip() for name in row[MODEL_COLUMN].split(",")]


def load_sweep(path: Path, params: dict[str, Any]) -> dict[str, Point]:
    """{point name: its params and models}, every point validated against the schema."""
    if not NAME.fullmatch(path.stem):
        raise ParamsError(f"{path}: a sweep's name may hold only {NAME_CHARACTERS}; rename the file")
    points = {}
    for number, row in enumerate(read_rows(path), start=2):
        point = point_name(row)
        if not NAME.fullmatch(point):
            raise ParamsError(f"{path} line {number}: a value holds a character that cannot be part of the "
                              f"point's name (only {NAME_CHARACTERS}); write the value without it")
        config = copy.deepcopy(params)
        for key, text in row.items():
            if key == MODEL_COLUMN:
                continue
            set_dotted(config, key, parse_yaml(text, f"{path} line {number}, column {shown(key)}"),
                       f"{path}: column {shown(key)}", "params.yaml")
        given = {key: f"{path} line {number}" for key in row if key != MODEL_COLUMN}
        models = row_models(row, list(config["models"]))
        unknown = [name for name in models if name not in config["models"]]
        if unknown:
            raise ParamsError(f"{path} line {number}: no model {', '.join(map(repr, unknown))}; the model "
                              f"column takes names from params.yaml's models ({', '.join(config['models'])})")
        points[point] = Point(validate(config, source=str(path), overridden=given), models)
    return points
