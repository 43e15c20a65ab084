import os
import stat
import threading
from pathlib import Path

import pytest

from stages.common.errors import PipelineError
from stages.common.files import atomic_dir, atomic_path

ROOT = os.geteuid() == 0
NULL = os.stat(os.devnull).st_rdev


def read_fifo_in_background(fifo: Path) -> tuple[threading.Thread, list[bytes]]:
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    return reader, received


def test_a_regular_target_is_replaced_whole(tmp_path):
    (tmp_path / "out.txt").write_text("old")
    with atomic_path(tmp_path / "out.txt") as tmp:
        tmp.write_text("new")
    assert (tmp_path / "out.txt").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_a_fifo_is_written_into_and_stays_a_fifo(tmp_path):
    fifo = tmp_path / "out.csv"
    os.mkfifo(fifo)
    reader, received = read_fifo_in_background(fifo)
    with atomic_path(fifo) as tmp:
        assert tmp.parent != tmp_path and tmp.suffix == ".csv"
        tmp.write_text("a,b\n")
    reader.join(10)
    assert received == [b"a,b\n"]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]  # no temporary file beside it


def null_device(folder: Path) -> Path:
    """The null device to write to: as root a node of its own with /dev/null's numbers (the probe's
    `mknod /tmp/d c 1 3`), because code that renames over its target would, as root, replace the
    machine's /dev/null (the code before this test did); else /dev/null itself, which it cannot."""
    if not ROOT:
        return Path(os.devnull)
    os.mknod(folder / "null", 0o666 | stat.S_IFCHR, NULL)
    return folder / "null"


def test_the_null_device_is_written_into_not_replaced(tmp_path):
    null = null_device(tmp_path)
    before = os.stat(null)
    with atomic_path(null) as tmp:
        tmp.write_bytes(b"x" * 100)
    after = os.stat(null)
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_rdev) == (before.st_ino, NULL)
    assert not tmp.exists()


@pytest.mark.skipif(not ROOT, reason="mknod of a character device needs root")
def test_another_device_is_refused_before_any_work(tmp_path):
    node = tmp_path / "full"
    os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 7))  # /dev/full's numbers
    with pytest.raises(PipelineError, match=r"full is a character device, not a file, and is never replaced"), \
            atomic_path(node):
        pytest.fail("the body ran")
    assert stat.S_ISCHR(os.stat(node).st_mode) and os.stat(node).st_rdev == os.makedev(1, 7)


def test_a_socket_or_folder_is_refused(tmp_path):
    import socket

    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "sock"))
        with pytest.raises(PipelineError, match="is a socket, not a file"), atomic_path(tmp_path / "sock"):
            pytest.fail("the body ran")
    (tmp_path / "folder").mkdir()
    with pytest.raises(PipelineError, match="is a directory, not a file"), atomic_path(tmp_path / "folder"):
        pytest.fail("the body ran")
    assert stat.S_ISSOCK(os.lstat(tmp_path / "sock").st_mode) and (tmp_path / "folder").is_dir()


@pytest.mark.parametrize("make", [os.mkfifo, lambda path: path.write_text("a file")], ids=["fifo", "file"])
def test_an_output_folder_never_replaces_what_is_not_a_folder(tmp_path, make):
    target = tmp_path / "out"
    make(target)
    with pytest.raises(PipelineError, match="not a folder, and is never replaced"), atomic_dir(target):
        pytest.fail("the body ran")
    assert not target.is_dir() and target.exists()


def test_a_failed_write_into_a_fifo_sends_nothing(tmp_path):
    fifo = tmp_path / "out"
    os.mkfifo(fifo)
    with pytest.raises(RuntimeError), atomic_path(fifo) as tmp:
        tmp.write_text("half")
        raise RuntimeError  # the FIFO is never opened: no reader is waiting, and none would get half
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and not tmp.exists()
