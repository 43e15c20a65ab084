"""How long, and how much memory, Snakemake takes to plan a big sweep (`snakemake -n sweeps`).

    python -m benchmarks.sweep_planning                          # 1,000 and 5,000 points
    python -m benchmarks.sweep_planning --points 1000 5000 10000 --timeout 600

The project's files are copied into a fresh folder with one table, `sweeps/big.tsv`, of
one column (`lr`) and `--points` rows; `snakemake -n -c1 sweeps` runs there, once per
size, under a time limit. Printed per size: the points, the jobs planned (one train and
one evaluate per point and model), the wall time, and the peak memory (maximum resident
set). The Snakefile's own read (every point validated) is timed apart with
`snakemake --list-rules`, so the figures say how much of the plan is Snakemake's.
Nothing trains: a dry run plans and prints.
"""

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from stages.common import cli
from stages.common.errors import PipelineError

REPO = Path(__file__).resolve().parents[1]
PROJECT_FILES = ["stages", "Snakefile", "params.yaml", "params.schema.yaml", "profiles", "report", "envs",
                 "pyproject.toml", ".dvcignore", ".gitignore", "dvc.yaml"]
# A small process of its own starts the command: a child's peak memory (ru_maxrss) would
# otherwise count the parent it was forked from.
_MEASURE = """
import json, resource, subprocess, sys, time
started = time.monotonic()
try:
    result = subprocess.run(sys.argv[2:], capture_output=True, text=True, timeout=float(sys.argv[1]))
    code, output = result.returncode, result.stdout + result.stderr
except subprocess.TimeoutExpired:
    code, output = None, ""
print(json.dumps({"returncode": code, "seconds": time.monotonic() - started, "output": output[-200000:],
                  "peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def measure(command: list[str], folder: Path, timeout: float) -> dict:
    result = subprocess.run([sys.executable, "-c", _MEASURE, str(timeout), *command], cwd=folder,
                            capture_output=True, text=True, env=_environment())
    return json.loads(result.stdout)


def _environment() -> dict[str, str]:
    import os

    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def project_with_sweep(folder: Path, points: int) -> None:
    for name in PROJECT_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, folder / name)
    (folder / "sweeps").mkdir()
    (folder / "sweeps" / "big.tsv").write_text("lr\n" + "".join(f"{row}e-6\n" for row in range(1, points + 1)))


def main() -> None:
    parser = cli.stage_parser(__doc__)
    parser.add_argument("--points", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--timeout", type=float, default=600, help="seconds per plan before it is stopped")
    args = parser.parse_args()
    print(f"{'points':>7} {'jobs':>7} {'read s':>7} {'plan s':>7} {'peak MB':>8}")
    for points in args.points:
        folder = Path(tempfile.mkdtemp(prefix="sweep-planning-"))
        try:
            project_with_sweep(folder, points)
            read = measure(["snakemake", "--list-rules"], folder, args.timeout)
            plan = measure(["snakemake", "-n", "-c1", "sweeps"], folder, args.timeout)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if plan["returncode"] not in (0, None):
            raise PipelineError(f"snakemake -n sweeps failed at {points} points: "
                                f"{(plan['output'].strip().splitlines() or ['(no message)'])[-1]}")
        jobs = re.search(r"^total\s+(\d+)", plan["output"], re.MULTILINE)
        seconds = f"{plan['seconds']:7.1f}" if plan["returncode"] == 0 else f">{args.timeout:6.0f}"
        print(f"{points:7d} {jobs.group(1) if jobs else '?':>7} {read['seconds']:7.1f} {seconds} "
              f"{plan['peak_mb']:8.0f}", flush=True)


if __name__ == "__main__":
    cli.run(main)
