"""Stage `download`: fetch the four Fashion-MNIST files from the first mirror that serves them intact.

Each file is checked by the SHA-256 of its *decompressed* bytes, so a mirror that
recompressed the data (Debian's `dataset-fashion-mnist`) verifies as well as the
official one. The decompressed IDX files are written to the output folder, named as
on the mirrors without `.gz`; the folder appears only once all four are verified.

    python -m stages.download --out data/raw
"""

import gzip
import hashlib
import http.client
import io
import sys
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path

from stages.common import cli
from stages.common.errors import PipelineError
from stages.common.files import atomic_dir
from stages.common.idx import raw_name

CHUNK = 1 << 16
# The largest file, train-images, is 26 MB gzipped and 47 MB unpacked. A mirror that sends
# more, or a small body that unpacks to more (a gzip bomb), is refused before it fills memory.
MAX_BYTES = 128 << 20
# data.timeout_s bounds each read, not the transfer: a mirror that sends a byte a second never
# times out. So a mirror gets timeout_s to start sending, then must keep up this average rate
# (about 0.5 Mbit/s: the largest file in under 7 minutes); a slower one is a failed mirror.
MIN_RATE = 64 << 10


class MirrorFailure(Exception):
    """One mirror could not give one valid file; the message says why."""


def main(mirrors: list[str], files: dict[str, dict[str, str]], out_dir: Path, timeout_s: float) -> None:
    """Download every file in `files` ({role: {name, sha256}}) and write it decompressed to `out_dir`."""
    with atomic_dir(out_dir) as tmp:
        for spec in files.values():
            data = fetch_verified(spec["name"], spec["sha256"], mirrors, timeout_s)
            (tmp / raw_name(spec["name"])).write_bytes(data)


def fetch_verified(name: str, sha256: str, mirrors: list[str], timeout_s: float) -> bytes:
    """Return the decompressed bytes of `name` from the first mirror whose copy has `sha256`."""
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + name
        try:
            data = decompress(fetch(url, timeout_s))
            verify(data, sha256)
        except MirrorFailure as exc:
            print(f"{name}: {url} failed ({exc}), trying the next mirror", file=sys.stderr)
            failures.append(f"{url} ({exc})")
            continue
        print(f"{name}: verified from {url}", file=sys.stderr)
        return data
    raise PipelineError(
        f"no mirror gave a valid {name}: " + "; ".join(failures)
        + ". Check the network, or add a mirror (e.g. file:///usr/share/datasets/fashion-mnist/ "
        "after `apt-get install dataset-fashion-mnist`) to data.mirrors in params.yaml"
    )


def fetch(url: str, timeout_s: float) -> bytes:
    """The body at `url` (http, https or file), with progress on stderr for large remote files."""
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            total = int(response.headers.get("Content-Length") or 0)
            return _read_with_progress(response, total, show=not url.startswith("file:"), label=url,
                                       in_time=_rate_check(started, timeout_s))
    except urllib.error.HTTPError as exc:
        raise MirrorFailure(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise MirrorFailure(str(exc.reason)) from None
    except (TimeoutError, OSError, ValueError, http.client.HTTPException) as exc:  # also a URL it cannot send
        raise MirrorFailure(f"{type(exc).__name__}: {exc}") from None


def _rate_check(started: float, timeout_s: float):
    """A check that the transfer begun at `started` keeps up MIN_RATE after its first timeout_s seconds."""
    def in_time(received: int) -> None:
        elapsed = time.monotonic() - started
        if elapsed > timeout_s + received / MIN_RATE:
            raise MirrorFailure(f"too slow: {received} bytes in {elapsed:.1f} s, under {MIN_RATE >> 10} KiB/s "
                                f"after the first {timeout_s:g} s (data.timeout_s)")
    return in_time


def _read_with_progress(response, total: int, show: bool, label: str, in_time=lambda received: None) -> bytes:
    if total > MAX_BYTES:
        raise MirrorFailure(f"it is {total} bytes, more than any Fashion-MNIST file has")
    chunks, received, next_report = [], 0, 0.25
    # read1, not read: read(CHUNK) waits for all CHUNK bytes, 18 hours at a byte a second; read1
    # returns what one receive brings (each bounded by the socket's timeout), so the rate is checked often.
    while chunk := response.read1(CHUNK):
        chunks.append(chunk)
        received += len(chunk)
        in_time(received)
        if received > MAX_BYTES:
            raise MirrorFailure(f"it goes on past {MAX_BYTES} bytes, more than any Fashion-MNIST file has")
        if show and total > 10 * CHUNK and received / total >= next_report:
            print(f"{label}: {received * 100 // total}% of {total / 1e6:.1f} MB", file=sys.stderr)
            next_report += 0.25
    if total and received != total:
        raise MirrorFailure(f"truncated body: got {received} of {total} bytes")
    return b"".join(chunks)


def decompress(body: bytes) -> bytes:
    """The gunzipped bytes of `body`, at most MAX_BYTES of them."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(body)) as unpacked:
            data = unpacked.read(MAX_BYTES + 1)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise MirrorFailure(f"not a valid gzip file: {exc}") from None
    if len(data) > MAX_BYTES:
        raise MirrorFailure(f"it unpacks to more than {MAX_BYTES} bytes, more than any Fashion-MNIST file has")
    return data


def verify(data: bytes, sha256: str) -> None:
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise MirrorFailure(f"checksum mismatch: sha256 {digest[:12]}…, expected {sha256[:12]}…")


def _cli() -> None:
    parser = cli.stage_parser(__doc__)
    parser.add_argument("--out", type=Path, required=True, help="folder for the decompressed IDX files")
    args = parser.parse_args()
    data = cli.params_from(args)["data"]
    main(data["mirrors"], data["files"], args.out, data["timeout_s"])


if __name__ == "__main__":
    cli.run(_cli)
