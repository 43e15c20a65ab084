"""Data is never code: hostile values in params.yaml, `-S`, `--config` and sweep tables, run for real.

Each value tries to run `touch <canary>` the ways a shell allows: `$(...)`, backticks,
`;`, double quotes, spaces and newlines. A test passes when no canary file exists after
the real `dvc` or `snakemake` run, and the run said why it refused.
"""

import copy
import shutil
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import REPO, copy_project, make_project, run

pytestmark = pytest.mark.e2e


def hostile(canary: str, space: str = " ") -> list[str]:
    """Text that runs `touch <canary>` if it ever reaches a shell unquoted (or badly quoted).

    `space="$IFS$9"` gives the same commands without a space, as a URL must be written.
    """
    return [f"$(touch{space}{canary}1)", f"`touch{space}{canary}2`", f"a;touch{space}{canary}3;b",
            f'a";touch{space}{canary}4;"b', f"a b;touch {canary}5", f"a\ntouch {canary}6"]


def canaries(root: Path, canary: str) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob(f"{canary}*"))


@pytest.fixture(scope="module")
def data_ready(tmp_path_factory, tiny_mirror) -> Path:
    """A tiny project whose data stages have run under DVC: what a model name could reach next is its train cmd."""
    root = make_project(tmp_path_factory.mktemp("injection") / "project", tiny_mirror)
    run(root, "dvc", "repro", "split")
    return root


def add_models(root: Path, names: list[str]) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["models"] = {name: copy.deepcopy(params["models"]["conv1"]) for name in names}  # else YAML aliases
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_dvc_never_runs_a_model_name(data_ready, tmp_path):
    # DVC pastes each model name into the train and evaluate commands before any project code
    # runs; dvc.yaml single-quotes it, so the stage gets it as one word and refuses it.
    root = copy_project(data_ready, tmp_path / "project")
    names = hostile("pwned")
    add_models(root, names)
    result = run(root, "dvc", "repro", "--keep-going", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert canaries(root, "pwned") == [], output
    refusals = output.count("does not match '^[a-z][a-z0-9_]*$'")
    assert refusals >= len(names) - 1, output  # the name with a newline fails in the shell, as a syntax error
    assert not list(root.glob("models/*.keras"))


def test_dvc_exp_run_values_stay_data(data_ready, tmp_path):
    # -S values go into params.yaml, never into a command line: a mirror URL that the schema
    # accepts is tried as a URL, and the download falls back to the good mirror.
    root = copy_project(data_ready, tmp_path / "project")
    good = yaml.safe_load((root / "params.yaml").read_text())["data"]["mirrors"][-1]
    bad = [f"http://127.0.0.1:1/{text}/" for text in hostile("pwned", space="$IFS$9")[:4]]
    mirrors = ",".join(repr(url) for url in [*bad, good])
    run(root, "dvc", "exp", "run", "-S", f"data.mirrors=[{mirrors}]", "download")
    assert canaries(root, "pwned") == []
    assert (root / "data" / "raw" / "train-images-idx3-ubyte").exists()


def test_snakemake_refuses_a_hostile_model_name_before_any_job(data_ready, tmp_path):
    root = copy_project(data_ready, tmp_path / "project")
    add_models(root, hostile("pwned")[:1])
    result = run(root, "snakemake", "-c1", check=False)
    assert result.returncode != 0
    assert "error: invalid params.yaml: models: '$(touch pwned1)' does not match" in result.stderr
    assert canaries(root, "pwned") == []


def test_snakemake_quotes_values_it_passes_to_commands(data_ready, tmp_path):
    # `--config` values reach the download job's command line as its --set pins; quoted, they
    # stay data: the stage tries the bad mirrors and takes the files from the good one.
    root = copy_project(data_ready, tmp_path / "project")
    good = yaml.safe_load((root / "params.yaml").read_text())["data"]["mirrors"][-1]
    mirrors = [f"http://127.0.0.1:1/{text}/" for text in hostile("pwned", space="$IFS$9")[:4]] + [good]
    shutil.rmtree(root / "data")
    run(root, "snakemake", "-c1", "data/raw", "--config", f"data={{'mirrors': {mirrors!r}}}")
    assert canaries(root, "pwned") == []
    assert (root / "data" / "raw" / "train-images-idx3-ubyte").exists()


@pytest.mark.parametrize("column, value", [
    ("data.files.train_images.name", "$(touch pwned1).gz"),
    ("data.files.train_images.name", "`touch pwned2`.gz"),
    ("optimizer", "adam;touch pwned3"),
    ("data.mirrors", "['http://127.0.0.1:1/$(touch pwned4)/']"),
])
def test_snakemake_refuses_a_sweep_value_that_would_name_a_point(data_ready, tmp_path, column, value):
    # A point's name is made of its values and becomes a folder and a wildcard: a value that
    # cannot be part of a name stops the workflow before any job, naming the line.
    root = copy_project(data_ready, tmp_path / "project")
    (root / "sweeps").mkdir()
    (root / "sweeps" / "hostile.tsv").write_text(f"{column}\n{value}\n")
    result = run(root, "snakemake", "-c1", "sweeps", check=False)
    assert result.returncode != 0
    assert "error: sweeps/hostile.tsv line 2: a value holds a character that cannot be part of the point's name" \
        in result.stderr
    assert canaries(root, "pwned") == []


def test_snakemake_refuses_a_hostile_sweep_file_name(data_ready, tmp_path):
    root = copy_project(data_ready, tmp_path / "project")
    (root / "sweeps").mkdir()
    (root / "sweeps" / "$(touch pwned1);x.tsv").write_text("lr\n0.001\n")
    result = run(root, "snakemake", "-c1", "sweeps", check=False)
    assert result.returncode != 0
    assert "a sweep's name may hold only" in result.stderr
    assert canaries(root, "pwned") == []


def test_every_field_of_every_snakemake_shell_command_is_quoted():
    # The rule behind the tests above, for rules yet to be written: `{field:q}` everywhere.
    import re

    commands = re.findall(r"shell:\n((?:\s+\".*\"\n)+)", (REPO / "Snakefile").read_text())
    fields = [field for command in commands for field in re.findall(r"\{([^}]*)\}", command)]
    assert len(commands) >= 8 and fields
    assert [field for field in fields if not field.endswith(":q")] == []
