"""Wall time for each model to reach its target validation accuracy: naive recipe vs the defaults.

The naive recipe is Adam at 1e-3, batch 128, numpy arrays straight into `fit`, no
schedule and no augmentation. The defaults are whatever params.yaml says, trained by
the train stage's own code. Both run in this one process on the same machine, so the
ratio is meaningful even on a noisy shared host.

    python -m benchmarks.time_to_accuracy                      # all three models
    python -m benchmarks.time_to_accuracy --models 1_layer --max-epochs 10

Needs data/processed from the pipeline (`dvc repro split`).
"""

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from stages import train
from stages.common.params import load_params
from stages.common.splits import load_split

TARGETS = {"1_layer": 0.918, "2_layer": 0.929, "3_layer": 0.933}


class TimeToTarget(train.keras.callbacks.Callback):
    """Records the wall time at which validation accuracy first reaches `target`, then stops."""

    def __init__(self, target: float) -> None:
        super().__init__()
        self.target, self.seconds, self.best = target, None, 0.0

    def on_train_begin(self, logs=None) -> None:
        self.started = time.perf_counter()

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
        return f"not reached (best {timer.best:.4f})"
    return f"{timer.seconds:7.1f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(TARGETS))
    parser.add_argument("--max-epochs", type=int, default=None, help="cap for both recipes (default: params epochs)")
    parser.add_argument("--data", type=Path, default=Path("data/processed"))
    args = parser.parse_args()
    params = load_params("params.yaml")
    config = train.TrainConfig.from_params(params)
    epochs = args.max_epochs or config.epochs
    config = replace(config, epochs=epochs)

    splits = {name: load_split(args.data / f"{name}.npz") for name in ("train", "validation")}
    rows = []
    for name in args.models:
        settings, target = params["models"][name], TARGETS[name]
        naive = run_naive(name, settings, splits, epochs, target, config.seed)
        defaults = run_defaults(name, settings, splits, config, target)
        ratio = (f"{naive.seconds / defaults.seconds:.2f}x" if naive.seconds and defaults.seconds else "n/a")
        rows.append((name, target, describe(naive), describe(defaults), ratio))

    print(f"\nTime to reach the target validation accuracy (max {epochs} epochs each):")
    print(f"{'model':8} {'target':>7} {'naive':>28} {'defaults':>28} {'speed-up':>9}")
    for name, target, naive, defaults, ratio in rows:
        print(f"{name:8} {target:7.3f} {naive:>28} {defaults:>28} {ratio:>9}")


if __name__ == "__main__":
    main()
