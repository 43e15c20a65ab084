import csv
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from stages import evaluate, predict, train
from stages.common.errors import PipelineError
from tests.tiny_data import TINY_MODEL

SHOWN = 20  # test-split images written to PNG


@pytest.fixture(scope="module")
def trained(tiny_processed, tmp_path_factory) -> tuple[Path, list[str]]:
    """A tiny trained model, and the classes the evaluate stage predicted for the test split."""
    out = tmp_path_factory.mktemp("predict")
    config = replace(train.TrainConfig.from_params(yaml.safe_load(Path("params.yaml").read_text())),
                     epochs=1, batch_size=32)
    train.main("conv1", TINY_MODEL, tiny_processed, out / "conv1.keras", out / "live", out / "timing.json", config)
    evaluate.main(out / "conv1.keras", tiny_processed, out / "m.json", out / "d.json", out / "p.csv", out / "fig")
    with (out / "p.csv").open() as f:
        predicted = [row["predicted"] for row in csv.DictReader(f)]
    return out / "conv1.keras", predicted


def split_images(tiny_processed, count: int = SHOWN) -> np.ndarray:
    with np.load(tiny_processed / "test.npz") as test:
        return test["images"][:count]


def write_pngs(folder: Path, images: np.ndarray) -> list[Path]:
    paths = []
    for i, image in enumerate(images):
        paths.append(folder / f"test-{i:02d}.png")
        Image.fromarray(np.round(image * 255).astype(np.uint8)).save(paths[-1])
    return paths


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stages.predict", *args], capture_output=True, text=True, timeout=300)


def test_pngs_of_the_test_split_get_the_evaluate_stages_classes(trained, tiny_processed, tmp_path):
    model, predicted = trained
    pngs = write_pngs(tmp_path, split_images(tiny_processed))
    predictions = predict.main(model, pngs)
    assert [p.image for p in predictions] == [str(path) for path in pngs]
    assert [p.label for p in predictions] == predicted[:SHOWN]
    assert all(0.1 <= p.probability <= 1 for p in predictions)  # the top one of ten


def test_npy_batches_get_the_same_classes(trained, tiny_processed, tmp_path):
    model, predicted = trained
    images = split_images(tiny_processed)
    np.save(tmp_path / "float.npy", images[..., np.newaxis])  # (N, 28, 28, 1) in [0, 1], as in test.npz
    np.save(tmp_path / "uint8.npy", np.round(images * 255).astype(np.uint8))  # (N, 28, 28) pixels
    predictions = predict.main(model, [tmp_path / "float.npy", tmp_path / "uint8.npy"])
    assert [p.label for p in predictions] == predicted[:SHOWN] * 2
    assert predictions[3].image == f"{tmp_path / 'float.npy'}[3]"


def test_cli_prints_a_line_per_image_or_writes_a_csv(trained, tiny_processed, tmp_path):
    model, predicted = trained
    pngs = write_pngs(tmp_path, split_images(tiny_processed, 3))
    printed = cli("--model", str(model), *map(str, pngs))
    assert printed.returncode == 0, printed.stderr
    lines = printed.stdout.splitlines()
    assert len(lines) == 3 and lines[0].startswith(f"{pngs[0]}: {predicted[0]} (")
    written = cli("--model", str(model), "--csv", str(tmp_path / "out.csv"), *map(str, pngs))
    assert written.returncode == 0, written.stderr
    with (tmp_path / "out.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [row["class"] for row in rows] == predicted[:3]
    assert [row["image"] for row in rows] == [str(path) for path in pngs]


def garment() -> np.ndarray:
    """A light garment-like shape on black, as Fashion-MNIST draws them."""
    image = np.zeros((28, 28), dtype=np.uint8)
    image[4:24, 8:20] = 200
    image[4:10, 3:25] = 230
    return image


def save(path: Path, image: Image.Image, **options) -> Path:
    image.save(path, **options)
    return path


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "LA", "I;16"])
def test_any_mode_becomes_the_same_grayscale_image(tmp_path, mode):
    light_on_dark = garment()
    if mode == "I;16":  # the same picture at 16 bits
        picture = Image.fromarray(light_on_dark.astype(np.uint16) * 257)
    else:
        picture = Image.fromarray(light_on_dark).convert(mode)
    converted = predict.load_image(save(tmp_path / "x.png", picture))
    assert converted.dtype == np.float32 and converted.shape == (28, 28)
    np.testing.assert_array_equal(converted, light_on_dark / np.float32(255))


def test_a_dark_on_light_photo_of_any_size_is_inverted_and_fitted(tmp_path):
    light_on_dark = garment()
    # A 5x larger photo of the same garment, dark on white, with a wide margin left and right, as a JPEG.
    photo = np.full((140, 240), 255, dtype=np.uint8)
    photo[:, 50:190] = 255 - np.kron(light_on_dark, np.ones((5, 5), dtype=np.uint8))
    converted = predict.load_image(save(tmp_path / "photo.jpg", Image.fromarray(photo).convert("RGB"), quality=95))
    assert converted.shape == (28, 28)
    # 240x140 scales to 28x16: centred on black with 6 rows above and below, as the training data's background.
    assert converted[:6].max() < 0.05 and converted[-6:].max() < 0.05
    assert converted[11:18, 12:16].min() > 0.6  # the garment's body, light now
    assert not predict.has_light_background(np.round(converted * 255))
    never = predict.load_image(tmp_path / "photo.jpg", invert="never")
    assert never[:6].min() > 0.95  # left as it was: light all round


def test_transparent_cutout_counts_as_on_white(tmp_path):
    rgba = np.zeros((56, 56, 4), dtype=np.uint8)  # fully transparent ...
    rgba[8:48, 16:40] = (20, 20, 20, 255)  # ... around an opaque dark garment
    converted = predict.load_image(save(tmp_path / "cutout.png", Image.fromarray(rgba, "RGBA")))
    assert converted[0, 0] == 0 and converted[14, 14] > 0.9  # inverted: black around a light garment


@pytest.mark.parametrize(("name", "content", "message"), [
    ("notes.png", b"not an image", "is not a readable PNG or JPEG image"),
    ("shape.npy", np.zeros((2, 32, 32)), r"holds an array of shape \(2, 32, 32\); expected"),
    ("range.npy", np.full((1, 28, 28), 3.0), "outside \\[0, 1\\]"),
    ("missing.png", None, "missing.png is missing"),
])
def test_bad_input_is_one_clear_line(tmp_path, name, content, message):
    model = tmp_path / "m.keras"
    model.write_bytes(b"")  # never loaded: the inputs are checked first
    if isinstance(content, bytes):
        (tmp_path / name).write_bytes(content)
    elif content is not None:
        np.save(tmp_path / name, content)
    with pytest.raises(PipelineError, match=message):
        predict.main(model, [tmp_path / name])
    result = cli("--model", str(model), str(tmp_path / name))
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1, result.stderr


@pytest.mark.parametrize(("model_bytes", "message"), [
    (None, r"m.keras is missing; run `dvc pull`"),
    (b"PK not really a model", "m.keras is not a Keras model"),
])
def test_missing_or_broken_model_is_one_clear_line(tiny_processed, tmp_path, model_bytes, message):
    pngs = write_pngs(tmp_path, split_images(tiny_processed, 1))
    if model_bytes is not None:
        (tmp_path / "m.keras").write_bytes(model_bytes)
    result = cli("--model", str(tmp_path / "m.keras"), str(pngs[0]))
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("error: ")
    assert re.search(message, result.stderr), result.stderr
