"""Stage `sweep_report` (Snakemake sweeps only): one table and one figure for a whole sweep.

    python -m stages.sweep_report --sweep sweeps/lr.tsv --points sweeps/lr \
        --out sweeps/lr/results.md --figure sweeps/lr/results.png --models conv1 conv2 conv3

Reads `<points>/<point>/metrics/test/<model>.json` for every row of the sweep's table
and writes a Markdown table (the row's values, then each model's test accuracy) and a
PNG with one group of bars per point.
"""

import json
from pathlib import Path

import numpy as np

from stages.common import cli
from stages.common.errors import written_by
from stages.common.figures import plt, save_figure
from stages.common.files import atomic_path
from stages.common.sweeps import point_name, read_rows


def main(sweep: Path, points_dir: Path, models: list[str], table_out: Path, figure_out: Path) -> None:
    rows = point_rows(sweep)
    accuracy = {name: [_accuracy(points_dir / name / "metrics" / "test" / f"{model}.json") for model in models]
                for name, _ in rows}
    keys = list(rows[0][1])
    lines = ["| " + " | ".join([*keys, *(f"{model} test accuracy" for model in models)]) + " |",
             "|" + "---|" * (len(keys) + len(models))]
    lines += ["| " + " | ".join([*values.values(), *(f"{a:.4f}" for a in accuracy[name])]) + " |"
              for name, values in rows]
    with atomic_path(table_out) as table, atomic_path(figure_out) as figure:
        table.write_text("\n".join(lines) + "\n")
        save_figure(plot(rows, models, accuracy), figure)


def point_rows(sweep: Path) -> list[tuple[str, dict[str, str]]]:
    """(point name, {key: value as written}) per row of the sweep's table."""
    return [(point_name(row), row) for row in read_rows(sweep)]


def plot(rows: list[tuple[str, dict[str, str]]], models: list[str], accuracy: dict[str, list[float]]) -> plt.Figure:
    figure, axes = plt.subplots(figsize=(max(6.0, 1.2 * len(rows)), 4))
    width = 0.8 / len(models)
    for index, model in enumerate(models):
        axes.bar(np.arange(len(rows)) + index * width, [accuracy[name][index] for name, _ in rows],
                 width, label=model)
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
        return float(json.loads(path.read_text())["accuracy"])


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
