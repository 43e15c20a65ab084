"""Stage `train@<model>`: train one of the three CNNs on the train split, steered by validation.

    python -m stages.train --model conv2 --data data/processed \
        --out models/conv2.keras --live metrics/train/conv2 --timing metrics/timing/conv2.json

Training is seeded and deterministic: the same params on the same machine give the
same weights. Per-epoch loss and accuracy (train and validation) are logged with
DVCLive under `--live`; the training time goes to `--timing`.
"""

import json
import math
import sys
import time
import zipfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from stages.common import cli
from stages.common.errors import PipelineError
from stages.common.files import atomic_dir, atomic_path
from stages.common.models import NUM_CLASSES, build_model
from stages.common.splits import load_split
from stages.common.tensorflow import keras, tf

if TYPE_CHECKING:
    from dvclive import Live

# Validation accuracy under this many times chance (one class in ten) counts as "at chance".
CHANCE_MARGIN = 1.5


@dataclass(frozen=True)
class TrainConfig:
    """Every hyperparameter training reads: the top-level keys plus the `train` section."""

    seed: int
    lr: float
    epochs: int
    batch_size: int
    optimizer: str
    momentum: float
    schedule: str
    warmup_epochs: int
    decay_rate: float
    decay_epochs: int
    nesterov: bool
    weight_decay: float
    early_stopping_patience: int
    horizontal_flip: bool
    label_smoothing: float

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "TrainConfig":
        merged = {**params, **params["train"]}
        return cls(**{field.name: merged[field.name] for field in fields(cls)})


def main(model_name: str, model_settings: dict[str, Any], data_dir: Path, model_out: Path,
         live_dir: Path, timing_out: Path, config: TrainConfig) -> None:
    from dvclive import Live  # after stages.common.tensorflow, whose settings must come first

    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()
    train_split = load_split(data_dir / "train.npz")
    validation_split = load_split(data_dir / "validation.npz")
    train_size = len(train_split[1])
    if config.batch_size > train_size:
        raise PipelineError(f"batch_size {config.batch_size} is larger than the training set ({train_size} "
                            f"images); choose at most {train_size}")
    model = compile_model(model_name, model_settings, config, train_size=train_size)
    # The outputs are written beside their targets and swapped in together at the end:
    # a failed or interrupted run leaves the previous set intact. The training time is
    # kept apart from the DVCLive folder, so that a retrain with the same params gives a
    # byte-identical folder and model, and everything downstream stays cached.
    with atomic_path(model_out) as model_tmp, atomic_dir(live_dir) as live_tmp, \
            atomic_path(timing_out) as timing_tmp:
        with Live(dir=str(live_tmp), dvcyaml=False, save_dvc_exp=False) as live:
            started = time.perf_counter()
            history = fit(model, train_split, validation_split, config, make_callbacks(config, live))
            seconds = round(time.perf_counter() - started, 1)
            live.summary["epochs_run"] = len(history.history["loss"])
            live.summary["at_chance"] = warn_if_at_chance(model_name, history.history["val_accuracy"][-1])
        save_model(model, model_tmp)
        timing_tmp.write_text(json.dumps({"train_time_s": seconds, "epochs_run": len(history.history["loss"])},
                                         indent=2) + "\n")


def warn_if_at_chance(model_name: str, val_accuracy: float) -> bool:
    """Whether the model ended where guessing would (one class in ten), said on stderr if so."""
    at_chance = val_accuracy < CHANCE_MARGIN / NUM_CLASSES
    if at_chance:
        print(f"warning: {model_name} ended at chance level (validation accuracy {val_accuracy:.3f}): it "
              "learned nothing; lower lr or try another optimizer", file=sys.stderr)
    return at_chance


def save_model(model: keras.Model, path: Path) -> None:
    """model.save, minus what Keras stamps in that is not the model (the save time, memory
    addresses): the same weights give the same bytes."""
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        members = [(info, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w") as archive:
        for info, content in members:
            if info.filename == "metadata.json":
                metadata = json.loads(content)
                metadata.pop("date_saved", None)
                content = json.dumps(metadata).encode()
            elif info.filename == "config.json":
                content = json.dumps(_number_shared_objects(json.loads(content), {})).encode()
            info.date_time = (1980, 1, 1, 0, 0, 0)
            archive.writestr(info, content)


def _number_shared_objects(node: Any, numbers: dict[int, int]) -> Any:
    """Keras marks objects used twice with their id(), a memory address; number them 1, 2, ... instead."""
    if isinstance(node, dict):
        return {key: numbers.setdefault(value, len(numbers) + 1) if key == "shared_object_id"
                else _number_shared_objects(value, numbers) for key, value in node.items()}
    if isinstance(node, list):
        return [_number_shared_objects(item, numbers) for item in node]
    return node


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stop at the first batch whose loss is NaN or infinite: nothing after it can be trusted."""

    def __init__(self, config: TrainConfig) -> None:
        super().__init__()
        self.config, self.epoch = config, 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = float(logs["loss"])
        if not math.isfinite(loss):
            raise PipelineError(
                f"training diverged: the loss became {loss} at epoch {self.epoch + 1}, step {batch + 1}; "
                f"lower lr (now {self.config.lr:g}) or try another optimizer; nothing was written"
            )


def compile_model(model_name: str, model_settings: dict[str, Any], config: TrainConfig,
                  train_size: int) -> keras.Sequential:
    """The model with its optimizer; the schedule counts steps, so it needs the training-set size."""
    model = build_model(model_name, model_settings)
    model.compile(
        optimizer=make_optimizer(config, steps_per_epoch=-(-train_size // config.batch_size)),
        # Keras 3's sparse loss has no label smoothing, hence one-hot labels (see `one_hot`).
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=["accuracy"],
    )
    return model


def fit(model: keras.Model, train_split: tuple[np.ndarray, np.ndarray],
        validation_split: tuple[np.ndarray, np.ndarray], config: TrainConfig,
        callbacks: list[keras.callbacks.Callback]) -> keras.callbacks.History:
    """Train for `config.epochs` (or until early stopping), validating after every epoch."""
    return model.fit(
        training_dataset(*train_split, config),
        validation_data=tf.data.Dataset.from_tensor_slices(validation_split).batch(config.batch_size).map(one_hot),
        epochs=config.epochs,
        shuffle=False,  # training_dataset already reshuffles every epoch, seeded
        callbacks=callbacks,
        verbose=2,
    )


def training_dataset(images: np.ndarray, labels: np.ndarray, config: TrainConfig) -> tf.data.Dataset:
    """Seeded shuffle each epoch, batching, (optionally) random left-right flips, one-hot labels."""
    dataset = (
        tf.data.Dataset.from_tensor_slices((images, labels))
        .shuffle(len(labels), seed=config.seed, reshuffle_each_iteration=True)
        .batch(config.batch_size)
    )
    if config.horizontal_flip:
        dataset = dataset.map(lambda x, y: (tf.image.random_flip_left_right(x, seed=config.seed), y))
    return dataset.map(one_hot).prefetch(tf.data.AUTOTUNE)


def one_hot(images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The stored class indices as one-hot rows, which the label-smoothing loss needs."""
    return images, tf.one_hot(tf.cast(labels, tf.int32), NUM_CLASSES)


def make_schedule(config: TrainConfig, steps_per_epoch: int) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """The learning rate per optimizer step, starting from `lr`. `plateau` is a callback, so constant here."""
    if config.schedule in ("constant", "plateau"):
        return config.lr
    if config.schedule == "step":
        return keras.optimizers.schedules.ExponentialDecay(
            config.lr, decay_steps=config.decay_epochs * steps_per_epoch,
            decay_rate=config.decay_rate, staircase=True,
        )
    if config.schedule == "exponential":
        return keras.optimizers.schedules.ExponentialDecay(
            config.lr, decay_steps=steps_per_epoch, decay_rate=config.decay_rate,
        )
    warmup_epochs = min(config.warmup_epochs, config.epochs - 1)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup_epochs else config.lr,
        decay_steps=(config.epochs - warmup_epochs) * steps_per_epoch,
        warmup_target=config.lr if warmup_epochs else None,
        warmup_steps=warmup_epochs * steps_per_epoch,
    )


def make_optimizer(config: TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    # Named, not numbered by Keras's per-process counter, so that saved models compare equal.
    common = {"learning_rate": make_schedule(config, steps_per_epoch), "name": config.optimizer}
    if config.optimizer == "adam":
        return keras.optimizers.Adam(**common)
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(**common, weight_decay=config.weight_decay)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(**common, momentum=config.momentum, nesterov=config.nesterov)
    if config.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(**common, momentum=config.momentum)
    raise PipelineError(f"unknown optimizer {config.optimizer!r}; choose adam, adamw, sgd or rmsprop")


def make_callbacks(config: TrainConfig, live: "Live | None") -> list[keras.callbacks.Callback]:
    """Early stopping and the validation-driven plateau schedule if enabled, the stop on a
    non-finite loss, then DVCLive logging if `live`."""
    from dvclive.keras import DVCLiveCallback

    callbacks: list[keras.callbacks.Callback] = [StopOnNonFiniteLoss(config)]
    if live:
        callbacks.append(DVCLiveCallback(live=live))
    if config.schedule == "plateau":
        callbacks.insert(0, keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=config.decay_rate, patience=config.decay_epochs, verbose=1,
        ))
    if config.early_stopping_patience:
        callbacks.insert(0, keras.callbacks.EarlyStopping(
            monitor="val_accuracy", mode="max", patience=config.early_stopping_patience,
            restore_best_weights=True, verbose=1,
        ))
    return callbacks


def _cli() -> None:
    parser = cli.stage_parser(__doc__)
    parser.add_argument("--model", required=True, help="a key of `models` in params.yaml, e.g. conv1")
    parser.add_argument("--data", type=Path, required=True, help="folder with train.npz, validation.npz")
    parser.add_argument("--out", type=Path, required=True, help="where to save the trained .keras model")
    parser.add_argument("--live", type=Path, required=True, help="DVCLive folder for curves and summary")
    parser.add_argument("--timing", type=Path, required=True, help="JSON to write with the training time")
    args = parser.parse_args()
    params = cli.params_from(args)
    if args.model not in params["models"]:
        raise PipelineError(f"unknown model {args.model!r}; choose one of {', '.join(params['models'])}")
    main(args.model, params["models"][args.model], args.data, args.out, args.live, args.timing,
         TrainConfig.from_params(params))


if __name__ == "__main__":
    cli.run(_cli)
