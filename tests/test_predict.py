import csv
import os
import re
import stat
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from stages import evaluate, predict
from stages.common.errors import PipelineError
from tests.bounded import one_error_line, run_stage
from tests.test_files import null_device, read_fifo_in_background
from tests.tiny_data import TINY_MODEL

SHOWN = 20  # test-split images written to PNG
# Peak memory of a refusal: importing TensorFlow alone takes about 650 MB, so under this
# predict read nothing large and refused before it imported TensorFlow.
REFUSAL_PEAK_MB = 300


@pytest.fixture(scope="module")
def trained(tiny_model, tiny_processed, tmp_path_factory) -> tuple[Path, list[str]]:
    """A tiny trained model (the session's), and the classes the evaluate stage predicted for the test split."""
    out = tmp_path_factory.mktemp("predict")
    evaluate.main(tiny_model, tiny_processed, out / "m.json", out / "d.json", out / "p.csv", out / "fig")
    with (out / "p.csv").open() as f:
        predicted = [row["predicted"] for row in csv.DictReader(f)]
    return tiny_model, predicted


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


@pytest.mark.also_as_process
def test_cli_prints_a_line_per_image_or_writes_a_csv(run_module, trained, tiny_processed, tmp_path):
    model, predicted = trained
    pngs = write_pngs(tmp_path, split_images(tiny_processed, 3))
    printed = run_module("stages.predict", "--model", str(model), *map(str, pngs))
    assert printed.returncode == 0, printed.stderr
    lines = printed.stdout.splitlines()
    assert len(lines) == 3 and lines[0].startswith(f"{pngs[0]}: {predicted[0]} (")
    written = run_module("stages.predict", "--model", str(model), "--csv", str(tmp_path / "out.csv"), *map(str, pngs))
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
def test_missing_or_broken_model_is_one_clear_line(run_module, tiny_processed, tmp_path, model_bytes, message):
    pngs = write_pngs(tmp_path, split_images(tiny_processed, 1))
    if model_bytes is not None:
        (tmp_path / "m.keras").write_bytes(model_bytes)
    result = run_module("stages.predict", "--model", str(tmp_path / "m.keras"), str(pngs[0]))
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("error: ")
    assert re.search(message, result.stderr), result.stderr


def png_header(width: int, height: int) -> bytes:
    """A 1-bit grayscale PNG of any size that is all header: made in no time, and Pillow reads its size without
    decoding it."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


LIMIT = "over the limit of 50 megapixels and 20,000 pixels a side"


@pytest.mark.parametrize(("width", "height", "refusal"), [
    (1, 30_000, f"is 1x30,000 pixels, {LIMIT}"),  # a long thin strip: few pixels, but no garment
    (8_000, 8_000, f"is 8,000x8,000 pixels, {LIMIT}"),  # over our limit, under Pillow's
    (10_000, 10_000, f"is {LIMIT} (Image size (100000000 pixels) exceeds limit of 89478485 pixels)"),  # Pillow warns
    (40_000, 40_000, f"is {LIMIT} (Image size (1600000000 pixels) exceeds limit of 178956970 pixels)"),  # Pillow stops
])
def test_an_image_too_large_is_refused_by_its_header_before_decoding(tmp_path, width, height, refusal):
    path = tmp_path / "large.png"
    path.write_bytes(png_header(width, height))
    with pytest.raises(PipelineError, match=f"large.png {re.escape(refusal)}; scale it down or crop it first$"):
        predict.load_image(path)


@pytest.mark.parametrize(("name", "message"), [
    ("/dev/zero", "error: /dev/zero is a character device, not a file; give the path of a Keras model"),
    ("fifo.png", r"error: .*fifo.png is a named pipe \(FIFO\), not a file; give the path of an image$"),
    ("bomb.png", r"error: .*bomb.png is over the limit of 50 megapixels and 20,000 pixels a side \(Image size "
                 r"\(1600000000 pixels\)"),
    ("rows.npy", r"error: .*rows.npy is not a .npy array \(its header says shape \(1000000000, 28, 28\) of float32, "
                 r"3,136,000,000,000 bytes, but 128 bytes follow it\); pass .npy batches"),
])
def test_inputs_that_never_end_or_claim_too_much_are_refused_in_one_line_and_little_memory(tmp_path, name, message):
    # The model file is /dev/zero, or empty and never loaded: the inputs are checked first.
    model, picture = tmp_path / "m.keras", tmp_path / "x.png"
    model.write_bytes(b"")
    save(picture, Image.fromarray(garment()))
    if name == "/dev/zero":
        model = Path(name)
    elif name == "fifo.png":
        os.mkfifo(picture := tmp_path / name)
    elif name == "bomb.png":
        (picture := tmp_path / name).write_bytes(png_header(40_000, 40_000))
    else:
        with open(picture := tmp_path / name, "wb") as file:
            np.lib.format.write_array_header_1_0(file, {"descr": "<f4", "fortran_order": False,
                                                        "shape": (10**9, 28, 28)})
            file.write(b"\0" * 128)
    run = run_stage("stages.predict", "--model", str(model), str(picture))
    assert re.match(message, one_error_line(run))
    assert run.peak_mb < REFUSAL_PEAK_MB and run.seconds < 30, run


@pytest.mark.e2e
def test_csv_into_a_fifo_a_null_device_or_stdout_is_written_into_never_replaced(trained, tiny_processed, tmp_path):
    # A rename over the target made /tmp/d (`mknod c 1 3`) and FIFOs regular files, and as root
    # replaced /dev/full itself.
    model, predicted = trained
    pngs = write_pngs(tmp_path, split_images(tiny_processed, 2))
    fifo, null = tmp_path / "fifo.csv", null_device(tmp_path)
    os.mkfifo(fifo)
    reader, received = read_fifo_in_background(fifo)
    for target in (fifo, null):
        result = cli("--model", str(model), "--csv", str(target), *map(str, pngs))
        assert result.returncode == 0, result.stderr
    reader.join(10)
    rows = list(csv.DictReader(received[0].decode().splitlines()))
    assert [row["class"] for row in rows] == predicted[:2]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and stat.S_ISCHR(os.stat(null).st_mode)
    to_stdout = cli("--model", str(model), "--csv", "/dev/stdout", *map(str, pngs))  # a pipe: the test's
    assert to_stdout.returncode == 0 and to_stdout.stdout.startswith("image,class,probability\n"), to_stdout
    assert os.path.islink("/dev/stdout")


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod of a character device needs root")
def test_csv_onto_another_device_is_refused_before_any_work(trained, tmp_path):
    full = tmp_path / "full"
    os.mknod(full, 0o666 | stat.S_IFCHR, os.makedev(1, 7))  # /dev/full's numbers: the probe replaced the real one
    result = run_stage("stages.predict", "--model", str(trained[0]), "--csv", str(full), str(tmp_path / "none.png"))
    line = one_error_line(result)
    assert line == (f"error: {full} is a character device, not a file, and is never replaced by an output; "
                    "give the path of a file (or a FIFO, /dev/null or /dev/stdout)")
    assert stat.S_ISCHR(os.stat(full).st_mode) and os.stat(full).st_rdev == os.makedev(1, 7)
    assert result.peak_mb < REFUSAL_PEAK_MB  # before the images, before TensorFlow


ASCII_LOCALE = {"LC_ALL": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0"}  # Python's encodings: ASCII


@pytest.mark.e2e
@pytest.mark.parametrize("env", [{"LC_ALL": "C.UTF-8"}, ASCII_LOCALE], ids=["utf8-locale", "ascii-locale"])
def test_an_image_name_that_is_not_utf8_gets_an_escaped_row(trained, tiny_processed, tmp_path, env):
    # A Latin-1 byte (not UTF-8) and a name in another script: a UnicodeEncodeError traceback before.
    model, predicted = trained
    [png] = write_pngs(tmp_path, split_images(tiny_processed, 1))
    name = os.fsencode(tmp_path) + b"/caf\xe9-\xe8\xa1\xac\xe8\xa1\xab.png"
    os.rename(png, name)
    result = subprocess.run([sys.executable, "-m", "stages.predict", "--model", str(model), "--csv",
                             str(tmp_path / "out.csv"), name], capture_output=True, timeout=300,
                            env={**os.environ, **env})
    assert result.returncode == 0 and b"Traceback" not in result.stderr, result.stderr[-2000:]
    [row] = list(csv.DictReader((tmp_path / "out.csv").read_text(encoding="utf-8").splitlines()))
    assert row["image"] == f"{tmp_path}/caf\\xe9-衬衫.png" and row["class"] == predicted[0]
    printed = subprocess.run([sys.executable, "-m", "stages.predict", "--model", str(model), name],
                             capture_output=True, timeout=300, env={**os.environ, **env})
    assert printed.returncode == 0 and printed.stdout.startswith(os.fsencode(tmp_path) + b"/caf\\xe9-"), printed


@pytest.mark.e2e
def test_expect_refuses_a_model_that_is_not_the_one_named(trained, tiny_processed, tmp_path):
    # The session's tiny conv1 has conv_dropout 0.1; params.yaml's conv1 0.2: not the conv1 it describes.
    model, predicted = trained
    [png] = write_pngs(tmp_path, split_images(tiny_processed, 1))
    for expect, message in (("conv1", f"error: {model} is not conv1 as the params describe it: its layer 3 is "
                                      "Dropout(rate=0.1), where models.conv1 makes Dropout(rate=0.2); pass "
                                      "models/conv1.keras, or the model you meant"),
                            ("conv2", f"error: {model} holds model 'conv1' (173,738 parameters), not conv2; pass "
                                      "models/conv2.keras, or the model you meant"),
                            ("conv9", "error: --expect 'conv9' is not a model of params.yaml; give one of "
                                      "conv1, conv2, conv3")):
        result = cli("--model", str(model), "--expect", expect, "--csv", str(tmp_path / "out.csv"), str(png))
        assert result.returncode == 1 and result.stderr.strip() == message, result.stderr[-2000:]
    assert not (tmp_path / "out.csv").exists()
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["models"]["conv1"] = TINY_MODEL
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(params))
    accepted = cli("--model", str(model), "--expect", "conv1", "--params", str(tmp_path / "tiny.yaml"), str(png))
    assert accepted.returncode == 0 and accepted.stdout.startswith(f"{png}: {predicted[0]} ("), accepted.stderr
