"""Checks made before an input is read, so that every read is bounded.

A path can name something that is not a file, and reading it never ends: /dev/zero gives
bytes forever, a FIFO blocks its reader until someone writes. A regular file can be far
larger than anything the project writes, and a small file can claim to hold a huge array.
Every reader of an input calls `check_file` (or a reader here that does) first, with a
limit far above what the project itself writes:

| limit | for | what the project writes or needs |
|---|---|---|
| `TEXT_LIMIT` | params.yaml, sweep tables, metrics JSON, DVCLive TSVs | a few KB |
| `MODEL_LIMIT` | a `.keras` model, and what its archive unpacks to | conv3: 17 MB |
| `IMAGE_LIMIT` | a picture to classify | a photo: a few MB |
| `BATCH_LIMIT` | a `.npy` batch to classify | 1 GiB is 340,000 images as float32 |
| `DATA_LIMIT` | IDX files, data/interim `.npy`, data/processed `.npz` | all 70,000 images as float32: 220 MB |
"""

import codecs
import json
import math
import os
import re
import stat
import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

from stages.common.errors import PipelineError

MiB = 1 << 20
GiB = 1 << 30
TEXT_LIMIT = MiB
MODEL_LIMIT = GiB
IMAGE_LIMIT = 50 * MiB
BATCH_LIMIT = GiB
DATA_LIMIT = 4 * 70_000 * 28 * 28 * 4  # four times the largest data file: room for more, not for nonsense

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"))


class InputError(PipelineError):
    pass


def check_file(path: Path, limit: int, what: str) -> int:
    """The size of `path`, a regular file of at most `limit` bytes (`what` names it, as in "a Keras
    model"); anything else is refused. A missing file raises FileNotFoundError, for the caller to explain."""
    # os.stat, not open: opening a FIFO blocks until a writer comes.
    mode, size = (info := os.stat(path)).st_mode, info.st_size
    if not stat.S_ISREG(mode):
        raise InputError(f"{path} is {kind_of(mode)}, not a file; give the path of {what}")
    if size > limit:
        raise InputError(f"{path} is {_size(size)}, over the {_size(limit)} limit for {what}; "
                         "check that it is the right file")
    return size


def kind_of(mode: int) -> str:
    """What a file of `mode` is, in words: "a regular file", "a named pipe (FIFO)"."""
    return "a regular file" if stat.S_ISREG(mode) else next((name for test, name in _KINDS if test(mode)),
                                                             "a special file")


def read_bytes(path: Path, limit: int, what: str) -> bytes:
    check_file(path, limit, what)
    with open(path, "rb") as file:
        data = file.read(limit + 1)  # a file that grew since the check, or a /proc file that claims 0 bytes
    if len(data) > limit:
        raise InputError(f"{path} is over the {_size(limit)} limit for {what}; check that it is the right file")
    return data


def read_text(path: Path, limit: int, what: str) -> str:
    """The file as UTF-8 text, universal newlines as Path.read_text gives it; a UTF-8 byte-order mark,
    which some Windows editors write, is dropped (it would be part of the first key or column name).
    InputError for any other encoding: a UTF-16 file ended in a UnicodeDecodeError traceback."""
    data = read_bytes(path, limit, what)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        utf16 = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))  # and UTF-32's, which start alike
        found = "it starts with a UTF-16 byte-order mark" if utf16 else f"byte {data[exc.start]:#04x} at offset " \
                                                                         f"{exc.start} is not UTF-8"
        raise InputError(f"{path} is not UTF-8 text ({found}); save it as UTF-8") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


# The JSON the project reads (metrics, summaries) nests two or three levels. json.loads recurses
# once per level and ends in a RecursionError past about 1,000; and a key given twice would
# silently keep its last value ({"accuracy": 0.1, "accuracy": 0.99} passed the gate).
JSON_MAX_DEPTH = 32
# A string (with its escapes) or a bracket: possessive, so a long string is one linear match.
_JSON_TOKEN = re.compile(r'"(?:[^"\\]++|\\.)*+"?|[\[{]|[\]}]', re.S)


class JSONProblem(ValueError):
    """Text that json.loads would take, or choke on, that the project refuses."""


def parse_json(text: str) -> object:
    """`text` as JSON; JSONProblem (a ValueError, as json.loads raises) for nesting past JSON_MAX_DEPTH,
    found by a linear scan before parsing, or for a key given twice in one object."""
    depth = 0
    for token in _JSON_TOKEN.finditer(text):
        bracket = token.group()
        if bracket in "[{":
            depth += 1
            if depth > JSON_MAX_DEPTH:
                raise JSONProblem(f"it nests deeper than {JSON_MAX_DEPTH} levels")
        elif bracket in "]}":
            depth -= 1
    return json.loads(text, object_pairs_hook=_no_duplicates)


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result = dict(pairs)
    if len(result) < len(pairs):
        seen: set[str] = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise JSONProblem(f"it gives the key {json.dumps(twice)[:80]} twice")
    return result


def load_npy(path: Path, limit: int, what: str) -> np.ndarray:
    """A .npy file's array, its header checked against the file's size before anything is allocated."""
    size = check_file(path, limit, what)
    with open(path, "rb") as file:
        check_npy_header(file, size)
        file.seek(0)
        return np.load(file, allow_pickle=False)


def check_npy_header(stream: BinaryIO, size: int) -> None:
    """Read the .npy header at the start of `stream` (`size` bytes in all); raise ValueError unless it
    describes an array of numbers whose bytes are exactly the rest of the stream."""
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(stream)
    else:  # 3.0 is only for structured dtypes with non-Latin-1 field names, which nothing here has
        raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")
    if dtype.hasobject:
        raise ValueError("the array holds Python objects, not numbers")
    claimed = math.prod(shape) * dtype.itemsize  # Python ints: a forged shape cannot overflow
    if claimed != size - stream.tell():
        raise ValueError(f"its header says shape {shape} of {dtype}, {claimed:,} bytes, but "
                         f"{size - stream.tell():,} bytes follow it")


def check_archive(path: Path, limit: int, what: str) -> None:
    """Refuse a zip archive whose members unpack to more than `limit` bytes (a zip bomb); zipfile
    stops reading a member at its declared size, so the declared sizes bound what is read."""
    with zipfile.ZipFile(path) as archive:
        unpacked = sum(member.file_size for member in archive.infolist())
    if unpacked > limit:
        raise InputError(f"{path} unpacks to {_size(unpacked)}, over the {_size(limit)} limit for {what}; "
                         "check that it is the right file")


def _size(size: int) -> str:
    for unit, scale in (("GiB", GiB), ("MiB", MiB), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size} bytes"
