"""Wall time of a full default `dvc repro` from nothing, at two git revisions, interleaved.

    python -m benchmarks.repro --before 242af71 --after HEAD           # 3 rounds
    python -m benchmarks.repro --before 242af71 --after HEAD --keep runs/

Each run clones its revision into a fresh folder (no DVC cache, so every stage runs,
download included) and times `dvc repro` there with this environment's dvc. The
revisions alternate, `--repeats` rounds, so host noise hits both alike. Printed: each
run's wall time and training times, the median and spread per revision, the median of
the per-round after/before ratios, and whether every run of a revision gave the same
test metrics (it should: training is deterministic).
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stages.common import cli
from stages.common.errors import PipelineError

# The tools of this environment (dvc, snakemake), whatever the shell's PATH.
ENVIRONMENT = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def clone_at(revision: str, folder: Path) -> None:
    """A fresh clone of this repository in `folder`, checked out at `revision`."""
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(Path.cwd()), str(folder)], check=True)
    subprocess.run(["git", "-C", str(folder), "checkout", "--quiet", revision], check=True)


def resolve(revisions: dict[str, str]) -> dict[str, str]:
    """{label: short hash} for {label: any git revision}; a one-line error for one that is not."""
    resolved = {}
    for label, revision in revisions.items():
        result = subprocess.run(["git", "rev-parse", "--short", revision], capture_output=True, text=True)
        if result.returncode != 0:
            raise PipelineError(f"--{label} {revision!r} is not a git revision here")
        resolved[label] = result.stdout.strip()
    return resolved


def timed(command: list[str], folder: Path, what: str) -> float:
    """Seconds `command` took in `folder`, with this environment's tools; a one-line error if it failed."""
    started = time.perf_counter()
    result = subprocess.run(command, cwd=folder, capture_output=True, text=True, env=ENVIRONMENT)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise PipelineError(f"{what} failed in {folder}: "
                            f"{(result.stderr.strip().splitlines() or ['(no message)'])[-1]}")
    return seconds


def run_once(revision: str, folder: Path) -> dict:
    clone_at(revision, folder)
    seconds = timed(["dvc", "repro"], folder, f"dvc repro at {revision}")
    metrics = {path.stem: json.loads(path.read_text()) for path in sorted((folder / "metrics/test").glob("*.json"))}
    training = {path.stem: json.loads(path.read_text())["train_time_s"]
                for path in sorted((folder / "metrics/timing").glob("*.json"))}
    return {"seconds": seconds, "metrics": metrics, "training": training}


def summary(seconds: list[float]) -> str:
    return f"{statistics.median(seconds):6.0f} s ({min(seconds):.0f}-{max(seconds):.0f})"


def main() -> None:
    parser = cli.stage_parser(__doc__)
    parser.add_argument("--before", required=True, help="git revision to compare against")
    parser.add_argument("--after", default="HEAD", help="git revision to time (default: HEAD)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="keep every run's clone under this folder")
    args = parser.parse_args()
    revisions = resolve({"before": args.before, "after": args.after})

    root = Path(tempfile.mkdtemp(prefix="repro-benchmark-")) if args.keep is None else args.keep
    runs: dict[str, list[dict]] = {"before": [], "after": []}
    try:
        for round_number in range(1, args.repeats + 1):
            for label, revision in revisions.items():
                run = run_once(revision, root / f"{label}-{round_number}")
                runs[label].append(run)
                accuracies = " / ".join(f"{m['accuracy']:.4f}" for m in run["metrics"].values())
                trainings = " / ".join(f"{s:.0f}" for s in run["training"].values())
                print(f"round {round_number}: {label:6} {revision}  dvc repro {run['seconds']:5.0f} s, "
                      f"training {trainings} s, test accuracy {accuracies}", flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)

    ratios = [after["seconds"] / before["seconds"] for before, after in zip(runs["before"], runs["after"])]
    print(f"\nFull default `dvc repro` from nothing, {args.repeats} interleaved rounds, median (min-max):")
    for label, revision in revisions.items():
        same = all(run["metrics"] == runs[label][0]["metrics"] for run in runs[label])
        print(f"  {label:6} {revision}: {summary([run['seconds'] for run in runs[label]])}; "
              f"test metrics {'identical in every run' if same else 'DIFFER between runs'}")
    print(f"  after / before: {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})")


if __name__ == "__main__":
    cli.run(main)
