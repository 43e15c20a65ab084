import numpy as np
import pytest

from stages.common.idx import IMAGES_MAGIC, LABELS_MAGIC, IdxError, parse_idx, raw_name, to_idx


def test_round_trip_images_and_labels():
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    labels = np.array([3, 7], dtype=np.uint8)
    assert to_idx(images)[:4] == IMAGES_MAGIC.to_bytes(4, "big")
    np.testing.assert_array_equal(parse_idx(to_idx(images), IMAGES_MAGIC, "x"), images)
    np.testing.assert_array_equal(parse_idx(to_idx(labels), LABELS_MAGIC, "x"), labels)


def test_header_is_big_endian_dimensions():
    data = to_idx(np.zeros((300, 28, 28), dtype=np.uint8))
    assert data[4:8] == (300).to_bytes(4, "big")
    assert len(data) == 16 + 300 * 28 * 28


def test_wrong_magic_is_named():
    labels = to_idx(np.zeros(5, dtype=np.uint8))
    with pytest.raises(IdxError, match=r"labels.idx: wrong IDX magic 0x00000801, expected 0x00000803"):
        parse_idx(labels, IMAGES_MAGIC, "labels.idx")


@pytest.mark.parametrize("cut", [1, 10])
def test_truncated_or_padded_data_is_rejected(cut):
    data = to_idx(np.zeros((4, 5, 5), dtype=np.uint8))
    with pytest.raises(IdxError, match="truncated or corrupt"):
        parse_idx(data[:-cut], IMAGES_MAGIC, "f")
    with pytest.raises(IdxError, match="truncated or corrupt"):
        parse_idx(data + b"\0" * cut, IMAGES_MAGIC, "f")


def test_too_short_for_a_header():
    with pytest.raises(IdxError, match="too short"):
        parse_idx(b"\0\0", LABELS_MAGIC, "f")


def test_only_uint8_is_written():
    with pytest.raises(ValueError):
        to_idx(np.zeros(3, dtype=np.float32))


def test_raw_name_drops_gz():
    assert raw_name("train-images-idx3-ubyte.gz") == "train-images-idx3-ubyte"
