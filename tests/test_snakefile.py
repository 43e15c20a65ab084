"""The Snakefile's own reading of params.yaml and the sweep tables, through the real `snakemake -n`:
every bad input stops the workflow before any job with the stages' one `error:` line."""

import codecs
import os
import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import PROJECT_FILES, REPO
from tests.e2e.conftest import run as run_command

PARAMS_TEXT = (REPO / "params.yaml").read_text()
DEEP = "[" * 20_000 + "]" * 20_000
PROFILE_NOTICE = "Using workflow specific profile"  # Snakemake's own, before it reads the Snakefile


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("snakefile")
    for name in PROJECT_FILES:
        source = REPO / name
        copy = shutil.copytree if source.is_dir() else shutil.copy2
        copy(source, root / name, **({"ignore": shutil.ignore_patterns("__pycache__")} if source.is_dir() else {}))
    return root


@pytest.fixture
def project(pristine, tmp_path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(pristine, root, symlinks=True)
    (root / "sweeps").mkdir()
    return root


def snakemake_n(root: Path, *args: str) -> str:
    """The one line stderr holds, asserting the exit status and that no job ran and no traceback came."""
    result = run_command(root, "snakemake", "-n", "-c1", *args, check=False)
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith(PROFILE_NOTICE)]
    assert result.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
    return lines[0]


def big_table(path: Path) -> None:
    path.write_text("lr\n" + "0.001\n" * 400_000)  # 2.4 MB: the probe's 46 MB is refused the same way


CASES = {
    # Each of these ended in `InputError`, `RecursionError` or `UnicodeDecodeError in file "Snakefile"` and a traceback.
    "oversized-table": (lambda root: big_table(root / "sweeps" / "big.tsv"),
                        "over the 1 MiB limit for a sweep table"),
    "fifo-table": (lambda root: os.mkfifo(root / "sweeps" / "pipe.tsv"),
                   "sweeps/pipe.tsv is a named pipe (FIFO), not a file; give the path of a sweep table"),
    "deep-table-value": (lambda root: (root / "sweeps" / "deep.tsv").write_text(f"lr\n{DEEP}\n"),
                         "sweeps/deep.tsv line 2, column 'lr' nests deeper than 32 levels"),
    "duplicate-column": (lambda root: (root / "sweeps" / "dup.tsv").write_text("lr\tlr\n0.1\t0.2\n"),
                         "sweeps/dup.tsv line 1 names column 'lr' twice; keep one of them"),
    "bad-column": (lambda root: (root / "sweeps" / "bad.tsv").write_text("learning rate\n0.1\n"),
                   "column 'learning rate' is not a param key"),
    "deep-params": (lambda root: (root / "params.yaml").write_text(PARAMS_TEXT.replace("\nlr: ", f"\nlr: {DEEP} #", 1)),
                    "params.yaml nests deeper than 32 levels"),
    "utf16-params": (lambda root: (root / "params.yaml").write_bytes(PARAMS_TEXT.encode("utf-16")),
                     "params.yaml is not UTF-8 text (it starts with a UTF-16 byte-order mark); save it as UTF-8"),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_every_bad_input_gives_the_one_error_line(project, case):
    make, expected = case
    make(project)
    assert expected in snakemake_n(project)


def test_a_table_with_a_utf8_byte_order_mark_is_read(project):
    # The mark was read as part of the first column's name and blamed on "a value".
    (project / "sweeps" / "bom.tsv").write_bytes(codecs.BOM_UTF8 + b"lr\n0.001\n")
    result = run_command(project, "snakemake", "-n", "-c1", "sweeps", check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "sweeps/bom/lr~0.001/" in result.stdout + result.stderr


@pytest.fixture
def dvc_project(tmp_path) -> Path:
    """A tiny project in a git+DVC repo, its mirror a local folder (download is its only quick job)."""
    from tests.e2e.conftest import make_project
    from tests.tiny_data import files_spec, idx_bytes, tiny_arrays, write_mirror

    raw = idx_bytes(tiny_arrays(n_train=20, n_test=10))
    mirror = write_mirror(tmp_path / "mirror", raw).as_uri() + "/"
    return make_project(tmp_path / "project", (mirror, files_spec(raw)))


@pytest.mark.e2e
def test_snakemake_refuses_to_start_while_dvc_runs(dvc_project):
    # Both at once failed, and deleted committed metrics. DVC's lock, taken as DVC takes it.
    from dvc.lock import make_lock

    with make_lock(str(dvc_project / ".dvc" / "tmp" / "lock")):
        result = run_command(dvc_project, "snakemake", "-c1", "data/raw", check=False)
    assert result.returncode == 1, result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1] == (
        "error: DVC is running in this checkout (it holds .dvc/tmp/lock), and both tools at once delete each "
        "other's outputs; wait for it to finish, then run Snakemake again")
    assert not (dvc_project / "data").exists()
    assert run_command(dvc_project, "snakemake", "-c1", "data/raw", check=False).returncode == 0  # once DVC is done


@pytest.mark.e2e
def test_dvc_refuses_to_start_while_snakemake_runs(dvc_project):
    # A download that hangs on a mirror which never answers keeps Snakemake's run going.
    import socket
    import subprocess

    import yaml

    from tests.e2e.conftest import ENV

    with socket.create_server(("127.0.0.1", 0)) as mirror:
        params = yaml.safe_load((dvc_project / "params.yaml").read_text())
        params["data"].update(mirrors=[f"http://127.0.0.1:{mirror.getsockname()[1]}/"], timeout_s=600)
        (dvc_project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        with subprocess.Popen(["snakemake", "-c1", "data/raw"], cwd=dvc_project, env=ENV, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) as smk:
            try:
                mirror.settimeout(60)
                connection, _ = mirror.accept()  # the job runs
                with connection:  # before, DVC ran the download too, and hung on the same mirror
                    refused = subprocess.run(["dvc", "repro", "download"], cwd=dvc_project, env=ENV,
                                             capture_output=True, text=True, timeout=60)
            finally:
                smk.kill()
    assert refused.returncode != 0 and "Unable to acquire lock" in refused.stderr, refused.stderr
    assert not (dvc_project / "dvc.lock").exists()  # DVC ran nothing
