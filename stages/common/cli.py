"""The command-line frame every stage shares: `--params`, `--set`, and one-line errors.

Every failure a stage can meet ends in one line on stderr and a non-zero exit: bad input
(`error: ...`, exit 1), a full disk or a denied permission (exit 1), Ctrl-C (exit 130)
or SIGTERM (exit 143; training stops at its next step). Outputs are written atomically
(stages/common/files.py), so in every case nothing is half-written. PIPELINE_DEBUG=1
shows the full traceback instead.
"""

import argparse
import errno
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from stages.common.errors import PipelineError
from stages.common.params import load_params

# The stage wrote nothing; but dvc repro and dvc exp run delete a stage's outputs before running it.
NOTHING_WRITTEN = "nothing was written (under DVC, `dvc checkout` restores the outputs it removed)"


class Terminated(Exception):
    """SIGTERM, raised where the stage is, so that its atomic writes clean up."""


# Held back by `signals_deferred`: how deep its blocks are nested, and the signal that came.
_deferring = 0
_pending: list[int] = []


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
    handle_signals()
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


def handle_signals() -> None:
    """SIGTERM raises `Terminated` and Ctrl-C `KeyboardInterrupt`, unless `signals_deferred` holds them."""
    signal.signal(signal.SIGTERM, _on_signal)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not when ignored (`nohup`, `cmd &`)
        signal.signal(signal.SIGINT, _on_signal)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Within the block, SIGTERM and Ctrl-C wait for `raise_pending_signal` or the block's end.

    Python raises a signal's exception wherever the main thread is, even half-way through
    a library's bookkeeping: a training run stopped inside DVCLive's queue hung in DVCLive's
    exit, waiting for an update that never came. Training calls `raise_pending_signal`
    between steps. A second signal is raised at once: a user pressing Ctrl-C twice wants out.
    """
    global _deferring
    _deferring += 1
    try:
        yield
    except BaseException:
        if _deferring == 1:
            _pending.clear()  # the block fails anyway, with its own error
        raise
    finally:
        _deferring -= 1
    raise_pending_signal()


def raise_pending_signal() -> None:
    """Raise the signal `signals_deferred` held back, if any: call it where stopping is safe."""
    if _pending:
        _raise_signal(_pending[0])


def _on_signal(signum: int, frame: object) -> None:
    if _deferring and not _pending:
        _pending.append(signum)
        return
    _raise_signal(signum)


def _raise_signal(signum: int) -> None:
    _pending.clear()
    if signum == signal.SIGINT:
        raise KeyboardInterrupt()
    raise Terminated()
