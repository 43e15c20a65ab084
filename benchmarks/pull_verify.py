"""What a remote's `verify true` costs: `dvc pull` into a fresh clone with it off and on, interleaved.

    python -m benchmarks.pull_verify               # 3 rounds, every output of this checkout's dvc.lock
    python -m benchmarks.pull_verify --repeats 5

It pushes this checkout's cached outputs (run `dvc repro` or `dvc pull` first) to a
throw-away folder remote, then, alternating, clones HEAD into a fresh folder and times
`dvc pull` there with the remote's `verify` false and true. Printed: each pull's wall
time, the median and spread per setting, and the median of the per-round on/off ratios.
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

ENVIRONMENT = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               "DVC_NO_ANALYTICS": "1"}


def dvc(folder: Path, *args: str) -> None:
    result = subprocess.run(["dvc", *args], cwd=folder, capture_output=True, text=True, env=ENVIRONMENT)
    if result.returncode != 0:
        raise PipelineError(f"dvc {' '.join(args)} failed in {folder}: "
                            f"{(result.stderr.strip().splitlines() or ['(no message)'])[-1]}")


def timed_pull(remote: Path, folder: Path, verify: bool) -> float:
    subprocess.run(["git", "clone", "--quiet", str(Path.cwd()), str(folder)], check=True)
    dvc(folder, "remote", "add", "--local", "--force", "--default", "bench", str(remote))
    dvc(folder, "remote", "modify", "--local", "bench", "verify", str(verify).lower())
    started = time.perf_counter()
    dvc(folder, "pull")
    return time.perf_counter() - started


def push_cache(remote: Path, folder: Path) -> None:
    """Push this checkout's cached outputs to `remote`, from a clone that borrows the cache, so
    that this checkout's own DVC config stays as it is."""
    subprocess.run(["git", "clone", "--quiet", str(Path.cwd()), str(folder)], check=True)
    dvc(folder, "cache", "dir", "--local", str(Path.cwd() / ".dvc" / "cache"))
    # Else the push succeeds with what there is, and only the first pull fails, without saying why.
    if subprocess.run(["dvc", "checkout"], cwd=folder, capture_output=True, env=ENVIRONMENT).returncode != 0:
        raise PipelineError("this checkout's DVC cache lacks outputs that dvc.lock names; "
                            "run `dvc repro` or `dvc pull` here first")
    dvc(folder, "remote", "add", "--local", "--default", "bench", str(remote))
    dvc(folder, "push")


def summary(seconds: list[float]) -> str:
    return f"{statistics.median(seconds):6.1f} s ({min(seconds):.1f}-{max(seconds):.1f})"


def main() -> None:
    parser = cli.stage_parser(__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="pull-verify-"))
    times: dict[bool, list[float]] = {False: [], True: []}
    try:
        remote = root / "remote"
        push_cache(remote, root / "pusher")
        for round_number in range(1, args.repeats + 1):
            for verify in (False, True):
                folder = root / f"{'on' if verify else 'off'}-{round_number}"
                times[verify].append(timed_pull(remote, folder, verify))
                shutil.rmtree(folder)
                print(f"round {round_number}: verify {'on ' if verify else 'off'} dvc pull "
                      f"{times[verify][-1]:6.1f} s", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    ratios = [on / off for off, on in zip(times[False], times[True])]
    print(f"\n`dvc pull` into a fresh clone, {args.repeats} interleaved rounds, median (min-max):")
    print(f"  verify off {summary(times[False])}")
    print(f"  verify on  {summary(times[True])}")
    print(f"  on / off, per round: {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})")


if __name__ == "__main__":
    cli.run(main)
