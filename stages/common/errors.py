"""The one exception a stage raises for bad input; its message is shown to the user as is."""

import json
import reprlib
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager


class PipelineError(Exception):
    """Bad input or environment: the message names the problem and what to do."""


# Enough of a value to recognise it: a value can be as large as its file, and a message is one line.
SHOWN_WIDTH = 80
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = SHOWN_WIDTH  # reprlib never builds the whole repr


def shown(value: object) -> str:
    """repr(value) for a message, cut to SHOWN_WIDTH characters."""
    return clipped(_REPR.repr(value))


def clipped(text: str, width: int = SHOWN_WIDTH) -> str:
    """`text` cut to `width` characters."""
    return text if len(text) <= width else text[:width - 1] + "…"


# What numpy, json, csv and zipfile raise for a file that is cut short, overwritten or foreign.
CORRUPT = (ValueError, EOFError, KeyError, TypeError, zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError)


@contextmanager
def written_by(stage: str, path: object = None) -> Iterator[None]:
    """Turn a missing (or, for `path`, unreadable) input into a PipelineError naming the stage that writes it."""
    try:
        yield
    except FileNotFoundError as exc:
        raise PipelineError(f"{exc.filename} is missing; run the {stage} first") from None
    except CORRUPT as exc:
        if path is None:
            raise
        reason = " ".join(str(exc).split())[:120] or type(exc).__name__
        if "allow_pickle" in reason:  # numpy's advice to load a foreign file unsafely is no advice here
            reason = "not a numpy file"
        raise PipelineError(f"{path} is corrupt or not what the {stage} writes ({reason}); "
                            f"delete it and run the {stage} again") from None
