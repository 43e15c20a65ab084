"""Training throughput per model, in images/s and as a share of the host's measured fp32 peak.

    python -m benchmarks.throughput                               # naive vs stage, all models
    python -m benchmarks.throughput --models conv3 --recipes stage stage+xla stage+spe=16
    python -m benchmarks.throughput --recipes stage stage+threads=4 --repeats 5
    python -m benchmarks.throughput --recipes stage+spe=1+slices stage --repeats 5    # before / after

A recipe is `naive` (the Keras tutorial way: numpy arrays into `fit`, Adam at 1e-3,
sparse labels) or `stage` (stages/common/training.py, exactly what `dvc repro` runs),
optionally followed by levers that change how it runs:

    +spe=N        steps_per_execution N (the stage: 16)
    +xla          XLA (jit_compile)
    +val=N        validation batch size N
    +slices       the input pipeline that shuffles (image, label) pairs, not indices
    +threads=N    N intra-op threads (the `threads` param; 0: one per core, TensorFlow's default)
    +env=NAME=V   an environment variable, e.g. +env=ONEDNN_DEFAULT_FPMATH_MODE=BF16 (not one that
                  stages/common/tensorflow.py pins: it overwrites those)
    +set=KEY=V    a param override, as `--set` (e.g. +set=batch_size=256)

Every measurement runs in a fresh process, since thread settings are fixed when
TensorFlow starts. It first times a matmul (the probe: the peak fp32 rate this host gives
right now), then trains on the first `--images` training images (and a ninth as many
validation images) for `--epochs` epochs. Its throughput is the training images per
second of wall time over the epochs after the first, validation included, as in the
stage; the first epoch also pays for tracing and compiling (the "warm-up" column).
Measurements go round robin over models and recipes, `--repeats` times, so that host noise
hits all recipes alike; the table gives each recipe's median and spread, and its speed
against the first recipe as the median of the per-round ratios.

Needs data/processed from the pipeline (`dvc repro split`).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from stages.common import cli
from stages.common.errors import PipelineError

BASE_RECIPES = ("naive", "stage")
LEVERS = ("spe", "xla", "val", "slices", "threads", "env", "set")


def parse_recipe(recipe: str) -> tuple[str, dict[str, str]]:
    """'stage+xla+spe=16' -> ('stage', {'xla': '', 'spe': '16'}); `set` and `env` may repeat
    (their values joined by newlines)."""
    base, *levers = recipe.split("+")
    if base not in BASE_RECIPES:
        raise PipelineError(f"recipe {recipe!r}: starts with {base!r}; start it with naive or stage")
    parsed: dict[str, str] = {}
    for lever in levers:
        name, _, value = lever.partition("=")
        if name not in LEVERS:
            raise PipelineError(f"recipe {recipe!r}: unknown lever {name!r}; use {', '.join(LEVERS)}")
        parsed[name] = f"{parsed[name]}\n{value}" if name in parsed else value
    return base, parsed


# --- one measurement, in its own process -------------------------------------------------


def matmul_peak_gflops(size: int = 1024, repeats: int = 7) -> float:
    """The best fp32 matmul rate of several tries: about what this host's cores give right now."""
    from stages.common.tensorflow import tf

    a, b = tf.random.normal((size, size)), tf.random.normal((size, size))
    matmul = tf.function(tf.matmul)
    matmul(a, b).numpy()
    best = 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(10):
            product = matmul(a, b)
        product.numpy()
        best = max(best, 10 * 2 * size ** 3 / (time.perf_counter() - started) / 1e9)
    return best


def training_flops_per_image(model) -> float:
    """About 3x the forward multiply-adds of the conv and dense layers: forward, plus the
    gradients with respect to inputs and to weights."""
    forward = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Conv2D":
            _, height, width, channels_out = layer.output.shape
            forward += 2 * height * width * channels_out * layer.kernel.shape[0] * layer.kernel.shape[1] \
                * layer.kernel.shape[2]
        elif kind == "Dense":
            forward += 2 * layer.kernel.shape[0] * layer.kernel.shape[1]
    return 3.0 * forward


def measure(recipe: str, model_name: str, params_file: str, data_dir: Path, images: int, epochs: int) -> dict:
    base, levers = parse_recipe(recipe)
    from stages.common import training
    from stages.common.models import build_model
    from stages.common.params import load_params
    from stages.common.splits import load_split
    from stages.common.tensorflow import keras, pin_threads, tf

    params = load_params(params_file, levers["set"].split("\n") if "set" in levers else [])
    if "threads" in levers:
        params["threads"] = int(levers["threads"])
    pin_threads(params["threads"])  # as the stage does, before the probe's first op
    config = training.TrainConfig.from_params({**params, "epochs": epochs})
    train_images, train_labels = load_split(data_dir / "train.npz")
    validation_images, validation_labels = load_split(data_dir / "validation.npz")
    train_split = train_images[:images], train_labels[:images]
    validation_split = validation_images[:images // 9], validation_labels[:images // 9]
    peak = matmul_peak_gflops()

    epoch_seconds: list[float] = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            epoch_seconds.append(time.perf_counter() - self.started)

    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()
    settings = params["models"][model_name]
    if base == "naive":
        model = build_model(model_name, settings)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        model.fit(*train_split, batch_size=128, epochs=epochs, validation_data=validation_split,
                  callbacks=[EpochTimer()], verbose=0)
    else:
        execution = training.Execution()  # the stage's, changed by the recipe's levers
        if "spe" in levers:
            execution = replace(execution, steps_per_execution=int(levers["spe"]))
        if "xla" in levers:
            execution = replace(execution, jit_compile=True)
        if "val" in levers:
            execution = replace(execution, validation_batch_size=int(levers["val"]))
        if "slices" in levers:
            execution = replace(execution, gather_batches=False)
        model = training.compile_model(model_name, settings, config, len(train_split[1]), execution)
        training.fit(model, train_split, validation_split, config,
                     [*training.make_callbacks(config, live=None), EpochTimer()], execution, verbose=0)
    steady = statistics.median(epoch_seconds[1:])
    images_per_s = len(train_split[1]) / steady
    return {
        "images_per_s": images_per_s,
        "share_of_peak": images_per_s * training_flops_per_image(model) / 1e9 / peak,
        "peak_gflops": peak,
        "warmup_s": epoch_seconds[0] - steady,
    }


# --- the round robin, in the parent process ----------------------------------------------


def run_measurement(recipe: str, model_name: str, args) -> dict:
    environment = dict(os.environ)
    levers = parse_recipe(recipe)[1]
    for setting in levers.get("env", "").splitlines():
        name, _, value = setting.partition("=")
        environment[name] = value
    command = [sys.executable, "-m", "benchmarks.throughput", "--measure", recipe, model_name,
               "--params", args.params, "--data", str(args.data), "--images", str(args.images),
               "--epochs", str(args.epochs)]
    result = subprocess.run(command, capture_output=True, text=True, env=environment)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or ["(no message)"]
        raise PipelineError(f"{recipe} on {model_name} failed: {lines[-1]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def spread(values: list[float], digits: int = 0) -> str:
    return f"{min(values):.{digits}f}-{max(values):.{digits}f}"


def main() -> None:
    parser = cli.stage_parser(__doc__)
    parser.add_argument("--models", nargs="+", help="models of params.yaml (default: all)")
    parser.add_argument("--recipes", nargs="+", default=["naive", "stage"],
                        help="recipes to compare; the first is the reference (default: naive stage)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--images", type=int, default=10240, help="training images per epoch (default 10240)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per measurement, the first is warm-up")
    parser.add_argument("--data", type=Path, default=Path("data/processed"))
    parser.add_argument("--measure", nargs=2, metavar=("RECIPE", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure, args.params, args.data, args.images, args.epochs)))
        return
    if args.epochs < 2 or args.repeats < 1:
        raise PipelineError("--epochs must be at least 2 (the first is warm-up) and --repeats at least 1")
    params = cli.params_from(args)
    models = args.models or list(params["models"])
    unknown = [name for name in models if name not in params["models"]]
    if unknown:
        raise PipelineError(f"--models: no model {', '.join(unknown)} in {args.params}; "
                            f"choose from {', '.join(params['models'])}")
    for recipe in args.recipes:
        parse_recipe(recipe)

    results: dict[tuple[str, str], list[dict]] = {(m, r): [] for m in models for r in args.recipes}
    for round_number in range(1, args.repeats + 1):
        for model_name in models:
            for recipe in args.recipes:
                result = run_measurement(recipe, model_name, args)
                results[model_name, recipe].append(result)
                print(f"round {round_number}: {model_name:6} {recipe:28} {result['images_per_s']:7.0f} images/s, "
                      f"{100 * result['share_of_peak']:4.1f} % of a {result['peak_gflops']:.0f} GFLOP/s peak",
                      flush=True)

    reference = args.recipes[0]
    print(f"\nTraining throughput, {args.repeats} interleaved rounds, {args.images} images x {args.epochs - 1} "
          f"measured epochs each (median, min-max):")
    print(f"{'model':6} {'recipe':28} {'images/s':>8} {'spread':>11} {'% of peak':>9} {'warm-up s':>9} "
          f"{'vs ' + reference:>18}")
    for model_name in models:
        for recipe in args.recipes:
            runs = results[model_name, recipe]
            rates = [run["images_per_s"] for run in runs]
            shares = [100 * run["share_of_peak"] for run in runs]
            ratios = [run["images_per_s"] / ref["images_per_s"]
                      for run, ref in zip(runs, results[model_name, reference])]
            print(f"{model_name:6} {recipe:28} {statistics.median(rates):8.0f} {spread(rates):>11} "
                  f"{statistics.median(shares):9.1f} {statistics.median(run['warmup_s'] for run in runs):9.1f} "
                  f"{statistics.median(ratios):8.2f}x ({spread(ratios, 2)})")


if __name__ == "__main__":
    cli.run(main)
