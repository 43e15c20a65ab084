"""The one exception a stage raises for bad input; its message is shown to the user as is."""

from collections.abc import Iterator
from contextlib import contextmanager


class PipelineError(Exception):
    """Bad input or environment: the message names the problem and what to do."""


@contextmanager
def written_by(stage: str) -> Iterator[None]:
    """Turn a missing input file into a PipelineError that names the stage that writes it."""
    try:
        yield
    except FileNotFoundError as exc:
        raise PipelineError(f"{exc.filename} is missing; run the {stage} first") from None
