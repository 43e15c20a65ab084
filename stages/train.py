"""Stage `train@<model>`: train one of the three CNNs on the train split, steered by validation.

    python -m stages.train --model conv2 --data data/processed \
        --out models/conv2.keras --live metrics/train/conv2 --timing metrics/timing/conv2.json

Training is seeded and deterministic: the same params on the same machine give the
same weights. Per-epoch loss and accuracy (train and validation) are logged with
DVCLive under `--live`; the training time goes to `--timing`.
"""

import json
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

from stages.common import cli
from stages.common.errors import PipelineError
from stages.common.files import atomic_dir, atomic_path
from stages.common.models import NUM_CLASSES
from stages.common.splits import load_split
from stages.common.tensorflow import keras, pin_threads, tf
from stages.common.training import StopOnNonFiniteLoss, TrainConfig, compile_model, fit, make_callbacks

# Validation accuracy under this many times chance (one class in ten) counts as "at chance".
CHANCE_MARGIN = 1.5


def main(model_name: str, model_settings: dict[str, Any], data_dir: Path, model_out: Path,
         live_dir: Path, timing_out: Path, config: TrainConfig, record_divergence: bool = False) -> None:
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
        # DVCLive's exit waits on its own thread: a signal must not cut into its bookkeeping either.
        with cli.signals_deferred(), Live(dir=str(live_tmp), dvcyaml=False, save_dvc_exp=False) as live:
            started = time.perf_counter()
            callbacks = make_callbacks(config, live, record_divergence)
            history = fit(model, train_split, validation_split, config, callbacks)
            seconds = round(time.perf_counter() - started, 1)
            [stopper] = [callback for callback in callbacks if isinstance(callback, StopOnNonFiniteLoss)]
            live.summary["epochs_run"] = len(history.history["loss"])
            live.summary["diverged"] = stopper.diverged is not None
            if stopper.diverged:
                print(f"warning: {model_name} diverged: {stopper.diverged}; recorded as diverged", file=sys.stderr)
            live.summary["at_chance"] = warn_if_at_chance(model_name, history.history["val_accuracy"][-1])
        save_model(model, model_tmp)
        timing_tmp.write_text(json.dumps({"train_time_s": seconds, "epochs_run": len(history.history["loss"])},
                                         indent=2) + "\n")


def warn_if_at_chance(model_name: str, val_accuracy: float) -> bool:
    """Whether the model ended where guessing would (one class in ten), said on stderr if so."""
    at_chance = val_accuracy < CHANCE_MARGIN / NUM_CLASSES
    if at_chance:
        # Both ways: a rate too high throws the weights past any minimum (sgd at lr 1000), one too
        # low leaves them where they started (lr 1e-320); "lower lr" was wrong for the second.
        print(f"warning: {model_name} ended at chance level (validation accuracy {val_accuracy:.3f}): it "
              "learned nothing; lr is too high or too low for this optimizer: try it 10x lower and 10x higher, "
              "or another optimizer", file=sys.stderr)
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


def _cli() -> None:
    parser = cli.stage_parser(__doc__)
    parser.add_argument("--model", required=True, help="a key of `models` in params.yaml, e.g. conv1")
    parser.add_argument("--data", type=Path, required=True, help="folder with train.npz, validation.npz")
    parser.add_argument("--out", type=Path, required=True, help="where to save the trained .keras model")
    parser.add_argument("--live", type=Path, required=True, help="DVCLive folder for curves and summary")
    parser.add_argument("--timing", type=Path, required=True, help="JSON to write with the training time")
    parser.add_argument("--record-divergence", action="store_true",
                        help="on a NaN or infinite loss, stop and save the run marked diverged instead of failing "
                             "(sweeps use this, so that a diverged point shows as such)")
    args = parser.parse_args()
    params = cli.params_from(args)
    if args.model not in params["models"]:
        raise PipelineError(f"unknown model {args.model!r}; choose one of {', '.join(params['models'])}")
    pin_threads(params["threads"])
    main(args.model, params["models"][args.model], args.data, args.out, args.live, args.timing,
         TrainConfig.from_params(params), args.record_divergence)


if __name__ == "__main__":
    cli.run(_cli)
