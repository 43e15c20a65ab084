"""What a job costs through profiles/slurm beyond running it locally, on the SLURM test cluster.

    python -m benchmarks.slurm_overhead                 # 3 rounds, about 13 minutes
    python -m benchmarks.slurm_overhead --repeats 5 --nodes 3
    python -m benchmarks.slurm_overhead --ways tests,init-1   # local always runs: the baseline

Two workflows of three trivial jobs each (`echo` into a file): a chain, where each job
needs the one before, and three independent jobs. Each is run from a fresh folder four ways:

  local     snakemake -c2
  tests     as the e2e tests run it (tests/e2e/slurm.py): the plugin's first status check 1 s
            after a submission, every later one at most 1 s after the last, and each Snakemake
            (jobs' too) exiting when its work is done, through tests/e2e/snakemake_test_cluster.py
            (test clusters only)
  init-1    snakemake --profile profiles/slurm --slurm-init-seconds-before-status-checks 1: the
            first check after 1 s, then the plugin's own back-off, 10 s longer after each check
            at which nothing finished (what the tests used before)
  profile   snakemake --profile profiles/slurm (its own setting: the first check after 20 s)

interleaved, `--repeats` rounds, so host noise hits all alike. Printed: each run's wall
time, then per workflow and way the median wall time and the overhead per job, (wall -
that round's local wall) / 3, as median (min-max) over the rounds.

Needs root and SLURM's packages (scripts/slurm-test-cluster.sh install): it starts its own
test cluster (squeue mode, as profiles/slurm expects; `--nodes 3`: three nodes, each with its own
/tmp, as the tests' cluster) and stops it at the end, whatever happens; it refuses to run beside
another cluster, such as one the e2e tests started.
"""

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

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "slurm-test-cluster.sh"
JOBS = 3
SNAKEFILE = f"""\
N = range(1, {JOBS} + 1)

localrules: chain, parallel  # targets only: nothing to run

rule chain:
    input: "chain/{JOBS}.txt"

rule parallel:
    input: expand("parallel/{{i}}.txt", i=N)

rule link:  # chain/i.txt needs chain/(i-1).txt
    input: lambda w: [] if int(w.i) == 1 else [f"chain/{{int(w.i) - 1}}.txt"]
    output: "chain/{{i}}.txt"
    threads: 1
    resources: mem_mb=100, runtime=5
    shell: "echo {{wildcards.i}} > {{output}}"

rule leaf:
    output: "parallel/{{i}}.txt"
    threads: 1
    resources: mem_mb=100, runtime=5
    shell: "echo {{wildcards.i}} > {{output}}"
"""
PROFILE = ["--profile", str(REPO / "profiles" / "slurm")]
TESTS_SNAKEMAKE = [sys.executable, str(REPO / "tests" / "e2e" / "snakemake_test_cluster.py")]
WAYS = {  # the command
    "local": ["snakemake", "-c2"],
    "tests": [*TESTS_SNAKEMAKE, *PROFILE, "--slurm-init-seconds-before-status-checks", "1"],
    "init-1": ["snakemake", *PROFILE, "--slurm-init-seconds-before-status-checks", "1"],
    "profile": ["snakemake", *PROFILE],
}
WORKFLOWS = ("chain", "parallel")


def run_once(folder: Path, workflow: str, way: str, environment: dict) -> float:
    folder.mkdir(parents=True)
    (folder / "Snakefile").write_text(SNAKEFILE)
    command = [*WAYS[way], workflow]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=folder, env=environment, capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise PipelineError(f"{' '.join(command)} failed in {folder}: "
                            f"{(result.stderr.strip().splitlines() or ['(no message)'])[-1]}")
    if sorted(p.name for p in (folder / workflow).iterdir()) != [f"{i}.txt" for i in range(1, JOBS + 1)]:
        raise PipelineError(f"{workflow} in {folder} did not write its {JOBS} files")
    return seconds


def spread(values: list[float], digits: int = 0) -> str:
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def main() -> None:
    parser = cli.stage_parser(__doc__)
    parser.add_argument("--repeats", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--ways", default=",".join(WAYS), help=f"which of {', '.join(WAYS)} (default all)")
    parser.add_argument("--nodes", type=int, default=1, help="the test cluster's nodes (default 1); with more "
                        "than one, each has its own /tmp")
    args = parser.parse_args()
    ways = ["local"] + [way for way in WAYS if way != "local" and way in args.ways.split(",")]
    if unknown := set(args.ways.split(",")) - set(WAYS):
        raise PipelineError(f"--ways: no way named {', '.join(sorted(unknown))}")
    if shutil.which("slurmctld") is None:
        raise PipelineError("SLURM is not installed: run scripts/slurm-test-cluster.sh install")

    root = Path(tempfile.mkdtemp(prefix="slurm-overhead-"))
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                   "SLURM_TEST_CLUSTER_DIR": f"{tempfile.gettempdir()}/slurm-test-cluster-benchmark-{os.getpid()}"}
    walls: dict[tuple[str, str], list[float]] = {(w, way): [] for w in WORKFLOWS for way in ways}
    try:
        options = ["--nodes", str(args.nodes)]
        if args.nodes > 1:  # the folders, as the tests share theirs
            options += ["--private-tmp", "--share", str(root), "--share", sys.prefix]
        before = time.perf_counter()
        started = subprocess.run(["bash", SCRIPT, "start", *options], env=environment, capture_output=True, text=True)
        if started.returncode != 0:
            raise PipelineError(f"the test cluster did not start: {started.stderr.strip().splitlines()[-1]}")
        up = time.perf_counter() - before
        node = subprocess.run(["sinfo", "--noheader", "-N", "-o", "%c CPUs"], capture_output=True,
                              text=True).stdout.splitlines()[0]
        print(f"test cluster: {args.nodes} node(s) of {node}, up in {up:.1f} s; {JOBS} jobs per workflow; "
              f"load average {os.getloadavg()[0]:.1f} at the start", flush=True)
        for round_number in range(1, args.repeats + 1):
            for workflow in WORKFLOWS:
                for way in ways:
                    seconds = run_once(root / f"{round_number}-{workflow}-{way}", workflow, way, environment)
                    walls[workflow, way].append(seconds)
                    print(f"round {round_number}: {workflow:8} {way:7} {seconds:5.1f} s", flush=True)
    finally:
        before = time.perf_counter()
        subprocess.run(["bash", SCRIPT, "stop"], env=environment, capture_output=True)
        print(f"test cluster stopped in {time.perf_counter() - before:.1f} s", flush=True)
        shutil.rmtree(root, ignore_errors=True)

    print(f"\n{JOBS} trivial jobs, {args.repeats} interleaved rounds, median (min-max); "
          f"overhead per job = (wall - the round's local wall) / {JOBS}:\n")
    print("| workflow | way | wall, s | overhead per job, s |")
    print("|---|---|---|---|")
    for workflow in WORKFLOWS:
        local = walls[workflow, "local"]
        for way in ways:
            overhead = [(wall - base) / JOBS for wall, base in zip(walls[workflow, way], local)]
            cell = "-" if way == "local" else spread(overhead, 1)
            print(f"| {workflow} | {way} | {spread(walls[workflow, way], 1)} | {cell} |")


if __name__ == "__main__":
    cli.run(main)
