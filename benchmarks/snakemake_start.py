"""How long Snakemake takes to read the project's Snakefile, at two git revisions, interleaved.

    python -m benchmarks.snakemake_start --before 6337eeb            # 5 rounds
    python -m benchmarks.snakemake_start --before 6337eeb --repeats 9

Every `snakemake` pays this before it runs anything: the one you type, and on a cluster
each job twice (the batch script's, then srun's). The Snakefile reads params.yaml and
every committed sweep table (each point validated) and finds each rule's code files.
Each revision is cloned once into a fresh folder; `snakemake --list-rules` (the
Snakefile read, no DAG) runs there, the revisions alternating, `--repeats` rounds.
Printed: each run's wall time, the median and spread per revision, and the median of
the per-round after/before ratios.
"""

import shutil
import statistics
import tempfile
from pathlib import Path

from benchmarks.repro import clone_at, resolve, timed
from stages.common import cli

COMMAND = ["snakemake", "--list-rules"]
SHOWN = " ".join(COMMAND)


def main() -> None:
    parser = cli.stage_parser(__doc__)
    parser.add_argument("--before", required=True, help="git revision to compare against")
    parser.add_argument("--after", default="HEAD", help="git revision to time (default: HEAD)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    revisions = resolve({"before": args.before, "after": args.after})

    root = Path(tempfile.mkdtemp(prefix="snakemake-start-benchmark-"))
    seconds: dict[str, list[float]] = {label: [] for label in revisions}
    try:
        for label, revision in revisions.items():
            clone_at(revision, root / label)
            timed(COMMAND, root / label, SHOWN)  # compiles the clone's Python files, as any earlier run has
        for round_number in range(1, args.repeats + 1):
            for label, revision in revisions.items():
                seconds[label].append(timed(COMMAND, root / label, SHOWN))
                print(f"round {round_number}: {label:6} {revision}  {seconds[label][-1]:5.2f} s", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    ratios = [after / before for before, after in zip(seconds["before"], seconds["after"])]
    print(f"\n`{SHOWN}`, {args.repeats} interleaved rounds, median (min-max):")
    for label, revision in revisions.items():
        print(f"  {label:6} {revision}: {statistics.median(seconds[label]):5.2f} s "
              f"({min(seconds[label]):.2f}-{max(seconds[label]):.2f})")
    print(f"  after / before: {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})")


if __name__ == "__main__":
    cli.run(main)
