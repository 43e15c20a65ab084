"""Every input is checked before it is opened (stages/common/inputs.py): only regular files, within a limit."""

import os
import socket
import zipfile

import numpy as np
import pytest

from stages.common.inputs import (
    InputError,
    JSONProblem,
    check_archive,
    check_file,
    load_npy,
    parse_json,
    read_bytes,
    read_text,
)
from tests.bounded import time_limit


def npy_claiming(path, shape, dtype="<f4", data=b"\0" * 128):
    """A .npy file whose header says `shape` but which holds only `data`."""
    with open(path, "wb") as file:
        np.lib.format.write_array_header_1_0(file, {"descr": dtype, "fortran_order": False, "shape": shape})
        file.write(data)
    return path


def test_a_regular_file_within_the_limit_is_read(tmp_path):
    (tmp_path / "p.yaml").write_bytes(b"lr: 0.1\r\n")
    assert check_file(tmp_path / "p.yaml", 9, "a params file") == 9
    assert read_text(tmp_path / "p.yaml", 9, "a params file") == "lr: 0.1\n"


def test_a_fifo_is_refused_without_opening_it(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    with time_limit(5), pytest.raises(InputError, match=r"pipe is a named pipe \(FIFO\), not a file; give the "
                                                         "path of a params file$"):
        read_text(tmp_path / "pipe", 1 << 20, "a params file")


@pytest.mark.parametrize("kind", ["character device", "directory", "socket"])
def test_anything_else_that_is_not_a_file_is_refused(tmp_path, kind):
    path = {"character device": "/dev/zero", "directory": tmp_path, "socket": tmp_path / "s"}[kind]
    with socket.socket(socket.AF_UNIX) as server:
        if kind == "socket":
            server.bind(str(path))
        with time_limit(5), pytest.raises(InputError, match=f"is a {kind}, not a file"):
            read_bytes(path, 1 << 20, "a Keras model")


def test_a_file_over_the_limit_is_refused_by_its_size(tmp_path):
    big = tmp_path / "big.keras"
    with big.open("wb") as file:
        file.truncate(3 << 30)  # sparse: costs nothing to make
    with pytest.raises(InputError, match=r"big.keras is 3 GiB, over the 1 GiB limit for a Keras model; check"):
        check_file(big, 1 << 30, "a Keras model")


def test_a_file_that_reads_longer_than_its_size_is_cut_at_the_limit():
    # /proc files say they are empty and are not; a file that grows after the check is the same case.
    assert os.stat("/proc/self/maps").st_size == 0
    with pytest.raises(InputError, match="maps is over the 100 bytes limit"):
        read_bytes("/proc/self/maps", 100, "a sweep table")


def test_a_missing_file_is_left_to_the_caller(tmp_path):
    with pytest.raises(FileNotFoundError):
        check_file(tmp_path / "absent.npy", 1, "a .npy batch")


def test_an_npy_file_loads_as_numpy_saves_it(tmp_path):
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.save(tmp_path / "a.npy", array)
    np.testing.assert_array_equal(load_npy(tmp_path / "a.npy", 1 << 20, "a data file"), array)


def test_an_npy_header_that_claims_more_than_the_file_holds_is_refused_before_allocating(tmp_path):
    path = npy_claiming(tmp_path / "rows.npy", (10**9, 28, 28))
    with pytest.raises(ValueError, match=r"header says shape \(1000000000, 28, 28\) of float32, "
                                         r"3,136,000,000,000 bytes, but 128 bytes follow it"):
        load_npy(path, 1 << 20, "a .npy batch")


def test_an_npy_of_python_objects_is_refused(tmp_path):
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}, None]), allow_pickle=True)
    with pytest.raises(ValueError, match="holds Python objects"):
        load_npy(tmp_path / "objects.npy", 1 << 20, "a .npy batch")


def test_an_archive_that_unpacks_past_the_limit_is_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "bomb.keras", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("model.weights.h5", b"\0" * (2 << 20))  # 2 MiB that compress to 2 KiB
    assert (tmp_path / "bomb.keras").stat().st_size < 10_000
    check_archive(tmp_path / "bomb.keras", 2 << 20, "a Keras model")
    with pytest.raises(InputError, match=r"bomb.keras unpacks to 2 MiB, over the 1 MiB limit for a Keras model"):
        check_archive(tmp_path / "bomb.keras", 1 << 20, "a Keras model")


def test_json_reads_as_json_loads_does_brackets_in_strings_included():
    text = '{"a": [1, "]]]\\"[[[[{"], "b": {"c": null}}'
    assert parse_json(text) == {"a": [1, ']]]"[[[[{'], "b": {"c": None}}


@pytest.mark.parametrize("text", ["[" * 100_000, '{"a": ' * 33 + "1" + "}" * 33, "[" * 20_000 + "]" * 20_000])
def test_json_nested_past_the_limit_is_refused_before_parsing(text):
    with time_limit(1), pytest.raises(JSONProblem, match="^it nests deeper than 32 levels$"):
        parse_json(text)
    assert parse_json("[" * 32 + "]" * 32)  # the limit itself is fine


def test_json_with_a_key_given_twice_is_refused():
    # json.loads keeps the last: {"accuracy": 0.1, "accuracy": 0.99} passed the accuracy gate.
    with pytest.raises(JSONProblem, match='^it gives the key "accuracy" twice$'):
        parse_json('{"loss": 0.3, "accuracy": 0.1, "accuracy": 0.99}')
    assert isinstance(JSONProblem("x"), ValueError)  # what the stages' readers take for a corrupt file
