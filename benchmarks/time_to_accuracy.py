"""Wall time for each model to reach its target validation accuracy: naive recipe vs the defaults.

The naive recipe is Adam at 1e-3, batch 128, numpy arrays straight into `fit`, no
schedule and no augmentation. The defaults are whatever params.yaml says, trained by
the train stage's own code. Both run in this one process on the same machine, so the
ratio is meaningful even on a noisy shared host.

    python -m benchmarks.time_to_accuracy                      # all three models
    python -m benchmarks.time_to_accuracy --models conv1 --naive-epochs 15
    python -m benchmarks.time_to_accuracy --set lr=0.001       # other "defaults", as dvc exp run -S

The defaults train for params.yaml's `epochs` (their schedule is laid out over that
many); the naive recipe gets `--naive-epochs` (default twice as many). Where the naive
recipe never reaches the target, the speed-up printed is a lower bound: its whole run
against the defaults' time to target.

Needs data/processed from the pipeline (`dvc repro split`).
"""

import time
from pathlib import Path

import numpy as np

from stages import train
from stages.common import cli
from stages.common.errors import PipelineError
from stages.common.splits import load_split

# Target validation accuracy per model of params.yaml (tests/test_benchmarks.py checks
# that every model has one).
TARGETS = {"conv1": 0.918, "conv2": 0.929, "conv3": 0.933}


class TimeToTarget(train.keras.callbacks.Callback):
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
    train.keras.utils.set_random_seed(seed)
    images, labels = splits["train"]
    model = train.build_model(model_name, settings)
    model.compile(optimizer=train.keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    timer = TimeToTarget(target)
    model.fit(images, labels, batch_size=128, epochs=epochs, validation_data=splits["validation"],
              callbacks=[timer], verbose=2)
    return timer


def run_defaults(model_name: str, settings: dict, splits: dict[str, Split], config: train.TrainConfig,
                 target: float) -> TimeToTarget:
    train.keras.utils.set_random_seed(config.seed)
    model = train.compile_model(model_name, settings, config, train_size=len(splits["train"][1]))
    timer = TimeToTarget(target)
    train.fit(model, splits["train"], splits["validation"], config,
              [*train.make_callbacks(config, live=None), timer])
    return timer


def describe(timer: TimeToTarget) -> str:
    if timer.seconds is None:
        return f"not in {timer.total:.0f} s (best {timer.best:.4f})"
    return f"{timer.seconds:7.1f} s"


def speed_up(naive: TimeToTarget, defaults: TimeToTarget) -> str:
    if defaults.seconds is None:
        return "n/a"
    if naive.seconds is None:
        return f">{naive.total / defaults.seconds:.2f}x"
    return f"{naive.seconds / defaults.seconds:.2f}x"


def main() -> None:
    parser = cli.stage_parser(__doc__)  # --params and --set, as the stages take them
    parser.add_argument("--models", nargs="+", help="models of params.yaml to time (default: all)")
    parser.add_argument("--naive-epochs", type=int, default=None,
                        help="cap for the naive recipe (default: twice params.yaml's epochs)")
    parser.add_argument("--data", type=Path, default=Path("data/processed"))
    args = parser.parse_args()
    params = cli.params_from(args)
    config = train.TrainConfig.from_params(params)
    naive_epochs = args.naive_epochs or 2 * config.epochs
    models = args.models or list(params["models"])
    unknown = [name for name in models if name not in params["models"] or name not in TARGETS]
    if unknown:
        raise PipelineError(f"--models: no model {', '.join(unknown)} with a target accuracy; "
                            f"choose from {', '.join(name for name in params['models'] if name in TARGETS)}")

    splits = {name: load_split(args.data / f"{name}.npz") for name in ("train", "validation")}
    rows = []
    for name in models:
        settings, target = params["models"][name], TARGETS[name]
        naive = run_naive(name, settings, splits, naive_epochs, target, config.seed)
        defaults = run_defaults(name, settings, splits, config, target)
        rows.append((name, target, describe(naive), describe(defaults), speed_up(naive, defaults)))

    print(f"\nTime to reach the target validation accuracy (naive: up to {naive_epochs} epochs, "
          f"defaults: {config.epochs}):")
    print(f"{'model':8} {'target':>7} {'naive':>28} {'defaults':>28} {'speed-up':>9}")
    for name, target, naive, defaults, ratio in rows:
        print(f"{name:8} {target:7.3f} {naive:>28} {defaults:>28} {ratio:>9}")


if __name__ == "__main__":
    cli.run(main)
