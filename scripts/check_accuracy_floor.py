"""The regression gate: fail when a model's test accuracy is below its floor.

    python scripts/check_accuracy_floor.py [--floors .ci/accuracy_floor.yaml] [--metrics metrics/test]

Reads each model's `<metrics>/<model>.json` (written by the evaluate stage) for every model in
the floors file. Prints one line per model; exits 1 if any is below its floor or has no metrics.
"""

import argparse
import json
import sys
from pathlib import Path

import yaml


def check(floors: dict[str, float], metrics_dir: Path) -> list[str]:
    """One `error: ...` line per failing model; empty when all pass."""
    failures = []
    for model, floor in floors.items():
        path = metrics_dir / f"{model}.json"
        try:
            accuracy = json.loads(path.read_text())["accuracy"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            failures.append(f"error: {model}: no test accuracy in {path} ({type(exc).__name__}); run evaluate first")
            continue
        if accuracy < floor:
            failures.append(f"error: {model}: test accuracy {accuracy:.4f} is below its floor {floor} ({path})")
        else:
            print(f"ok: {model}: test accuracy {accuracy:.4f} >= {floor}")
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--floors", type=Path, default=Path(".ci/accuracy_floor.yaml"))
    parser.add_argument("--metrics", type=Path, default=Path("metrics/test"))
    args = parser.parse_args()
    failures = check(yaml.safe_load(args.floors.read_text()), args.metrics)
    for line in failures:
        print(line, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
