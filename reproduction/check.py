"""Does this host reproduce the committed results? Retrain from the committed params and say,
output by output, whether the bytes are the same.

    python -m reproduction.check conv1            # one model: about a minute and a half on 2 cores
    python -m reproduction.check                  # every model of params.yaml
    python -m reproduction.check conv1 --record "my laptop"   # and add this host to hosts.yaml
                                                              # (with conv1 after one epoch)

It works in a temporary folder laid out as the project, from the params.yaml, dvc.lock and
metrics of the last commit (HEAD), so the checkout is left as it is. The data stages run
only where data/processed does not already match dvc.lock. Each output of `train@<model>`
and `evaluate@<model>` is compared with the hash dvc.lock records for it; where the test
metrics differ, each one's distance from the committed value is set against the
seed-to-seed standard deviation of the defaults (the learning-rate study's Adam cell,
seeds 1-3): inside the seed spread within two of them. The training time is not
compared: it is the one output that always differs.

Exit status 1 when a metric is further from the committed one than that spread, or when
the bytes differ on a host whose arithmetic reproduction/hosts.yaml lists as identical.
"""

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from reproduction.host import fingerprint, same_arithmetic
from stages.common import cli
from stages.common.errors import PipelineError, written_by
from stages.common.files import atomic_path
from stages.common.inputs import TEXT_LIMIT, parse_json, read_text
from stages.common.params import parse_yaml, validate
from stages.common.sweeps import point_name, read_rows
from studies.learning_rate import technique

HOSTS = Path("reproduction/hosts.yaml")  # in the checkout
# Outputs that are not compared, and why.
NOT_COMPARED = {"metrics/timing/": "the training time, which differs on every run"}
# The spread a difference is measured against: the defaults' cell of the learning-rate study.
SPREAD_SWEEP, SPREAD_TECHNIQUE = "lr_seeds", "Adam"
METRICS = ("accuracy", "loss")
# A difference within this many seed sds is noise: two seeds' results lie up to 2.8 sds apart
# in 95 % of pairs, and an sd from three seeds is rough, so two rather than one.
SPREAD_SDS = 2


@dataclass(frozen=True)
class Metric:
    name: str
    committed: float
    here: float
    seed_sd: float | None

    @property
    def inside(self) -> bool:
        return self.seed_sd is not None and abs(self.here - self.committed) <= SPREAD_SDS * self.seed_sd

    def describe(self) -> str:
        distance = self.here - self.committed
        if self.seed_sd is None:
            where = "no seed spread is documented for it"
        else:
            where = (f"{abs(distance) / self.seed_sd:.2f} seed sd ({self.seed_sd:.4f}): "
                     f"{'inside' if self.inside else 'OUTSIDE'} the seed spread, ±{SPREAD_SDS} sd")
        return f"{self.name} {self.here:.6f} against {self.committed:.6f} ({distance:+.6f}, {where})"


@dataclass
class ModelResult:
    model: str
    lines: list[str]
    identical: bool
    metrics: list[Metric]

    @property
    def inside(self) -> bool:
        return self.identical or all(metric.inside for metric in self.metrics)


def main(models: list[str] | None, record: str | None = None, root: Path = Path(".")) -> int:
    """Check `models` (all if None) in the checkout at `root`; the exit status."""
    root = root.resolve()
    hosts_file = root / HOSTS
    lock = parse_yaml(committed(root, "dvc.lock"), "dvc.lock")
    params_text = committed(root, "params.yaml")
    params = validate(parse_yaml(params_text, "params.yaml (HEAD)"), "params.yaml (HEAD)")
    models = models or list(params["models"])
    unknown = [model for model in models if model not in params["models"]]
    if unknown:
        raise PipelineError(f"unknown model {unknown[0]!r}; choose among {', '.join(params['models'])}")
    host = fingerprint(params["threads"])
    hosts = read_hosts(hosts_file)
    listed = next((row for row in hosts if same_arithmetic(row, host)), None)
    print(f"host: {describe_host(host)}")
    print(f"in {hosts_file.name}: " + (f"the same arithmetic as {listed['name']!r} ({listed['result']})"
                                        if listed else "no host with the same arithmetic"))
    with tempfile.TemporaryDirectory(prefix="reproduction-") as work:
        workdir = Path(work)
        (workdir / "params.yaml").write_text(params_text)
        print(prepare_data(root, workdir, lock))
        results = [check_model(root, workdir, lock, model) for model in models]
        if record:
            host["one_epoch"] = one_epoch_fingerprint(root, workdir, models[0])
    failed = False
    for result in results:
        print("\n".join(result.lines))
    for result in results:
        if result.identical:
            verdict = "identical bytes"
        elif result.inside:
            verdict = "other bytes, every test metric inside the seed spread"
        else:
            verdict = "other bytes, a test metric OUTSIDE the seed spread"
            failed = True
        if not result.identical and listed and listed["result"] == "identical":
            verdict += f"; but {listed['name']!r}, with the same arithmetic, gave identical bytes"
            failed = True
        print(f"{result.model}: {verdict}")
    if record:
        record_host(hosts_file, hosts, record, host, results)
        print(f"recorded as {record!r} in {hosts_file}")
    return 1 if failed else 0


def committed(root: Path, path: str) -> str:
    """The file as the last commit has it."""
    shown = subprocess.run(["git", "-C", str(root), "show", f"HEAD:{path}"], capture_output=True, check=False)
    if shown.returncode != 0:
        raise PipelineError(f"{path} is not in the last commit of {root}; run this in a clone of the project")
    if len(shown.stdout) > 10 * TEXT_LIMIT:
        raise PipelineError(f"{path} in the last commit is over {10 * TEXT_LIMIT} bytes; it is not the project's")
    return shown.stdout.decode()


def stage_outputs(lock: dict[str, Any], stage: str) -> dict[str, str]:
    """path -> hash of each output dvc.lock records for `stage`."""
    try:
        return {out["path"]: out["md5"] for out in lock["stages"][stage]["outs"]}
    except (KeyError, TypeError):
        raise PipelineError(f"dvc.lock has no outputs for {stage}; run `dvc repro` and commit dvc.lock") from None


def output_hash(path: Path) -> str | None:
    """The hash DVC records: a file's MD5, or for a folder the MD5 of its listing plus ".dir"."""
    if path.is_file():
        return _md5(path)
    if not path.is_dir():
        return None
    files = sorted((file.relative_to(path).as_posix(), _md5(file)) for file in path.rglob("*") if file.is_file())
    listing = [{"md5": md5, "relpath": relpath} for relpath, md5 in files]
    return hashlib.md5(json.dumps(listing, sort_keys=True).encode()).hexdigest() + ".dir"


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def prepare_data(root: Path, workdir: Path, lock: dict[str, Any]) -> str:
    """data/processed in `workdir`: the checkout's if it matches dvc.lock, else made by the data stages."""
    processed = "data/processed"
    expected = stage_outputs(lock, "split")[processed]
    (workdir / "data").mkdir()
    if output_hash(root / processed) == expected:
        (workdir / processed).symlink_to(root / processed)
        return f"{processed}: identical (the checkout's)"
    lines = []
    for stage, command in (("download", ["stages.download", "--out", "data/raw"]),
                           ("normalize", ["stages.normalize", "--raw", "data/raw", "--out", "data/interim"]),
                           ("split", ["stages.split", "--interim", "data/interim", "--out", processed])):
        run_stage(root, workdir, command)
        lines += compare(workdir, stage_outputs(lock, stage))[0]
    return "\n".join(lines)


def check_model(root: Path, workdir: Path, lock: dict[str, Any], model: str) -> ModelResult:
    run_stage(root, workdir, ["stages.train", "--model", model, "--data", "data/processed",
                              "--out", f"models/{model}.keras", "--live", f"metrics/train/{model}",
                              "--timing", f"metrics/timing/{model}.json"])
    run_stage(root, workdir, ["stages.evaluate", "--model-file", f"models/{model}.keras", "--data", "data/processed",
                              "--metrics", f"metrics/test/{model}.json", "--details", f"metrics/details/{model}.json",
                              "--predictions", f"metrics/predictions/{model}.csv", "--figures",
                              f"metrics/figures/{model}"])
    lines, identical = [f"{model}:"], True
    for stage in (f"train@{model}", f"evaluate@{model}"):
        stage_lines, stage_identical = compare(workdir, stage_outputs(lock, stage))
        lines += [f"  {line}" for line in stage_lines]
        identical &= stage_identical
    metrics = [] if identical else compare_metrics(root, workdir, model)
    lines += [f"  {metric.describe()}" for metric in metrics]
    return ModelResult(model, lines, identical, metrics)


def one_epoch_fingerprint(root: Path, workdir: Path, model: str) -> str:
    """`model` trained for one epoch: a cheap fingerprint of a host's arithmetic for the table.
    Hosts whose one-epoch models agree may still part later; hosts whose ones differ have."""
    run_stage(root, workdir, ["stages.train", "--model", model, "--data", "data/processed", "--set", "epochs=1",
                              "--out", "one_epoch/model.keras", "--live", "one_epoch/live",
                              "--timing", "one_epoch/timing.json"])
    return f"{model}, MD5 {_md5(workdir / 'one_epoch' / 'model.keras')}"


def run_stage(root: Path, workdir: Path, arguments: list[str]) -> None:
    """One stage's command in `workdir`, with the project's code from `root`."""
    environment = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, "-m", *arguments], cwd=workdir, env=environment, capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise PipelineError(f"{arguments[0]} failed ({last}); run it by hand to see more")


def compare(workdir: Path, expected: dict[str, str]) -> tuple[list[str], bool]:
    """A line per output, "identical" or "differs", and whether all compared outputs are identical."""
    lines, identical = [], True
    for path, md5 in expected.items():
        skipped = next((why for prefix, why in NOT_COMPARED.items() if path.startswith(prefix)), None)
        if skipped:
            lines.append(f"{path}: not compared ({skipped})")
            continue
        same = output_hash(workdir / path) == md5
        identical &= same
        lines.append(f"{path}: {'identical' if same else 'differs'}")
    return lines, identical


def compare_metrics(root: Path, workdir: Path, model: str) -> list[Metric]:
    path = f"metrics/test/{model}.json"
    with written_by("evaluate stage", path):
        mine = parse_json(read_text(workdir / path, TEXT_LIMIT, "a metrics file"))
        theirs = parse_json(committed(root, path))
    spread = seed_spread(root, model)
    return [Metric(name, float(theirs[name]), float(mine[name]), spread.get(name)) for name in METRICS]


def seed_spread(root: Path, model: str) -> dict[str, float]:
    """Each test metric's standard deviation over the seeds of the defaults' cell of the study."""
    values: dict[str, list[float]] = {name: [] for name in METRICS}
    table = root / "sweeps" / f"{SPREAD_SWEEP}.tsv"
    for row in read_rows(table) if table.exists() else []:
        result = root / "sweeps" / SPREAD_SWEEP / point_name(row) / "metrics" / "test" / f"{model}.json"
        if technique(row) == SPREAD_TECHNIQUE and result.exists():
            with written_by("evaluate stage", result):
                metrics = parse_json(read_text(result, TEXT_LIMIT, "a metrics file"))
            for name in METRICS:
                values[name].append(float(metrics[name]))
    return {name: statistics.stdev(seeds) for name, seeds in values.items() if len(seeds) >= 2}


def describe_host(host: dict[str, Any]) -> str:
    arithmetic = host["arithmetic"]
    caches = arithmetic["eigen_cache_bytes"]
    eigen = "/".join(str(size) for size in caches) if caches else "unknown"
    return (f"{host['cpu']} (family/model {host['family_model']}), {host['isa']} (runs {arithmetic['isa']}), "
            f"{host['visible_cores']} visible cores, caches {host['caches']}; Eigen's cache sizes {eigen}; "
            f"Python {host['python']}, TensorFlow {arithmetic['tensorflow']} on {arithmetic['device']}; "
            f"threads {arithmetic['threads']}")


def read_hosts(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = parse_yaml(read_text(path, TEXT_LIMIT, "the host table"), path.name) or []
    if not isinstance(rows, list) or not all(isinstance(row, dict) and "name" in row for row in rows):
        raise PipelineError(f"{path} is not a list of hosts with a name each; restore it with git checkout")
    return rows


def record_host(path: Path, hosts: list[dict[str, Any]], name: str, host: dict[str, Any],
                results: list[ModelResult]) -> None:
    """Add (or replace) the row `name` in the host table."""
    if all(result.identical for result in results):
        outcome = "identical"
    else:
        outcome = "; ".join(f"{result.model} " + ("identical" if result.identical else ", ".join(
            f"{metric.name} {metric.here - metric.committed:+.6f}" for metric in result.metrics))
            for result in results)
    row = {"name": name, **host, "models": [result.model for result in results], "result": outcome}
    rows = [existing for existing in hosts if existing["name"] != name] + [row]
    with atomic_path(path) as tmp:
        tmp.write_text("# Hosts that ran `python -m reproduction.check`; reproduction/README.md explains the columns.\n"
                       + yaml.safe_dump(rows, sort_keys=False, allow_unicode=True, width=120))


def _cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", metavar="MODEL", help="models to retrain (default: all)")
    parser.add_argument("--record", metavar="NAME", help="add this host to reproduction/hosts.yaml under NAME")
    args = parser.parse_args()
    sys.exit(main(args.models, args.record))


if __name__ == "__main__":
    cli.run(_cli)
