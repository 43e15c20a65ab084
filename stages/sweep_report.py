"""Stage `sweep_report` (Snakemake sweeps only): one table and one figure for a whole sweep.

    python -m stages.sweep_report --sweep sweeps/lr.tsv --points sweeps/lr \
        --out sweeps/lr/results.md --figure sweeps/lr/results.png --models conv1 conv2 conv3

Reads `<points>/<point>/metrics/test/<model>.json` for every row of the sweep's table
and `<points>/<point>/metrics/train/<model>/metrics.json` for every row of the sweep's
table, and writes a Markdown table (the row's values, then each model's final validation
accuracy, to choose by, and its test accuracy) and a PNG of the test accuracies, one
group of bars per point. A model whose training diverged (a NaN or infinite loss) or
ended at chance shows as "diverged", not as numbers, and has no bar; one the row's
`model` column leaves out shows as "-", and a model no row trains has no columns.
"""

from pathlib import Path

import numpy as np

from stages.common import cli
from stages.common.errors import written_by
from stages.common.figures import plt, save_figure
from stages.common.files import atomic_path
from stages.common.inputs import TEXT_LIMIT, parse_json, read_text
from stages.common.sweeps import MODEL_COLUMN, point_name, read_rows, row_models

DIVERGED = "diverged"


Outcome = tuple[float, float] | str | None  # (validation, test) accuracy, DIVERGED, or None: not trained


def main(sweep: Path, points_dir: Path, models: list[str], table_out: Path, figure_out: Path) -> None:
    rows = point_rows(sweep)
    models = [model for model in models if any(model in row_models(values, models) for _, values in rows)]
    outcomes = {name: [outcome(points_dir / name, model) if model in row_models(values, models) else None
                       for model in models]
                for name, values in rows}
    keys = [key for key in rows[0][1] if key != MODEL_COLUMN]
    columns = [f"{model} {split}" for model in models for split in ("validation", "test")]
    lines = ["| " + " | ".join([*keys, *columns]) + " |", "|" + "---|" * (len(keys) + len(columns))]
    lines += ["| " + " | ".join([*(values[key] for key in keys), *(text for result in outcomes[name]
                                                                    for text in cells(result))]) + " |"
              for name, values in rows]
    with atomic_path(table_out) as table, atomic_path(figure_out) as figure:
        table.write_text("\n".join(lines) + "\n")
        save_figure(plot(rows, models, outcomes), figure)


def outcome(point_dir: Path, model: str) -> Outcome:
    """The model's final validation and test accuracy at this point, or DIVERGED."""
    summary_path = point_dir / "metrics" / "train" / model / "metrics.json"
    with written_by("train stage", summary_path):
        summary = parse_json(read_text(summary_path, TEXT_LIMIT, "a metrics file"))
        if summary.get("diverged") or summary.get("at_chance"):
            return DIVERGED
        validation = float(summary["eval"]["accuracy"])
    return validation, _accuracy(point_dir / "metrics" / "test" / f"{model}.json")


def cells(result: Outcome) -> tuple[str, str]:
    if result is None:
        return "-", "-"
    if isinstance(result, str):
        return result, result
    return f"{result[0]:.4f}", f"{result[1]:.4f}"


def point_rows(sweep: Path) -> list[tuple[str, dict[str, str]]]:
    """(point name, {key: value as written}) per row of the sweep's table."""
    return [(point_name(row), row) for row in read_rows(sweep)]


def plot(rows: list[tuple[str, dict[str, str]]], models: list[str], outcomes: dict[str, list[Outcome]]) -> plt.Figure:
    figure, axes = plt.subplots(figsize=(max(6.0, 1.2 * len(rows)), 4))
    width = 0.8 / len(models)
    for index, model in enumerate(models):
        results = [outcomes[name][index] for name, _ in rows]
        axes.bar(np.arange(len(rows)) + index * width,
                 [result[1] if isinstance(result, tuple) else 0.0 for result in results], width, label=model)
    axes.set_xticks(np.arange(len(rows)) + 0.4 - width / 2,
                    ["\n".join(f"{k}={v}" for k, v in values.items()) for _, values in rows], fontsize=7)
    axes.set_ylabel("test accuracy")
    axes.set_ylim(0, 1)
    axes.legend()
    axes.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    return figure


def _accuracy(path: Path) -> float:
    with written_by("evaluate stage", path):
        return float(parse_json(read_text(path, TEXT_LIMIT, "a metrics file"))["accuracy"])


def _cli() -> None:
    parser = cli.stage_parser(__doc__)
    parser.add_argument("--sweep", type=Path, required=True, help="the sweep's table, sweeps/<name>.tsv")
    parser.add_argument("--points", type=Path, required=True, help="folder holding one folder per point")
    parser.add_argument("--models", nargs="+", required=True, help="models to tabulate")
    parser.add_argument("--out", type=Path, required=True, help="Markdown table to write")
    parser.add_argument("--figure", type=Path, required=True, help="PNG to write")
    args = parser.parse_args()
    main(args.sweep, args.points, args.models, args.out, args.figure)


if __name__ == "__main__":
    cli.run(_cli)
