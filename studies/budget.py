"""The budget study's tables and figure, rebuilt from the committed sweep points.

    python -m studies.budget        # writes studies/budget/results.md and .png

Does the learning-rate study's answer hold at three times the epochs? Two Snakemake sweeps
(see studies/learning_rate.md, "At three times the budget"):

- `sweeps/budget_sgd_screen.tsv`: SGD with Nesterov momentum under the defaults' cosine
  schedule, 30 epochs, three peak rates, conv1, seed 1; the rate is chosen on validation;
- `sweeps/budget.tsv`: the defaults (Adam) against that SGD, 30 epochs, seeds 1-3, every depth.

Next to them stand the defaults at 10 epochs, from the learning-rate study's `lr_seeds`.
As there, nothing is trained here, choices are made on validation, and test accuracy is
only reported.
"""

import statistics
from dataclasses import replace
from pathlib import Path

from stages.common import cli
from stages.common.figures import plt
from studies.learning_rate import (
    MODELS,
    SWEEPS,
    Cell,
    Run,
    by_depth_table,
    by_depth_test_accuracy,
    load_runs,
    mean_sd,
    search_table,
    seed_cells,
    seeds_table,
    technique,
    write_results,
)

OUT = Path("studies/budget")
DEFAULTS = "Adam"  # technique() of the defaults' row in lr_seeds: Adam, cosine with warm-up, smoothing 0.1
COLOURS = {"Adam": "tab:blue", "SGD+Nesterov": "tab:orange"}


def epochs(run: Run) -> int:
    return int(run.settings["epochs"])


def budget_runs(root: Path = SWEEPS) -> list[Run]:
    """The 30-epoch runs of sweeps/budget.tsv, and the defaults' 10-epoch runs of the learning-rate study."""
    short = [run for run in load_runs("lr_seeds", root) if technique(run.settings) == DEFAULTS]
    return short + load_runs("budget", root)


def labelled_cells(runs: list[Run]) -> list[Cell]:
    """Cells over seeds, each technique named with its budget: 'Adam, 10 epochs'."""
    by_budget: dict[int, list[Run]] = {}
    for run in runs:
        by_budget.setdefault(epochs(run), []).append(run)
    return [replace(cell, technique=f"{cell.technique}, {budget} epochs")
            for budget, group in sorted(by_budget.items()) for cell in seed_cells(group)]


def best_per_depth(cells: list[Cell]) -> list[str]:
    """Per depth, the cell with the best mean validation accuracy and the test accuracy it reaches."""
    lines = ["| depth | chosen on validation | validation | test |", "|---|---|---|---|"]
    for model in MODELS:
        candidates = [cell for cell in cells if cell.model == model and cell.validations]
        if candidates:
            best = max(candidates, key=lambda cell: statistics.mean(cell.validations))
            lines.append(f"| {model} | {best.technique} | {mean_sd(best.validations)} | {mean_sd(best.tests)} |")
    return lines


def plot_curves(runs: list[Run]) -> plt.Figure:
    """Validation accuracy after each epoch, one panel per depth, one line per seed: solid for
    30 epochs, dashed for the defaults at 10."""
    figure, panels = plt.subplots(1, len(MODELS), figsize=(4.6 * len(MODELS), 4), sharex=True)
    for axes, model in zip(panels, MODELS):
        shown = [run for run in runs if run.model == model and run.curve and not run.diverged]
        for run in shown:
            name = technique(run.settings)
            axes.plot(range(1, len(run.curve) + 1), run.curve, color=COLOURS.get(name, "tab:gray"),
                      linestyle="-" if epochs(run) > 10 else "--", linewidth=1, alpha=0.8)
        if shown:
            finals = [run.curve[-1] for run in shown]
            axes.set_ylim(min(finals) - 0.03, max(max(run.curve) for run in shown) + 0.005)
        axes.set_title(model)
        axes.set_xlabel("epoch")
        axes.grid(alpha=0.3)
    panels[0].set_ylabel("validation accuracy (a line per seed)")
    handles = [plt.Line2D([], [], color=colour, label=f"{name}, 30 epochs") for name, colour in COLOURS.items()]
    handles.append(plt.Line2D([], [], color=COLOURS[DEFAULTS], linestyle="--", label=f"{DEFAULTS}, 10 epochs"))
    panels[-1].legend(handles=handles, loc="lower right")
    figure.suptitle("The defaults (Adam) against SGD with Nesterov momentum, cosine schedule, batch 128")
    figure.tight_layout()
    return figure


def main(root: Path = SWEEPS, out: Path = OUT) -> None:
    sections = []
    screen = load_runs("budget_sgd_screen", root)
    if screen:
        sections += ["## Step 1: SGD+Nesterov's peak rate at 30 epochs (conv1, seed 1)", "",
                     *search_table(screen), ""]
    runs = budget_runs(root)
    cells = labelled_cells(runs)
    if cells:
        sections += ["## Step 2: each technique and budget at every depth, three seeds", "",
                     *by_depth_test_accuracy(cells),
                     "Validation accuracy, the same cells:", "",
                     *by_depth_table(cells, lambda cell: mean_sd(cell.validations)), "",
                     "The best each depth reaches, chosen on validation:", "", *best_per_depth(cells), "",
                     "Every cell:", "", *seeds_table(cells), ""]
    write_results(out, "Budget study", "studies.budget", sections, plot_curves(runs) if cells else None)


def _cli() -> None:
    parser = cli.stage_parser(__doc__)
    parser.parse_args()
    main()


if __name__ == "__main__":
    cli.run(_cli)
