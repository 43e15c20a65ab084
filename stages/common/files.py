"""Write outputs atomically, so an interrupted stage never leaves a half-written file.

Temporary names start with `.<output name>.tmp` (ignored by .gitignore and .dvcignore);
the next write of the same output removes any left behind by a killed run.

A rename replaces whatever had the name, and a path given on a command line can name a
FIFO, a device or /dev/stdout: renaming over /dev/null would make it a file for every
program on the machine. So a target that exists and is not a regular file is never
replaced: a FIFO, the null device, a terminal and a /dev or /proc path (/dev/stdout) are
written into once the output is complete; anything else (another device, a socket) is
refused before any work, as is a folder where a file belongs or a file where a folder does.
"""

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from stages.common.errors import PipelineError
from stages.common.inputs import kind_of


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `target` (same suffix); rename it over `target` on success."""
    target = Path(target)
    with _named_for(target):
        if _written_into(target):
            yield from _write_into(target)
            return
        _prepare(target)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=_temp_prefix(target), suffix=target.suffix)
        os.close(fd)
        tmp_path = Path(tmp)
        tmp_path.chmod(0o644)  # mkstemp makes it private; the output should not be
        try:
            yield tmp_path
            os.replace(tmp_path, target)
        finally:
            tmp_path.unlink(missing_ok=True)


@contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside `target`; swap it in for `target` on success."""
    target = Path(target)
    with _named_for(target):
        _refuse_unless_folder(target)
        _prepare(target)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=_temp_prefix(target)))
        tmp.chmod(0o755)  # mkdtemp makes it private; the output should not be
        try:
            yield tmp
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def check_output(target: str | Path) -> None:
    """Refuse now, with the PipelineError atomic_path would give at the end, a target it may not write:
    for a stage that works a long time before it writes."""
    _written_into(Path(target))


def _written_into(target: Path) -> bool:
    """Whether `target` is written into rather than replaced; raise PipelineError for a target that
    may be neither (a folder, a socket, a device other than the null device or a terminal)."""
    try:
        info = os.stat(target)  # through links: /dev/stdout is one
    except (FileNotFoundError, NotADirectoryError):
        return False
    mode = info.st_mode
    if stat.S_ISREG(mode):
        # /dev/stdout redirected to a file: renaming would replace the link in /dev, not write the file.
        return Path(os.path.abspath(target)).parts[1:2] in (("dev",), ("proc",))
    if stat.S_ISFIFO(mode) or (stat.S_ISCHR(mode) and (_is_null(info) or _is_terminal(info))):
        return True
    raise PipelineError(f"{target} is {kind_of(mode)}, not a file, and is never replaced by an output; "
                        "give the path of a file (or a FIFO, /dev/null or /dev/stdout)")


def _is_null(info: os.stat_result) -> bool:
    return info.st_rdev == os.stat(os.devnull).st_rdev  # /dev/null, or a node made with its numbers


def _is_terminal(info: os.stat_result) -> bool:
    # Linux's terminal majors (tty, console, pseudo-terminals): known without opening the device,
    # which for a serial line could block.
    return os.major(info.st_rdev) in (4, 5) or 136 <= os.major(info.st_rdev) <= 143


def _write_into(target: Path) -> Iterator[Path]:
    """The output is made in a temporary file elsewhere (a device's folder is not ours to write in),
    then copied into `target` once complete: a reader of a FIFO gets all of it or nothing."""
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(target), suffix=target.suffix)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as source, open(target, "wb") as sink:  # a FIFO: waits for its reader
            shutil.copyfileobj(source, sink)
    finally:
        tmp_path.unlink(missing_ok=True)


def _refuse_unless_folder(target: Path) -> None:
    try:
        mode = os.stat(target).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return
    if not stat.S_ISDIR(mode):
        raise PipelineError(f"{target} is {kind_of(mode)}, not a folder, and is never replaced by an output "
                            "folder; give the path of a folder, or of nothing yet")


def _temp_prefix(target: Path) -> str:
    return f".{target.name}.tmp"


def _prepare(target: Path) -> None:
    """Make the parent folder and remove what a killed earlier write of `target` left."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for leftover in target.parent.glob(f"{_temp_prefix(target)}*"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


@contextmanager
def _named_for(target: Path) -> Iterator[None]:
    # A full disk or a read-only folder is reported for the output the user asked for,
    # not for a temporary name they never saw (or no name at all, as write() gives).
    try:
        yield
    except OSError as exc:
        if exc.filename is None or _temp_prefix(target) in str(exc.filename):
            exc.filename = str(target)
        raise
