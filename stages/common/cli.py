"""The command-line frame every stage shares: `--params`, `--set`, and one-line errors."""

import argparse
import sys
from collections.abc import Callable
from typing import Any

from stages.common.errors import PipelineError
from stages.common.params import load_params


def stage_parser(description: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override a param, e.g. --set lr=0.01 (repeatable)",
    )
    return parser


def params_from(args: argparse.Namespace) -> dict[str, Any]:
    return load_params(args.params, args.set)


def run(cli: Callable[[], None]) -> None:
    """Run a stage's CLI; turn a PipelineError into `error: ...` on stderr and exit status 1."""
    try:
        cli()
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
