"""Stage `cv_train@<model>`: k-fold cross-validation of one model on the training portion.

    python -m stages.cv_train --model conv2 --data data/processed --out metrics/cv/conv2.json

The training portion (train.npz and validation.npz together; the test set is never read)
is dealt into `cv.folds` stratified folds, seeded by `cv.seed`. For each fold the model
trains on the other folds, with the held-out fold as its validation set (which steers
the plateau schedule and early stopping, as validation does in the train stage), and is
then scored on that fold. Writes each fold's accuracy and loss (plain cross-entropy) and
the mean and sample standard deviation of the accuracies. No model is kept.
"""

import json
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from stages.common import cli
from stages.common.errors import PipelineError
from stages.common.files import atomic_path
from stages.common.folds import stratified_folds
from stages.common.scores import accuracy, cross_entropy
from stages.common.splits import load_split
from stages.common.tensorflow import keras, pin_threads, tf
from stages.common.training import TrainConfig, compile_model, fit, make_callbacks


def main(model_name: str, model_settings: dict[str, Any], data_dir: Path, out: Path, config: TrainConfig,
         folds: int, cv_seed: int) -> dict[str, Any]:
    splits = [load_split(data_dir / name) for name in ("train.npz", "validation.npz")]
    images, labels = (np.concatenate(parts) for parts in zip(*splits))
    fold_of = stratified_folds(labels, folds, cv_seed)
    tf.config.experimental.enable_op_determinism()
    scores = []
    for fold in range(folds):
        held_out = fold_of == fold
        training, scoring = (images[~held_out], labels[~held_out]), (images[held_out], labels[held_out])
        if config.batch_size > len(training[1]):
            raise PipelineError(f"batch_size {config.batch_size} is larger than a fold's training set "
                                f"({len(training[1])} images); choose at most {len(training[1])}")
        keras.utils.set_random_seed(config.seed)  # every fold starts from the same seed
        model = compile_model(model_name, model_settings, config, train_size=len(training[1]))
        history = fit(model, training, scoring, config, make_callbacks(config, live=None))
        probabilities = model.predict(scoring[0], batch_size=512, verbose=0)
        scores.append({"fold": fold + 1, "images": int(held_out.sum()), "epochs_run": len(history.history["loss"]),
                       "accuracy": accuracy(probabilities, scoring[1]),
                       "loss": cross_entropy(probabilities, scoring[1])})
        print(f"{model_name}: fold {fold + 1} of {folds}: held-out accuracy {scores[-1]['accuracy']:.4f}", flush=True)
    accuracies = [score["accuracy"] for score in scores]
    result = {"folds": folds, "seed": cv_seed, "accuracy_mean": statistics.mean(accuracies),
              "accuracy_sd": statistics.stdev(accuracies), "per_fold": scores}
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(result, indent=2) + "\n")
    return result


def _cli() -> None:
    parser = cli.stage_parser(__doc__)
    parser.add_argument("--model", required=True, help="a key of `models` in params.yaml, e.g. conv1")
    parser.add_argument("--data", type=Path, required=True, help="folder with train.npz, validation.npz")
    parser.add_argument("--out", type=Path, required=True, help="JSON to write with each fold's scores")
    args = parser.parse_args()
    params = cli.params_from(args)
    if args.model not in params["models"]:
        raise PipelineError(f"unknown model {args.model!r}; choose one of {', '.join(params['models'])}")
    pin_threads(params["threads"])
    main(args.model, params["models"][args.model], args.data, args.out, TrainConfig.from_params(params),
         params["cv"]["folds"], params["cv"]["seed"])


if __name__ == "__main__":
    cli.run(_cli)
