"""Classify pictures of clothes with a trained model (not a pipeline stage: a use of its results).

    python -m stages.predict --model models/conv2.keras photo.jpg shirt.png batch.npy
    python -m stages.predict --model models/conv2.keras --csv predictions.csv *.png

Prints one line per image, `<file>: <class> (<probability>)`; a .npy batch gives one line per
row, named `<file>[<row>]`. With --csv, writes `image,class,probability` rows there instead.
With `--expect conv2`, a model file that is not params.yaml's conv2 (another model, or conv2
built with other settings) is refused.

How a picture is turned into the form the models were trained on (Fashion-MNIST's):
  1. Camera rotation (EXIF) is applied; transparency is flattened onto white.
  2. Grayscale: Pillow's "L" (ITU-R 601 luma); 16-bit images are scaled down to 8 bits.
  3. Polarity: Fashion-MNIST garments are light on a black background. The picture's border
     is taken as its background: when the border's median is lighter than mid-grey (a dark
     garment on a light background, as most product photos are), the picture is inverted.
     `--invert always` / `--invert never` override that guess.
  4. Size: the longer side is scaled to 28 pixels (aspect ratio kept, Lanczos filter) and the
     result centred on a 28x28 canvas of the background's colour (black, after step 3). Crop a
     photo close around the garment first: Fashion-MNIST's garments fill their frame.
  5. Pixels / 255 as float32, exactly as the normalize stage scales the training data.
A .npy batch is taken to be in that form already and is neither resized nor inverted: shape
(N, 28, 28), (N, 28, 28, 1) or a single (28, 28); uint8 values are divided by 255, float
values must lie in [0, 1].

Every input is checked before it is read (stages/common/inputs.py): only regular files, a
model of at most 1 GiB, a picture of at most 50 MiB, 50 megapixels and 20,000 pixels a side,
a batch of at most 1 GiB whose header matches its size.
"""

import argparse
import csv
import io
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from stages.common import cli
from stages.common.classes import CLASS_NAMES
from stages.common.errors import PipelineError
from stages.common.files import atomic_path, check_output
from stages.common.inputs import BATCH_LIMIT, IMAGE_LIMIT, MODEL_LIMIT, check_file, load_npy

SIZE = 28
DEFAULT_THREADS = 2  # params.yaml's `threads` (tests/test_tensorflow.py keeps the two equal)
BATCH_SHAPES = "(N, 28, 28), (N, 28, 28, 1) or (28, 28)"
# Checked before a picture is decoded, which takes memory by its pixels, not its file size:
# 50 megapixels is more than a phone camera's, and a strip 20,000 pixels long is no garment.
MAX_PIXELS = 50_000_000
MAX_SIDE = 20_000
PIXEL_LIMIT = f"{MAX_PIXELS // 1_000_000} megapixels and {MAX_SIDE:,} pixels a side"


@dataclass(frozen=True)
class Prediction:
    image: str
    label: str
    probability: float


def main(model_file: Path, inputs: list[Path], invert: str = "auto", csv_out: Path | None = None,
         threads: int = DEFAULT_THREADS, expect: tuple[str, dict] | None = None) -> list[Prediction]:
    """The predictions; with `expect` (a model's name and its `models.<name>` settings), only if
    `model_file` holds that model, built as those settings describe."""
    try:  # before reading any image: the cheapest mistake to report
        check_file(model_file, MODEL_LIMIT, "a Keras model")
    except FileNotFoundError:
        raise PipelineError(f"{model_file} is missing; "
                            "run `dvc pull` (or `dvc repro`) to get the trained models") from None
    if csv_out is not None:
        check_output(csv_out)  # a device that may not be written is refused before the work, not after
    names, images = [], []
    for path in inputs:
        if path.suffix.lower() == ".npy":
            batch = load_batch(path)
            names += [f"{shown_name(path)}[{row}]" for row in range(len(batch))]
        else:
            batch = load_image(path, invert)[np.newaxis]
            names.append(shown_name(path))
        images.append(batch)
    # TensorFlow is imported only now, so that bad input is reported without its start-up time.
    from stages.common.models import check_model_is, load_trained_model
    from stages.common.tensorflow import pin_threads

    pin_threads(threads)
    model = load_trained_model(model_file, "pass one of models/<model>.keras")
    if expect is not None:
        check_model_is(model, *expect, model_file, f"pass models/{expect[0]}.keras, or the model you meant")
    probabilities = model.predict(np.concatenate(images)[..., np.newaxis], verbose=0)
    predictions = [Prediction(name, CLASS_NAMES[row.argmax()], float(row.max()))
                   for name, row in zip(names, probabilities)]
    if csv_out is not None:
        write_csv(csv_out, predictions)
    return predictions


def load_image(path: Path, invert: str = "auto") -> np.ndarray:
    """A PNG or JPEG of any size and mode as one (28, 28) float32 image in [0, 1] (see the module doc)."""
    try:
        check_file(path, IMAGE_LIMIT, "an image")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as opened:  # reads the header only
                width, height = opened.size
                if width * height > MAX_PIXELS or max(width, height) > MAX_SIDE:
                    raise PipelineError(f"{path} is {width:,}x{height:,} pixels, over the limit of {PIXEL_LIMIT}; "
                                        "scale it down or crop it first")
                gray = grayscale(ImageOps.exif_transpose(opened))
    except FileNotFoundError:
        raise PipelineError(f"{path} is missing") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own guard stops Image.open for an image even larger: its message gives the size.
        raise PipelineError(f"{path} is over the limit of {PIXEL_LIMIT} ({str(exc).split(',')[0]}); "
                            "scale it down or crop it first") from None
    except (UnidentifiedImageError, OSError) as exc:  # not an image, or a truncated one
        raise PipelineError(f"{path} is not a readable PNG or JPEG image ({exc}); "
                            f"pass images, or .npy batches of shape {BATCH_SHAPES}") from None
    if invert == "always" or (invert == "auto" and has_light_background(gray)):
        gray = 255 - gray
    fitted = fit(Image.fromarray(gray), background=int(np.median(border(gray))))
    return fitted.astype(np.float32) / np.float32(255)


def grayscale(image: Image.Image) -> np.ndarray:
    """8-bit luma of any Pillow mode, transparent parts counted as white paper."""
    if image.mode.startswith("I;16"):  # 16-bit grayscale PNGs: Pillow's "L" conversion would clip them
        return (np.asarray(image, dtype=np.float64) / 257).round().astype(np.uint8)
    if "A" in image.getbands() or "transparency" in image.info:
        image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image.convert("RGBA"))
    return np.asarray(image.convert("L"), dtype=np.uint8)


def has_light_background(gray: np.ndarray) -> bool:
    """Is the border (taken as the background) mostly lighter than mid-grey? The median, so a
    garment touching the edge does not flip the answer."""
    return bool(np.median(border(gray)) > 127)


def border(gray: np.ndarray) -> np.ndarray:
    return np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])


def fit(image: Image.Image, background: int = 0) -> np.ndarray:
    """Longer side to 28 pixels, centred on the background's colour (black once a picture is in
    Fashion-MNIST's polarity); a 28x28 picture is left exactly as it is."""
    if image.size != (SIZE, SIZE):
        scale = SIZE / max(image.size)
        small = image.resize(tuple(max(1, round(side * scale)) for side in image.size), Image.Resampling.LANCZOS)
        image = Image.new("L", (SIZE, SIZE), background)
        image.paste(small, ((SIZE - small.width) // 2, (SIZE - small.height) // 2))
    return np.asarray(image)


def load_batch(path: Path) -> np.ndarray:
    """A .npy array of images already in the training data's form, as (N, 28, 28) float32."""
    try:
        array = load_npy(path, BATCH_LIMIT, "a .npy batch")
    except FileNotFoundError:
        raise PipelineError(f"{path} is missing") from None
    except (ValueError, OSError) as exc:
        raise PipelineError(f"{path} is not a .npy array ({exc}); "
                            f"pass .npy batches of shape {BATCH_SHAPES}") from None
    if array.ndim == 2:
        array = array[np.newaxis]
    if array.ndim == 4 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 3 or array.shape[1:] != (SIZE, SIZE) or len(array) == 0:
        raise PipelineError(f"{path} holds an array of shape {array.shape}; expected {BATCH_SHAPES}")
    if array.dtype == np.uint8:
        return array.astype(np.float32) / np.float32(255)
    if not np.issubdtype(array.dtype, np.floating) or not (np.all(array >= 0) and np.all(array <= 1)):
        raise PipelineError(f"{path} holds {array.dtype} values outside [0, 1]; "
                            "expected uint8 pixels or floats scaled to [0, 1] (pixel / 255)")
    return array.astype(np.float32)


def shown_name(path: Path) -> str:
    """`path` as text any output can hold: a byte of the name that is not UTF-8 (Python keeps it as
    a lone surrogate, which no encoder takes) is written as `\\xe9`, as the CSV and the terminal show it."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def write_csv(path: Path, predictions: list[Prediction]) -> None:
    # UTF-8 whatever the locale: under C or Latin-1 a name in another script could not be written.
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["image", "class", "probability"])
        writer.writerows((p.image, p.label, f"{p.probability:.6f}") for p in predictions)


def _cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="trained model, e.g. models/conv2.keras")
    parser.add_argument("images", type=Path, nargs="+", metavar="IMAGE", help="PNG or JPEG files, or .npy batches")
    parser.add_argument("--csv", type=Path, help="write image,class,probability rows to this file instead")
    parser.add_argument("--invert", choices=["auto", "always", "never"], default="auto",
                        help="make a dark-on-light picture light-on-dark (default auto: by the border's brightness)")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS,
                        help=f"TensorFlow's threads (default {DEFAULT_THREADS}, params.yaml's `threads`): the "
                             "probabilities' last bits depend on it, not on the cores; 0: one per core")
    parser.add_argument("--expect", metavar="MODEL",
                        help="refuse a model file that is not this model of params.yaml (its name and layers)")
    parser.add_argument("--params", default="params.yaml", help="params file for --expect (default: params.yaml)")
    args = parser.parse_args()
    if args.threads < 0:
        raise PipelineError(f"--threads {args.threads} is negative; give 0 (one per core) or more")
    expect = None
    if args.expect is not None:
        models = cli.load_params(args.params)["models"]
        if args.expect not in models:
            raise PipelineError(f"--expect {args.expect!r} is not a model of {args.params}; give one of "
                                f"{', '.join(models)}")
        expect = (args.expect, models[args.expect])
    predictions = main(args.model, args.images, args.invert, args.csv, args.threads, expect)
    if args.csv is None:
        if isinstance(sys.stdout, io.TextIOWrapper):  # not a test's StringIO
            sys.stdout.reconfigure(errors="backslashreplace")  # a name the locale's encoding lacks is escaped
        for p in predictions:
            print(f"{p.image}: {p.label} ({p.probability:.2f})")
    else:
        print(f"{len(predictions)} predictions written to {args.csv}")


if __name__ == "__main__":
    cli.run(_cli)
