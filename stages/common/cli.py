"""The command-line frame every stage shares: `--params`, `--set`, and one-line errors.

Every failure a stage can meet ends in one line on stderr and a non-zero exit: bad input
(`error: ...`, exit 1), a full disk or a denied permission (exit 1), Ctrl-C (exit 130)
or SIGTERM (exit 143). Outputs are written atomically (stages/common/files.py), so in
every case nothing is half-written. PIPELINE_DEBUG=1 shows the full traceback instead.
"""

import argparse
import errno
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from stages.common.errors import PipelineError
from stages.common.params import load_params

# The stage wrote nothing; but dvc repro and dvc exp run delete a stage's outputs before running it.
NOTHING_WRITTEN = "nothing was written (under DVC, `dvc checkout` restores the outputs it removed)"


class Terminated(Exception):
    """SIGTERM, raised where the stage is, so that its atomic writes clean up."""


def stage_parser(description: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override a param, e.g. --set lr=0.01 (repeatable)",
    )
    return parser


def params_from(args: argparse.Namespace) -> dict[str, Any]:
    return load_params(args.params, args.set)


def run(cli: Callable[[], None]) -> None:
    """Run a stage's CLI; turn every failure into one line on stderr and an exit status."""
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        cli()
    except Exception as exc:
        if os.environ.get("PIPELINE_DEBUG") or not isinstance(exc, PipelineError | OSError | Terminated):
            raise
        status = 143 if isinstance(exc, Terminated) else 1
        print(f"error: {describe(exc)}", file=sys.stderr)
        sys.exit(status)
    except KeyboardInterrupt:
        if os.environ.get("PIPELINE_DEBUG"):
            raise
        print(f"error: interrupted (Ctrl-C); {NOTHING_WRITTEN}", file=sys.stderr)
        sys.exit(130)


def describe(exc: Exception) -> str:
    """The one line for an exception a stage can meet."""
    if isinstance(exc, Terminated):
        return f"terminated (SIGTERM); {NOTHING_WRITTEN}"
    if isinstance(exc, OSError) and not isinstance(exc, PipelineError):
        where = exc.filename or "an output"
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return f"no space left on the device for {where}; free some space and run the stage again"
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return f"permission denied for {where}; make it writable or choose another path"
        return f"{exc.strerror or exc} ({where})"
    return str(exc)


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()
