"""How a model is trained: hyperparameters, optimizer and schedule, input pipeline, callbacks.

The train stage and the benchmarks both train through `compile_model` and `fit`, so a
benchmark measures exactly what `dvc repro` runs.
"""

import math
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from stages.common import cli
from stages.common.errors import PipelineError
from stages.common.models import NUM_CLASSES, build_model
from stages.common.tensorflow import keras, tf

if TYPE_CHECKING:
    from dvclive import Live


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


@dataclass(frozen=True)
class Execution:
    """How training runs on the machine, as opposed to what it computes: every setting here
    leaves the weights bit for bit the same, except XLA and the validation batch size (see
    the README's Benchmarks). The defaults are what the train stage uses;
    benchmarks/throughput.py measures the alternatives."""

    # Keras runs this many steps per call into TensorFlow, which saves conv1 (the smallest
    # model, whose steps are short) much of its per-step overhead.
    steps_per_execution: int = 16
    jit_compile: bool = False
    validation_batch_size: int | None = None  # None: the training batch size
    gather_batches: bool = True  # see `training_dataset`


def compile_model(model_name: str, model_settings: dict[str, Any], config: TrainConfig,
                  train_size: int, execution: Execution = Execution()) -> keras.Sequential:
    """The model with its optimizer; the schedule counts steps, so it needs the training-set size."""
    model = build_model(model_name, model_settings)
    model.compile(
        optimizer=make_optimizer(config, steps_per_epoch=-(-train_size // config.batch_size)),
        # Keras 3's sparse loss has no label smoothing, hence one-hot labels (see `one_hot`).
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=["accuracy"],
        steps_per_execution=execution.steps_per_execution,
        jit_compile=execution.jit_compile,
    )
    return model


def fit(model: keras.Model, train_split: tuple[np.ndarray, np.ndarray],
        validation_split: tuple[np.ndarray, np.ndarray], config: TrainConfig,
        callbacks: list[keras.callbacks.Callback], execution: Execution = Execution(),
        verbose: int = 2) -> keras.callbacks.History:
    """Train for `config.epochs` (or until early stopping), validating after every epoch.
    SIGTERM and Ctrl-C stop it between steps (see `cli.signals_deferred`)."""
    validation_batch_size = execution.validation_batch_size or config.batch_size
    validation = tf.data.Dataset.from_tensor_slices(validation_split).batch(validation_batch_size).map(one_hot)
    with cli.signals_deferred():
        return model.fit(
            training_dataset(*train_split, config, execution.gather_batches),
            validation_data=validation,
            epochs=config.epochs,
            shuffle=False,  # training_dataset already reshuffles every epoch, seeded
            callbacks=[*callbacks, StopOnSignal()],
            verbose=verbose,
        )


def training_dataset(images: np.ndarray, labels: np.ndarray, config: TrainConfig,
                     gather_batches: bool = True) -> tf.data.Dataset:
    """Seeded shuffle each epoch, batching, (optionally) random left-right flips, one-hot labels."""
    # tf.data's shuffle order depends on the seed and the number of elements only, so
    # shuffling the indices and gathering each batch from the arrays in memory gives the
    # same batches as shuffling the (image, label) pairs themselves, at less cost per image.
    if gather_batches:
        images, targets = one_hot(tf.constant(images), labels)
        dataset = (
            tf.data.Dataset.range(len(labels))
            .shuffle(len(labels), seed=config.seed, reshuffle_each_iteration=True)
            .batch(config.batch_size)
            .map(lambda indices: (tf.gather(images, indices), tf.gather(targets, indices)))
        )
    else:
        dataset = (
            tf.data.Dataset.from_tensor_slices((images, labels))
            .shuffle(len(labels), seed=config.seed, reshuffle_each_iteration=True)
            .batch(config.batch_size)
            .map(one_hot)
        )
    if config.horizontal_flip:
        dataset = dataset.map(lambda x, y: (tf.image.random_flip_left_right(x, seed=config.seed), y))
    return dataset.prefetch(tf.data.AUTOTUNE)


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


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stop at the first non-finite (NaN or infinite) loss: nothing after it can be trusted.

    By default that is an error. With `record`, training stops there and `diverged` says
    what happened, so that a sweep can keep the point and show it as diverged.
    """

    def __init__(self, config: TrainConfig, record: bool = False) -> None:
        super().__init__()
        self.config, self.record, self.epoch = config, record, 0
        self.diverged: str | None = None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = float(logs["loss"])
        if math.isfinite(loss) or self.diverged:
            return
        # With steps_per_execution, Keras reports every few steps: `batch` is the last of them.
        self.diverged = f"the loss became {loss} by epoch {self.epoch + 1}, step {batch + 1}"
        if not self.record:
            raise PipelineError(f"training diverged: {self.diverged}; lower lr (now {self.config.lr:g}) or try "
                                "another optimizer; nothing was written")
        self.model.stop_training = True


class StopOnSignal(keras.callbacks.Callback):
    """Raise a SIGTERM or Ctrl-C that came during training, between steps and epochs."""

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        cli.raise_pending_signal()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        cli.raise_pending_signal()


def make_callbacks(config: TrainConfig, live: "Live | None",
                   record_divergence: bool = False) -> list[keras.callbacks.Callback]:
    """Early stopping and the validation-driven plateau schedule if enabled, the stop on a
    non-finite loss, then DVCLive logging if `live`."""
    callbacks: list[keras.callbacks.Callback] = [StopOnNonFiniteLoss(config, record_divergence)]
    if live:
        from dvclive.keras import DVCLiveCallback  # after stages.common.tensorflow, whose settings come first

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
