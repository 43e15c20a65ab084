"""Stage `report`: one table, one figure and the training curves, comparing the models.

    python -m stages.report --metrics metrics --out metrics/results.md \
        --figure metrics/figures/validation_curves.png --curves metrics/curves

Reads, per model, `metrics/test/<model>.json` and `metrics/details/<model>.json` (from
evaluate) and the curves in `metrics/train/<model>/plots/` (from train); writes a
Markdown table (parameters, test accuracy and loss, epochs), a PNG of the validation
curves, and `<curves>/<model>.tsv`: loss and accuracy per epoch, train and validation.
dvc.yaml's plots draw those TSVs. They are in git, unlike the DVCLive folders in DVC's
cache, so that `dvc exp run` on one model in a fresh clone never needs another model's.
"""

import csv
import io
from pathlib import Path
from typing import Any

from stages.common import cli
from stages.common.errors import written_by
from stages.common.figures import plt, save_figure
from stages.common.files import atomic_dir, atomic_path
from stages.common.inputs import TEXT_LIMIT, parse_json, read_text

# No training time: it differs on every run, and the table should change only when results do.
HEADER = ("model", "parameters", "test accuracy", "test loss", "epochs")
CURVES = {"train": "train", "eval": "validation"}  # DVCLive's folder: the column prefix in <model>.tsv


def main(models: list[str], metrics_dir: Path, report_out: Path, figure_out: Path, curves_out: Path) -> None:
    scores = {model: evaluation_scores(model, metrics_dir) for model in models}
    curves = {model: read_curves(metrics_dir / "train" / model) for model in models}  # each TSV read once
    rows = [table_row(model, *scores[model], epochs=len(curves[model]["validation_loss"])) for model in models]
    with atomic_path(report_out) as table, atomic_path(figure_out) as figure, atomic_dir(curves_out) as folder:
        table.write_text(render_table(rows))
        save_figure(plot_curves({model: _validation(columns) for model, columns in curves.items()}), figure)
        for model, columns in curves.items():
            (folder / f"{model}.tsv").write_text(curves_table(columns))


def evaluation_scores(model: str, metrics_dir: Path) -> tuple[int, float, float]:
    """The model's parameter count, test accuracy and test loss, from the evaluate stage's files."""
    accuracy, loss = _read_json(metrics_dir / "test" / f"{model}.json", "accuracy", "loss")
    [params] = _read_json(metrics_dir / "details" / f"{model}.json", "params")
    return params, accuracy, loss


def table_row(model: str, params: int, accuracy: float, loss: float, epochs: int) -> tuple[str, ...]:
    return model, f"{params:,}", f"{accuracy:.4f}", f"{loss:.4f}", str(epochs)


def render_table(rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def read_curves(live_dir: Path) -> dict[str, list[float]]:
    """DVCLive's four per-epoch curves of one model: train_/validation_ loss and accuracy."""
    return {f"{prefix}_{name}": _read_tsv_column(live_dir / "plots" / "metrics" / part / f"{name}.tsv", name)
            for part, prefix in CURVES.items() for name in ("loss", "accuracy")}


def _validation(columns: dict[str, list[float]]) -> dict[str, list[float]]:
    return {name: columns[f"validation_{name}"] for name in ("accuracy", "loss")}


def curves_table(columns: dict[str, list[float]]) -> str:
    """One model's curves as one TSV: epoch, then train_/validation_ loss and accuracy."""
    epochs = len(columns["validation_loss"])
    lines = ["\t".join(["epoch", *columns])]
    lines += ["\t".join([str(epoch + 1), *(repr(values[epoch]) for values in columns.values())])
              for epoch in range(epochs)]
    return "\n".join(lines) + "\n"


def plot_curves(curves: dict[str, dict[str, list[float]]]) -> plt.Figure:
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for model, curve in curves.items():
        epochs = range(1, len(curve["accuracy"]) + 1)
        left.plot(epochs, curve["accuracy"], marker="o", label=model)
        right.plot(epochs, curve["loss"], marker="o", label=model)
    for axes, name in ((left, "accuracy"), (right, "loss")):
        axes.set_xlabel("epoch")
        axes.set_ylabel(f"validation {name}")
        axes.grid(alpha=0.3)
        axes.legend()
    figure.suptitle("Validation curves by model depth")
    figure.tight_layout()
    return figure


def _read_json(path: Path, *keys: str) -> list[Any]:
    with written_by("train and evaluate stages", path):
        content = parse_json(read_text(path, TEXT_LIMIT, "a metrics file"))
        return [content[key] for key in keys]


def _read_tsv_column(path: Path, column: str) -> list[float]:
    with written_by("train stage", path):
        tsv = io.StringIO(read_text(path, TEXT_LIMIT, "a metrics file"), newline="")
        reader = csv.DictReader(tsv, delimiter="\t")
        if reader.fieldnames and reader.fieldnames.count(column) > 1:  # DictReader would keep the last
            raise ValueError(f"it names column {column!r} twice")
        return [float(row[column]) for row in reader]


def _cli() -> None:
    parser = cli.stage_parser(__doc__)
    parser.add_argument("--metrics", type=Path, required=True, help="the metrics folder the other stages wrote")
    parser.add_argument("--out", type=Path, required=True, help="Markdown results table to write")
    parser.add_argument("--figure", type=Path, required=True, help="PNG of validation curves to write")
    parser.add_argument("--curves", type=Path, required=True, help="folder to write each model's curves to, as TSV")
    args = parser.parse_args()
    main(list(cli.params_from(args)["models"]), args.metrics, args.out, args.figure, args.curves)


if __name__ == "__main__":
    cli.run(_cli)
