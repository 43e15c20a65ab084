"""Stage `cv_report`: one table of every model's cross-validated accuracy.

    python -m stages.cv_report --cv metrics/cv --out metrics/cv/results.md

Reads `<cv>/<model>.json` (from the cv_train stage) for every model of params.yaml, and writes
a Markdown table: the held-out accuracy, mean ± sample standard deviation over the
folds, and each fold's.
"""

from pathlib import Path

from stages.common import cli
from stages.common.errors import written_by
from stages.common.files import atomic_path
from stages.common.inputs import TEXT_LIMIT, parse_json, read_text


def main(models: list[str], cv_dir: Path, out: Path) -> None:
    lines = ["| model | folds | accuracy, mean ± sd | each fold |", "|---|---|---|---|"]
    for model in models:
        path = cv_dir / f"{model}.json"
        with written_by("cv_train stage", path):
            result = parse_json(read_text(path, TEXT_LIMIT, "a metrics file"))
            folds = " / ".join(f"{score['accuracy']:.4f}" for score in result["per_fold"])
            lines.append(f"| {model} | {result['folds']} | {result['accuracy_mean']:.4f} ± "
                         f"{result['accuracy_sd']:.4f} | {folds} |")
    with atomic_path(out) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


def _cli() -> None:
    parser = cli.stage_parser(__doc__)
    parser.add_argument("--cv", type=Path, required=True, help="the folder the cv_train stage wrote")
    parser.add_argument("--out", type=Path, required=True, help="Markdown table to write")
    args = parser.parse_args()
    main(list(cli.params_from(args)["models"]), args.cv, args.out)


if __name__ == "__main__":
    cli.run(_cli)
