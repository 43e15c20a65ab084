"""Wall time for each model to reach its target validation accuracy: naive recipe vs the defaults.

The naive recipe is Adam at 1e-3, batch 128, numpy arrays straight into `fit`, no
schedule and no augmentation. The defaults are whatever params.yaml says, trained by
the train stage's own code. The two recipes alternate, model by model, for `--repeats` rounds,
all in this one process on the same machine: host noise hits both alike, and the
speed-up is the median of the per-round ratios, with their spread. Training is seeded,
so every round reaches the same accuracies at the same epochs; only the seconds vary.

    python -m benchmarks.time_to_accuracy                      # all three models
    python -m benchmarks.time_to_accuracy --models conv1 --naive-epochs 15
    python -m benchmarks.time_to_accuracy --set lr=0.001       # other "defaults", as dvc exp run -S
    python -m benchmarks.time_to_accuracy --repeats 5

The defaults train for params.yaml's `epochs` (their schedule is laid out over that
many); the naive recipe gets `--naive-epochs` (default twice as many). Where the naive
recipe never reaches the target, the speed-up printed is a lower bound: its whole run
against the defaults' time to target.

Needs data/processed from the pipeline (`dvc repro split`).
"""

import statistics
import time
from pathlib import Path

import numpy as np

from benchmarks.targets import TARGETS
from stages.common import cli, training
from stages.common.errors import PipelineError
from stages.common.models import build_model
from stages.common.splits import load_split
from stages.common.tensorflow import keras, pin_threads


class TimeToTarget(keras.callbacks.Callback):
    """Records the wall time at which validation accuracy first reaches `target`, then stops."""

    def __init__(self, target: float) -> None:
        super().__init__()
        self.target, self.seconds, self.best, self.total = target, None, 0.0, 0.0

    def on_train_begin(self, logs=None) -> None:
        self.started = time.perf_counter()

    def on_train_end(self, logs=None) -> None:
        self.total = time.perf_counter() - self.started

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        self.best = max(self.best, logs["val_accuracy"])
        if self.seconds is None and logs["val_accuracy"] >= self.target:
            self.seconds = time.perf_counter() - self.started
            self.model.stop_training = True


Split = tuple[np.ndarray, np.ndarray]  # (images, labels), as load_split returns them


def run_naive(model_name: str, settings: dict, splits: dict[str, Split], epochs: int, target: float,
              seed: int) -> TimeToTarget:
    keras.utils.set_random_seed(seed)
    images, labels = splits["train"]
    model = build_model(model_name, settings)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    timer = TimeToTarget(target)
    model.fit(images, labels, batch_size=128, epochs=epochs, validation_data=splits["validation"],
              callbacks=[timer], verbose=2)
    return timer


def run_defaults(model_name: str, settings: dict, splits: dict[str, Split], config: training.TrainConfig,
                 target: float) -> TimeToTarget:
    keras.utils.set_random_seed(config.seed)
    model = training.compile_model(model_name, settings, config, train_size=len(splits["train"][1]))
    timer = TimeToTarget(target)
    training.fit(model, splits["train"], splits["validation"], config,
                 [*training.make_callbacks(config, live=None), timer])
    return timer


def describe(timers: list[TimeToTarget]) -> str:
    """Median seconds to target (min-max), or how far the recipe got if it never reached it."""
    seconds = [timer.seconds for timer in timers if timer.seconds is not None]
    if len(seconds) < len(timers):  # seeded: a recipe reaches the target in every round or in none
        return f"not in {statistics.median(timer.total for timer in timers):.0f} s (best {timers[0].best:.4f})"
    return f"{statistics.median(seconds):.1f} s ({min(seconds):.1f}-{max(seconds):.1f})"


def speed_up(naive: list[TimeToTarget], defaults: list[TimeToTarget]) -> str:
    """The median of the per-round ratios (min-max); a lower bound ">" where naive never got there."""
    if any(timer.seconds is None for timer in defaults):
        return "n/a"
    bound = any(timer.seconds is None for timer in naive)
    ratios = [(slow.total if bound else slow.seconds) / fast.seconds for slow, fast in zip(naive, defaults)]
    return f"{'>' if bound else ''}{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"


def main() -> None:
    parser = cli.stage_parser(__doc__)  # --params and --set, as the stages take them
    parser.add_argument("--models", nargs="+", help="models of params.yaml to time (default: all)")
    parser.add_argument("--naive-epochs", type=int, default=None,
                        help="cap for the naive recipe (default: twice params.yaml's epochs)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of both recipes (default 3)")
    parser.add_argument("--data", type=Path, default=Path("data/processed"))
    args = parser.parse_args()
    params = cli.params_from(args)
    pin_threads(params["threads"])  # as the train stage does
    config = training.TrainConfig.from_params(params)
    naive_epochs = args.naive_epochs or 2 * config.epochs
    models = args.models or list(params["models"])
    unknown = [name for name in models if name not in params["models"] or name not in TARGETS]
    if unknown:
        raise PipelineError(f"--models: no model {', '.join(unknown)} with a target accuracy; "
                            f"choose from {', '.join(name for name in params['models'] if name in TARGETS)}")

    splits = {name: load_split(args.data / f"{name}.npz") for name in ("train", "validation")}
    timers: dict[str, dict[str, list[TimeToTarget]]] = {name: {"naive": [], "defaults": []} for name in models}
    for _ in range(args.repeats):
        for name in models:
            settings, target = params["models"][name], TARGETS[name]
            timers[name]["naive"].append(run_naive(name, settings, splits, naive_epochs, target, config.seed))
            timers[name]["defaults"].append(run_defaults(name, settings, splits, config, target))

    print(f"\nTime to reach the target validation accuracy, median (min-max) of {args.repeats} interleaved "
          f"rounds (naive: up to {naive_epochs} epochs, defaults: {config.epochs}):")
    print(f"{'model':8} {'target':>7} {'naive':>28} {'defaults':>28} {'speed-up':>22}")
    for name in models:
        naive, defaults = timers[name]["naive"], timers[name]["defaults"]
        print(f"{name:8} {TARGETS[name]:7.3f} {describe(naive):>28} {describe(defaults):>28} "
              f"{speed_up(naive, defaults):>22}")


if __name__ == "__main__":
    cli.run(main)
