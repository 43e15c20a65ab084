"""Stage `evaluate@<model>`: score a trained model on the held-out test split.

    python -m stages.evaluate --model-file models/conv2.keras --data data/processed \
        --metrics metrics/test/conv2.json --details metrics/details/conv2.json \
        --predictions metrics/predictions/conv2.csv --figures metrics/figures/conv2

Writes the metrics (test accuracy and loss), the details (parameter count, per-class
accuracy), one `actual,predicted` row per test image (DVC's confusion-matrix plot reads
it), and two PNGs: the confusion matrix and a grid of misclassified test images.
"""

import csv
import json
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from stages.common import cli
from stages.common.classes import CLASS_NAMES
from stages.common.figures import plt, save_figure
from stages.common.files import atomic_path
from stages.common.models import check_model_is, load_trained_model
from stages.common.scores import accuracy, cross_entropy
from stages.common.splits import load_split
from stages.common.tensorflow import pin_threads

MISCLASSIFIED_SHOWN = 25


def main(model_file: Path, data_dir: Path, metrics_out: Path, details_out: Path, predictions_out: Path,
         figures_dir: Path, model_name: str | None = None, model_settings: dict[str, Any] | None = None) -> None:
    """Score the model in `model_file`; where `model_name` is given, only if the file holds that model,
    built from `model_settings` (its `models.<name>` params) where those are given."""
    model = load_trained_model(model_file, "run the train stage for this model again")
    if model_name is not None:
        check_model_is(model, model_name, model_settings, model_file, f"run the train stage for {model_name} again")
    images, labels = load_split(data_dir / "test.npz")
    probabilities = model.predict(images, batch_size=512, verbose=0)
    predicted = probabilities.argmax(axis=1)
    confusion = confusion_matrix(labels, predicted)
    # Every output is written to a temporary file first and all are renamed together at
    # the end, so a failure leaves the previous set whole rather than a mix of old and new.
    with ExitStack() as outputs:
        def output(path: Path) -> Path:
            return outputs.enter_context(atomic_path(path))

        write_json(output(metrics_out), {
            "accuracy": accuracy(probabilities, labels),
            "loss": cross_entropy(probabilities, labels),
        })
        write_json(output(details_out), {
            "params": model.count_params(),
            "per_class_accuracy": dict(zip(CLASS_NAMES, per_class_accuracy(confusion))),
        })
        write_predictions(output(predictions_out), labels, predicted)
        save_figure(plot_confusion(confusion, model.name), output(figures_dir / "confusion.png"))
        save_figure(plot_misclassified(images, labels, predicted), output(figures_dir / "misclassified.png"))


def confusion_matrix(actual: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """counts[i, j]: test images of class i predicted as class j."""
    counts = np.zeros((len(CLASS_NAMES), len(CLASS_NAMES)), dtype=np.int64)
    np.add.at(counts, (actual, predicted), 1)
    return counts


def per_class_accuracy(confusion: np.ndarray) -> list[float]:
    totals = confusion.sum(axis=1)
    return [float(confusion[i, i] / totals[i]) if totals[i] else 0.0 for i in range(len(totals))]


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


def write_predictions(path: Path, actual: np.ndarray, predicted: np.ndarray) -> None:
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["actual", "predicted"])
        writer.writerows((CLASS_NAMES[a], CLASS_NAMES[p]) for a, p in zip(actual, predicted))


def plot_confusion(confusion: np.ndarray, title: str) -> plt.Figure:
    figure, axes = plt.subplots(figsize=(8, 7))
    axes.imshow(confusion, cmap="Blues")
    for (row, col), count in np.ndenumerate(confusion):
        color = "white" if count > confusion.max() / 2 else "black"
        axes.text(col, row, str(count), ha="center", va="center", fontsize=7, color=color)
    axes.set_xticks(range(len(CLASS_NAMES)), CLASS_NAMES, rotation=45, ha="right")
    axes.set_yticks(range(len(CLASS_NAMES)), CLASS_NAMES)
    axes.set_xlabel("predicted")
    axes.set_ylabel("actual")
    axes.set_title(f"{title}: confusion matrix on the test split")
    figure.tight_layout()
    return figure


def plot_misclassified(images: np.ndarray, labels: np.ndarray, predicted: np.ndarray) -> plt.Figure:
    wrong = np.flatnonzero(labels != predicted)[:MISCLASSIFIED_SHOWN]
    figure, grid = plt.subplots(5, 5, figsize=(9, 10))
    for axes in grid.flat:
        axes.axis("off")
    for axes, index in zip(grid.flat, wrong):
        axes.imshow(images[index].squeeze(), cmap="gray_r")
        axes.set_title(f"{CLASS_NAMES[labels[index]]}\nas {CLASS_NAMES[predicted[index]]}", fontsize=8)
    figure.suptitle(f"First {len(wrong)} misclassified test images (actual / predicted)")
    figure.tight_layout()
    return figure


def _cli() -> None:
    parser = cli.stage_parser(__doc__)
    parser.add_argument("--model-file", type=Path, required=True, help="trained .keras model")
    parser.add_argument("--data", type=Path, required=True, help="folder with test.npz")
    parser.add_argument("--metrics", type=Path, required=True, help="metrics JSON to write (test accuracy, loss)")
    parser.add_argument("--details", type=Path, required=True,
                        help="JSON to write with the parameter count and per-class accuracy")
    parser.add_argument("--predictions", type=Path, required=True, help="actual,predicted CSV to write")
    parser.add_argument("--figures", type=Path, required=True, help="folder for the PNG figures")
    args = parser.parse_args()
    params = cli.params_from(args)
    pin_threads(params["threads"])  # inference's bits depend on it too
    # models/<name>.keras stands for the model <name>: the pipeline's paths, and the sweeps'. DVC and
    # Snakemake pass its settings (`models.<name>`), so a model trained from other ones is refused.
    name = args.model_file.stem if args.model_file.stem in params["models"] else None
    main(args.model_file, args.data, args.metrics, args.details, args.predictions, args.figures, name,
         params["models"][name] if name else None)


if __name__ == "__main__":
    cli.run(_cli)
