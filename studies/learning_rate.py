"""The learning-rate study's tables and figure, rebuilt from the committed sweep points.

    python -m studies.learning_rate        # writes studies/learning_rate/results.md and .png

The study runs as three Snakemake sweeps (see studies/learning_rate.md):

- `sweeps/lr_search.tsv`: each optimizer at three rates, constant, conv1 only;
- `sweeps/lr_schedules.tsv`: each optimizer at its chosen rate under the other schedules, conv1;
- `sweeps/lr_seeds.tsv`: the best schedule per optimizer, and the naive baseline, at every
  depth, three seeds each.

Nothing is trained here: every figure comes from the points' small metrics files
(`sweeps/<sweep>/<point>/metrics/...`), which are in git. Choices are made on the final
validation accuracy; test accuracy is only reported.
"""

import csv
import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks.targets import TARGETS
from stages.common import cli
from stages.common.errors import written_by
from stages.common.figures import plt, save_figure
from stages.common.files import atomic_path
from stages.common.sweeps import MODEL_COLUMN, point_name, read_rows, row_models
from stages.sweep_report import DIVERGED, outcome

SWEEPS = Path("sweeps")
OUT = Path("studies/learning_rate")
MODELS = list(TARGETS)


@dataclass(frozen=True)
class Run:
    """One model trained at one point of a sweep."""

    settings: dict[str, str]  # the row's values as written, the model column left out
    model: str
    diverged: bool
    validation: float | None  # final validation accuracy
    test: float | None
    train_time_s: float
    epochs_run: int
    curve: tuple[float, ...]  # validation accuracy after each epoch

    @property
    def epochs_to_target(self) -> int | None:
        """The first epoch whose validation accuracy reached TARGETS[model]."""
        return next((epoch for epoch, accuracy in enumerate(self.curve, start=1) if accuracy >= TARGETS[self.model]),
                    None)

    @property
    def seconds_to_target(self) -> float | None:
        """Training time up to that epoch, taking every epoch as equally long."""
        if self.epochs_to_target is None or self.diverged:
            return None
        return self.train_time_s * self.epochs_to_target / self.epochs_run


def load_runs(sweep: str, root: Path = SWEEPS) -> list[Run]:
    """Every (point, model) of sweeps/<sweep>.tsv whose metrics are there; [] if the sweep is not."""
    table = root / f"{sweep}.tsv"
    if not table.exists():
        return []
    runs = []
    for row in read_rows(table):
        point = root / sweep / point_name(row)
        settings = {key: value for key, value in row.items() if key != MODEL_COLUMN}
        for model in row_models(row, MODELS):
            if (point / "metrics" / "test" / f"{model}.json").exists():
                runs.append(read_run(point, model, settings))
    return runs


def read_run(point: Path, model: str, settings: dict[str, str]) -> Run:
    result = outcome(point, model)  # (validation, test) or DIVERGED, as the sweep's own table has it
    diverged = result == DIVERGED
    timing_path = point / "metrics" / "timing" / f"{model}.json"
    curve_path = point / "metrics" / "train" / model / "plots" / "metrics" / "eval" / "accuracy.tsv"
    with written_by("train stage", curve_path):
        timing = json.loads(timing_path.read_text())
        with curve_path.open() as curve:
            accuracies = [float(line["accuracy"]) for line in csv.DictReader(curve, delimiter="\t")]
    return Run(settings, model, diverged, None if diverged else result[0], None if diverged else result[1],
               timing["train_time_s"], timing["epochs_run"], tuple(accuracies))


def technique(settings: dict[str, str]) -> str:
    """A short name for a row's optimizer setting: 'SGD+momentum', 'Adam', ..."""
    optimizer = settings["optimizer"]
    if optimizer == "sgd":
        return "SGD+Nesterov" if settings.get("train.nesterov") == "true" else "SGD+momentum"
    if settings.get("train.label_smoothing") == "0":
        return "naive (Adam 1e-3)"
    return {"adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop"}[optimizer]


def accuracy_text(value: float | None) -> str:
    return "diverged" if value is None else f"{value:.4f}"


def search_table(runs: list[Run]) -> list[str]:
    """Step 1: validation accuracy of conv1 per optimizer and rate (constant rate)."""
    lines = ["| optimizer | lr | validation | test |", "|---|---|---|---|"]
    for run in runs:
        lines.append(f"| {technique(run.settings)} | {run.settings['lr']} | {accuracy_text(run.validation)} "
                     f"| {accuracy_text(run.test)} |")
    return lines


def schedule_table(runs: list[Run]) -> list[str]:
    """Step 2: validation accuracy of conv1 per optimizer and schedule, at the chosen rate."""
    schedules = ["constant", "step", "cosine", "plateau"]
    by_cell = {(technique(run.settings), run.settings["train.schedule"]): run for run in runs}
    techniques = list(dict.fromkeys(technique(run.settings) for run in runs))
    lines = ["| optimizer | lr | " + " | ".join(schedules) + " |", "|---|---|" + "---|" * len(schedules)]
    for name in techniques:
        lr = next(run.settings["lr"] for run in runs if technique(run.settings) == name)
        cells = [accuracy_text(by_cell[name, schedule].validation) if (name, schedule) in by_cell else "-"
                 for schedule in schedules]
        lines.append(f"| {name} | {lr} | " + " | ".join(cells) + " |")
    return lines


@dataclass(frozen=True)
class Cell:
    """One technique at one depth over its seeds."""

    technique: str
    settings: str
    model: str
    tests: list[float]
    validations: list[float]
    seconds_to_target: list[float | None]
    diverged: int


def seed_cells(runs: list[Run]) -> list[Cell]:
    """Step 3: the runs grouped by technique and depth, over seeds."""
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        settings = ", ".join(f"{key}={value}" for key, value in run.settings.items() if key != "seed")
        groups.setdefault((settings, run.model), []).append(run)
    cells = []
    for (settings, model), group in groups.items():
        fine = [run for run in group if not run.diverged]
        cells.append(Cell(technique(group[0].settings), settings, model, [run.test for run in fine],
                          [run.validation for run in fine], [run.seconds_to_target for run in fine],
                          len(group) - len(fine)))
    return cells


def targets_text() -> str:
    return " / ".join(f"{TARGETS[model]}" for model in MODELS) + " for " + " / ".join(MODELS)


def mean_sd(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def time_text(seconds: list[float | None]) -> str:
    reached = [value for value in seconds if value is not None]
    if not reached:
        return "not reached"
    note = "" if len(reached) == len(seconds) else f" ({len(reached)} of {len(seconds)} seeds)"
    return f"{statistics.median(reached):.0f} s{note}"


def seeds_table(cells: list[Cell]) -> list[str]:
    lines = ["| depth | technique | seeds | validation, mean ± sd | test, mean ± sd | time to target |",
             "|---|---|---|---|---|---|"]
    for model in MODELS:
        for cell in sorted((cell for cell in cells if cell.model == model),
                           key=lambda cell: -statistics.mean(cell.validations or [0.0])):
            seeds = f"{len(cell.tests)}" + (f" (+{cell.diverged} diverged)" if cell.diverged else "")
            lines.append(f"| {model} | {cell.technique} | {seeds} | {mean_sd(cell.validations)} | "
                         f"{mean_sd(cell.tests)} | {time_text(cell.seconds_to_target)} |")
    return lines


def by_depth_table(cells: list[Cell], describe: Callable[[Cell], str]) -> list[str]:
    """Techniques as rows and depths as columns, each cell as `describe` writes it.

    Per depth, the technique with the best mean validation accuracy is in bold: the choice is
    made on validation, and the test column only reports it.
    """
    techniques = list(dict.fromkeys(cell.technique for cell in cells))
    by_key = {(cell.technique, cell.model): cell for cell in cells}
    models = [model for model in MODELS if any(cell.model == model for cell in cells)]
    best = {model: max((cell for cell in cells if cell.model == model and cell.validations),
                       key=lambda cell: statistics.mean(cell.validations)).technique for model in models}
    lines = ["| technique | " + " | ".join(models) + " |", "|---|" + "---|" * len(models)]
    for name in techniques:
        texts = []
        for model in models:
            cell = by_key.get((name, model))
            text = "-" if cell is None else describe(cell)
            texts.append(f"**{text}**" if best[model] == name else text)
        lines.append(f"| {name} | " + " | ".join(texts) + " |")
    return lines


def plot_seeds(cells: list[Cell]) -> plt.Figure:
    """Test accuracy per technique, one panel per depth: every seed as a dot, the mean as a bar."""
    figure, panels = plt.subplots(1, len(MODELS), figsize=(4.2 * len(MODELS), 4), sharey=False)
    for axes, model in zip(panels, MODELS):
        ordered = sorted((cell for cell in cells if cell.model == model and cell.tests),
                         key=lambda cell: statistics.mean(cell.tests))
        for position, cell in enumerate(ordered):
            mean = statistics.mean(cell.tests)
            axes.barh(position, mean, color="tab:gray" if "naive" in cell.technique else "tab:blue", alpha=0.35)
            axes.plot(cell.tests, [position] * len(cell.tests), "o", color="black", markersize=4)
        axes.set_yticks(range(len(ordered)), [cell.technique for cell in ordered])
        if ordered:
            low = min(min(cell.tests) for cell in ordered)
            high = max(max(cell.tests) for cell in ordered)
            axes.set_xlim(low - 0.004, high + 0.002)
        axes.set_title(model)
        axes.set_xlabel("test accuracy (dots: seeds)")
        axes.grid(axis="x", alpha=0.3)
    figure.suptitle("Learning-rate techniques by depth: 10 epochs, batch 128")
    figure.tight_layout()
    return figure


def main(root: Path = SWEEPS, out: Path = OUT) -> None:
    sections = []
    search = load_runs("lr_search", root)
    if search:
        sections += ["## Step 1: a rate per optimizer (conv1, constant rate)", "", *search_table(search), ""]
    schedules = load_runs("lr_schedules", root)
    if schedules:
        rates = chosen_rates(search)
        constant = [run for run in search if run.settings["lr"] == rates.get(technique(run.settings))]
        sections += ["## Step 2: schedules (conv1, each optimizer at its rate)", "",
                     *schedule_table(constant + schedules), ""]
    seeds = load_runs("lr_seeds", root)
    cells = seed_cells(seeds)
    if seeds:
        sections += ["## Step 3: the best per optimizer and depth, three seeds", "", *by_depth_test_accuracy(cells),
                     f"Training time to the target validation accuracy ({targets_text()}), median over "
                     "seeds; in bold as above.", "",
                     *by_depth_table(cells, lambda cell: time_text(cell.seconds_to_target)), "",
                     "Every cell:", "", *seeds_table(cells), ""]
    write_results(out, "Learning-rate study", "studies.learning_rate", sections, plot_seeds(cells) if cells else None)


def by_depth_test_accuracy(cells: list[Cell]) -> list[str]:
    return ["Test accuracy, mean ± standard deviation over seeds; in bold, the best mean validation accuracy "
            "at each depth.", "", *by_depth_table(cells, lambda cell: mean_sd(cell.tests)), ""]


def write_results(out: Path, title: str, module: str, sections: list[str], figure: plt.Figure | None) -> None:
    """out/results.md (the sections under a heading that says how they were made), and out/results.png."""
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "results.md") as table:
        table.write_text(f"# {title}: the numbers\n\nWritten by `python -m {module}` from the committed sweep "
                         "points; see studies/learning_rate.md.\n\n" + "\n".join(sections))
    if figure is not None:
        with atomic_path(out / "results.png") as path:
            save_figure(figure, path)


def chosen_rates(search: list[Run]) -> dict[str, str]:
    """The rate with the best conv1 validation accuracy, per optimizer."""
    best: dict[str, Run] = {}
    for run in search:
        name = technique(run.settings)
        if run.validation is not None and (name not in best or run.validation > best[name].validation):
            best[name] = run
    return {name: run.settings["lr"] for name, run in best.items()}


def _cli() -> None:
    parser = cli.stage_parser(__doc__)
    parser.parse_args()
    main()


if __name__ == "__main__":
    cli.run(_cli)
