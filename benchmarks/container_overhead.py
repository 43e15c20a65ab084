"""Wall time of `dvc repro` in the container image against the same run on the host, interleaved.

    python -m benchmarks.container_overhead                    # CI size (1 epoch, real data), 3 rounds
    python -m benchmarks.container_overhead --size tiny        # tiny data: mostly start-up costs
    python -m benchmarks.container_overhead --image fashion-mnist:e2e --docker /usr/bin/docker

Each run clones HEAD into a fresh folder (no DVC cache: every stage runs, download included) and
times `dvc repro` there: on the host with this environment's dvc, and in the image as
scripts/container.sh runs it (`docker run --rm --init -u UID:GID`, the clone mounted), container
start and stop included. The clone is mounted at its own path, so that both runs read the same
params.yaml (the tiny data is a file:// mirror inside the clone). CI size is params.yaml at
`epochs: 1`, as .ci/run and the workflow run it. Host and container alternate, and swap which
goes first each round, so host noise hits both alike. Printed: each run's wall time, the median
and spread per side, the median of the per-round container/host ratios, and whether the container
wrote the host's test metrics byte for byte.

Needs a running docker daemon and the image (bash scripts/container.sh build).
"""

import gzip
import os
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

import yaml

from benchmarks.repro import timed
from stages.common import cli
from stages.common.errors import PipelineError
from stages.common.params import load_params


def clone(folder: Path, size: str) -> None:
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(Path.cwd()), str(folder)], check=True)
    params = load_params(folder / "params.yaml")
    params["epochs"] = 1
    if size == "tiny":
        # The e2e tests' tiny data (tests/tiny_data.py), served from the clone itself.
        from tests.tiny_data import GZ_NAMES, files_spec, idx_bytes, tiny_arrays

        raw = idx_bytes(tiny_arrays(n_train=200, n_test=50))
        (folder / "mirror").mkdir()
        for role, data in raw.items():
            (folder / "mirror" / GZ_NAMES[role]).write_bytes(gzip.compress(data, mtime=0))
        params["data"]["mirrors"] = [f"file://{folder}/mirror/"]
        params["data"]["files"] = files_spec(raw)
        params["batch_size"] = 32
        params["train"]["warmup_epochs"] = 0
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def run_once(where: str, folder: Path, size: str, image: str, docker: str) -> dict:
    clone(folder, size)
    if where == "host":
        command = ["dvc", "repro"]
    else:
        command = [docker, "run", "--rm", "--init", "-v", f"{folder}:{folder}", "-w", str(folder),
                   "-u", f"{os.getuid()}:{os.getgid()}", image, "dvc", "repro"]
    seconds = timed(command, folder, f"dvc repro on the {where}")
    metrics = {path.name: path.read_bytes() for path in sorted((folder / "metrics/test").glob("*.json"))}
    return {"seconds": seconds, "metrics": metrics}


def summary(seconds: list[float]) -> str:
    return f"{statistics.median(seconds):6.1f} s ({min(seconds):.1f}-{max(seconds):.1f})"


def main() -> None:
    parser = cli.stage_parser(__doc__)
    parser.add_argument("--size", choices=["ci", "tiny"], default="ci")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--image", default="fashion-mnist")
    parser.add_argument("--docker", default="docker", help="the docker client (default: docker)")
    args = parser.parse_args()
    if subprocess.run([args.docker, "image", "inspect", args.image], capture_output=True).returncode != 0:
        raise PipelineError(f"there is no image {args.image} (or no docker daemon answers); "
                            "build it first: bash scripts/container.sh build")

    root = Path(tempfile.mkdtemp(prefix="container-benchmark-"))
    runs: dict[str, list[dict]] = {"host": [], "container": []}
    try:
        for round_number in range(1, args.repeats + 1):
            order = ("host", "container") if round_number % 2 else ("container", "host")
            for where in order:
                run = run_once(where, root / f"{where}-{round_number}", args.size, args.image, args.docker)
                runs[where].append(run)
                print(f"round {round_number}: {where:9} dvc repro {run['seconds']:6.1f} s", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    ratios = [container["seconds"] / host["seconds"] for host, container in zip(runs["host"], runs["container"])]
    same = all(run["metrics"] == runs["host"][0]["metrics"] for run in runs["host"] + runs["container"])
    print(f"\n{args.size} `dvc repro` from nothing, {args.repeats} interleaved rounds, median (min-max):")
    for where, done in runs.items():
        print(f"  {where:9}: {summary([run['seconds'] for run in done])}")
    print(f"  container / host: {statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f})")
    print(f"  test metrics: {'byte-identical in every run' if same else 'DIFFER between runs'}")


if __name__ == "__main__":
    cli.run(main)
