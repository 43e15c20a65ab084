from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from stages import train
from stages.common.errors import PipelineError
from tests.tiny_data import TINY_MODEL

PARAMS = yaml.safe_load(Path("params.yaml").read_text())
BASE = replace(train.TrainConfig.from_params(PARAMS), lr=0.1, epochs=10, decay_rate=0.5, decay_epochs=2,
               warmup_epochs=0, early_stopping_patience=0)
STEPS = 100  # steps per epoch in the schedule tests


def rate_at(config, step):
    schedule = train.make_schedule(config, STEPS)
    return float(schedule(step)) if callable(schedule) else schedule


def test_config_reads_top_level_and_train_section():
    config = train.TrainConfig.from_params(PARAMS)
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
    callbacks = train.make_callbacks(config, live=None)
    plateau = [c for c in callbacks if isinstance(c, train.keras.callbacks.ReduceLROnPlateau)]
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
    optimizer = train.make_optimizer(replace(BASE, optimizer=name, nesterov=True, schedule="constant"), STEPS)
    assert type(optimizer).__name__ == cls
    for key, value in settings.items():
        assert getattr(optimizer, key) == pytest.approx(value)


def test_unknown_optimizer():
    with pytest.raises(PipelineError, match="unknown optimizer 'adagrad'"):
        train.make_optimizer(replace(BASE, optimizer="adagrad"), STEPS)


def test_early_stopping_watches_validation_and_restores_best_weights():
    config = replace(BASE, early_stopping_patience=2)
    [stopper] = [c for c in train.make_callbacks(config, live=None)
                 if isinstance(c, train.keras.callbacks.EarlyStopping)]
    model = train.build_model("conv1", TINY_MODEL)
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
    assert not any(isinstance(c, train.keras.callbacks.EarlyStopping) for c in train.make_callbacks(BASE, None))


def test_training_batches_carry_one_hot_labels():
    labels = np.array([3, 0, 9, 3], dtype=np.uint8)
    images = np.zeros((4, 28, 28, 1), dtype=np.float32)
    batches = list(train.training_dataset(images, labels, replace(BASE, batch_size=4)))
    one_hot = batches[0][1].numpy()
    assert one_hot.shape == (4, 10) and (one_hot.sum(axis=1) == 1).all()
    assert sorted(one_hot.argmax(axis=1)) == sorted(labels)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_label_smoothing_penalises_certainty(smoothing):
    model = train.compile_model("conv1", TINY_MODEL, replace(BASE, label_smoothing=smoothing), 100)
    certain = np.array([[1.0 - 9e-7] + [1e-7] * 9])
    loss = float(model.loss(np.eye(10)[:1], certain))
    # Smoothing spreads `smoothing` of the target over all ten classes, so a certain
    # prediction pays for it; without smoothing it is (nearly) free.
    assert loss == pytest.approx(0.0, abs=1e-5) if smoothing == 0 else loss > smoothing


def train_tiny(processed: Path, out: Path, **changes):
    config = replace(train.TrainConfig.from_params(PARAMS), epochs=2, batch_size=32, **changes)
    train.main("conv1", TINY_MODEL, processed, out / "model.keras", out / "live", out / "timing.json", config)
    return train.keras.models.load_model(out / "model.keras")


def test_training_is_deterministic_and_logs_curves(tiny_processed, tmp_path):
    first = train_tiny(tiny_processed, tmp_path / "a")
    second = train_tiny(tiny_processed, tmp_path / "b")
    other_seed = train_tiny(tiny_processed, tmp_path / "c", seed=PARAMS["seed"] + 1)
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, c) for a, c in zip(first.get_weights(), other_seed.get_weights()))

    summary = yaml.safe_load((tmp_path / "a" / "live" / "metrics.json").read_text())
    assert summary["epochs_run"] == 2 and summary["at_chance"] in (True, False)
    timing = yaml.safe_load((tmp_path / "a" / "timing.json").read_text())
    assert timing["train_time_s"] > 0 and timing["epochs_run"] == 2
    assert {"accuracy", "loss"} <= set(summary["eval"])  # validation metrics
    curve = (tmp_path / "a" / "live" / "plots" / "metrics" / "eval" / "accuracy.tsv").read_text().splitlines()
    assert curve[0].split("\t")[:2] == ["step", "accuracy"] and len(curve) == 3


def test_missing_split_says_what_to_run(tmp_path):
    with pytest.raises(PipelineError, match="run the split stage first"):
        train.main("conv1", TINY_MODEL, tmp_path, tmp_path / "m.keras", tmp_path / "live", tmp_path / "t.json", BASE)
    assert not (tmp_path / "m.keras").exists()


def test_cli_rejects_unknown_model(tmp_path):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "stages.train", "--model", "conv4", "--data", str(tmp_path),
         "--out", str(tmp_path / "m.keras"), "--live", str(tmp_path / "live"), "--timing", str(tmp_path / "t.json")],
        capture_output=True, text=True,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: unknown model 'conv4'; choose one of conv1, conv2, conv3")
