"""Read and write the IDX format of the (Fashion-)MNIST files.

An IDX file is a 4-byte magic (two zero bytes, a type code, the number of dimensions),
one big-endian uint32 per dimension, then the data. Fashion-MNIST uses unsigned bytes:
images are 3-D (count, rows, cols), labels 1-D (count).
"""

import numpy as np

from stages.common.errors import PipelineError

UBYTE = 0x08
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801


class IdxError(PipelineError):
    pass


def raw_name(gz_name: str) -> str:
    """Where a mirror's `X.gz` lives once decompressed under data/raw: `X`."""
    return gz_name.removesuffix(".gz")


def parse_idx(data: bytes, expected_magic: int, source: str) -> np.ndarray:
    """Parse IDX bytes into a uint8 array; the magic must match and the length must fit the header."""
    if len(data) < 4:
        raise IdxError(f"{source}: too short to be an IDX file ({len(data)} bytes)")
    magic = int.from_bytes(data[:4], "big")
    if magic != expected_magic:
        raise IdxError(
            f"{source}: wrong IDX magic 0x{magic:08x}, expected 0x{expected_magic:08x}; "
            "is the file a Fashion-MNIST image/label file?"
        )
    ndim = data[3]
    header_len = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected_len = header_len + int(np.prod(shape))
    if len(data) != expected_len:
        raise IdxError(
            f"{source}: IDX header says shape {shape} ({expected_len} bytes) but the file has "
            f"{len(data)} bytes; the file is truncated or corrupt, delete it and download again"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_len).reshape(shape)


def to_idx(array: np.ndarray) -> bytes:
    """Encode a uint8 array (1-D labels or 3-D images) as IDX bytes."""
    if array.dtype != np.uint8:
        raise ValueError(f"IDX encoding here supports uint8 only, got {array.dtype}")
    header = bytes([0, 0, UBYTE, array.ndim])
    header += b"".join(dim.to_bytes(4, "big") for dim in array.shape)
    return header + np.ascontiguousarray(array).tobytes()
