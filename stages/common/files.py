"""Write outputs atomically, so an interrupted stage never leaves a half-written file.

Temporary names start with `.<output name>.tmp` (ignored by .gitignore and .dvcignore);
the next write of the same output removes any left behind by a killed run.
"""

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `target` (same suffix); rename it over `target` on success."""
    target = Path(target)
    with _named_for(target):
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
