from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from stages.common import training
from stages.common.errors import PipelineError
from stages.common.models import build_model
from stages.common.tensorflow import keras
from tests.tiny_data import TINY_MODEL

PARAMS = yaml.safe_load(Path("params.yaml").read_text())
BASE = replace(training.TrainConfig.from_params(PARAMS), lr=0.1, epochs=10, decay_rate=0.5, decay_epochs=2,
               warmup_epochs=0, early_stopping_patience=0)
STEPS = 100  # steps per epoch in the schedule tests


def rate_at(config, step):
    schedule = training.make_schedule(config, STEPS)
    return float(schedule(step)) if callable(schedule) else schedule


def test_config_reads_top_level_and_train_section():
    config = training.TrainConfig.from_params(PARAMS)
    assert config.lr == PARAMS["lr"] and config.schedule == PARAMS["train"]["schedule"]


def test_constant_schedule():
    config = replace(BASE, schedule="constant")
    assert rate_at(config, 0) == rate_at(config, 999) == 0.1


def test_step_decay_drops_by_rate_every_decay_epochs():
    config = replace(BASE, schedule="step")
    assert rate_at(config, 0) == pytest.approx(0.1)
    assert rate_at(config, 2 * STEPS - 1) == pytest.approx(0.1)
    assert rate_at(config, 2 * STEPS) == pytest.approx(0.05)
    assert rate_at(config, 4 * STEPS) == pytest.approx(0.025)


def test_exponential_decay_is_rate_per_epoch_smoothly():
    config = replace(BASE, schedule="exponential")
    assert rate_at(config, STEPS) == pytest.approx(0.05)
    assert rate_at(config, STEPS // 2) == pytest.approx(0.1 * 0.5 ** 0.5)


def test_cosine_with_warmup():
    config = replace(BASE, schedule="cosine", warmup_epochs=2)
    assert rate_at(config, 0) == pytest.approx(0.0)
    assert rate_at(config, STEPS) == pytest.approx(0.05)  # half-way up the warm-up
    assert rate_at(config, 2 * STEPS) == pytest.approx(0.1)  # peak
    assert rate_at(config, 6 * STEPS) == pytest.approx(0.05)  # half-way down the remaining 8 epochs
    assert rate_at(config, 10 * STEPS) == pytest.approx(0.0, abs=1e-7)


def test_cosine_without_warmup_starts_at_lr():
    config = replace(BASE, schedule="cosine")
    assert rate_at(config, 0) == pytest.approx(0.1)
    assert rate_at(config, 5 * STEPS) == pytest.approx(0.05)


def test_plateau_is_a_validation_driven_callback():
    config = replace(BASE, schedule="plateau")
    assert rate_at(config, 500) == 0.1
    callbacks = training.make_callbacks(config, live=None)
    plateau = [c for c in callbacks if isinstance(c, keras.callbacks.ReduceLROnPlateau)]
    assert len(plateau) == 1
    assert (plateau[0].monitor, plateau[0].factor, plateau[0].patience) == ("val_loss", 0.5, 2)


@pytest.mark.parametrize(
    "name, cls, settings",
    [
        ("adam", "Adam", {}),
        ("adamw", "AdamW", {"weight_decay": 0.0001}),
        ("sgd", "SGD", {"momentum": 0.9, "nesterov": True}),
        ("rmsprop", "RMSprop", {"momentum": 0.9}),
    ],
)
def test_optimizers(name, cls, settings):
    optimizer = training.make_optimizer(replace(BASE, optimizer=name, nesterov=True, schedule="constant"), STEPS)
    assert type(optimizer).__name__ == cls
    for key, value in settings.items():
        assert getattr(optimizer, key) == pytest.approx(value)


def test_unknown_optimizer():
    with pytest.raises(PipelineError, match="unknown optimizer 'adagrad'"):
        training.make_optimizer(replace(BASE, optimizer="adagrad"), STEPS)


def test_early_stopping_watches_validation_and_restores_best_weights():
    config = replace(BASE, early_stopping_patience=2)
    [stopper] = [c for c in training.make_callbacks(config, live=None)
                 if isinstance(c, keras.callbacks.EarlyStopping)]
    model = build_model("conv1", TINY_MODEL)
    stopper.set_model(model)
    stopper.on_train_begin()
    weights_by_epoch = []
    for epoch, val_accuracy in enumerate([0.5, 0.8, 0.7, 0.6]):
        model.set_weights([w + epoch for w in model.get_weights()])
        weights_by_epoch.append(model.get_weights())
        stopper.on_epoch_end(epoch, {"val_accuracy": val_accuracy})
    assert model.stop_training  # two epochs without gain after the best one
    stopper.on_train_end()
    for restored, best in zip(model.get_weights(), weights_by_epoch[1]):
        np.testing.assert_array_equal(restored, best)


def test_no_early_stopping_when_patience_is_zero():
    assert not any(isinstance(c, keras.callbacks.EarlyStopping) for c in training.make_callbacks(BASE, None))


def test_training_batches_carry_one_hot_labels():
    labels = np.array([3, 0, 9, 3], dtype=np.uint8)
    images = np.zeros((4, 28, 28, 1), dtype=np.float32)
    batches = list(training.training_dataset(images, labels, replace(BASE, batch_size=4)))
    one_hot = batches[0][1].numpy()
    assert one_hot.shape == (4, 10) and (one_hot.sum(axis=1) == 1).all()
    assert sorted(one_hot.argmax(axis=1)) == sorted(labels)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_label_smoothing_penalises_certainty(smoothing):
    model = training.compile_model("conv1", TINY_MODEL, replace(BASE, label_smoothing=smoothing), 100)
    certain = np.array([[1.0 - 9e-7] + [1e-7] * 9])
    loss = float(model.loss(np.eye(10)[:1], certain))
    # Smoothing spreads `smoothing` of the target over all ten classes, so a certain
    # prediction pays for it; without smoothing it is (nearly) free.
    assert loss == pytest.approx(0.0, abs=1e-5) if smoothing == 0 else loss > smoothing


@pytest.mark.parametrize("flip", [False, True])
def test_gathered_batches_are_the_shuffled_pairs_batches(flip):
    # The faster pipeline must not change training: same batches, same order, every epoch.
    rng = np.random.default_rng(0)
    images, labels = rng.random((50, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, 50).astype(np.uint8)
    config = replace(BASE, batch_size=7, horizontal_flip=flip)
    epochs = {}
    for gather in (True, False):
        keras.utils.set_random_seed(config.seed)
        dataset = training.training_dataset(images, labels, config, gather_batches=gather)
        epochs[gather] = [[(x.numpy(), y.numpy()) for x, y in dataset] for _ in range(3)]
    assert len(epochs[True]) == 3 and len(epochs[True][0]) == 8  # 50 images in batches of 7
    for gathered, paired in zip(epochs[True], epochs[False]):
        for (x1, y1), (x2, y2) in zip(gathered, paired, strict=True):
            np.testing.assert_array_equal(x1, x2)
            np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(epochs[True][0][0][1], epochs[True][1][0][1])  # reshuffled each epoch
