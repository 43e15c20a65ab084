"""notebooks/results.ipynb, executed top to bottom with nbclient on a tiny project: every cell runs
without an error, reads the committed run and an experiment through dvc.api, and classifies test
images with a model that `dvc pull` restores when it is missing."""

import shutil

import nbclient
import nbformat
import pytest

from tests.e2e.conftest import REPO, copy_project, run

pytestmark = pytest.mark.e2e

NOTEBOOK = REPO / "notebooks" / "results.ipynb"


def outputs_text(notebook) -> str:
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", ""))
            texts.extend(str(value) for key, value in output.get("data", {}).items() if key.startswith("text/"))
    return "\n".join(texts)


def test_notebook_runs_on_a_tiny_project_with_an_experiment(reproduced, tmp_path):
    root = copy_project(reproduced[0], tmp_path / "project")
    run(root, "dvc", "exp", "run", "-n", "narrow", "-S", "models.conv1.dense_units=16")
    (root / "models" / "conv2.keras").unlink()  # the notebook must get it back
    (root / "notebooks").mkdir()
    shutil.copy2(NOTEBOOK, root / "notebooks")
    notebook = nbformat.read(root / "notebooks" / "results.ipynb", as_version=4)
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(root / "notebooks")}}).execute()
    text = outputs_text(notebook)
    assert "narrow" in text and "models.conv1.dense_units" in text  # the experiment's row and its param
    assert "models/conv2.keras: fetched by dvc pull" in text  # from the DVC cache: this project has no remote
    assert (root / "models" / "conv2.keras").exists()
    assert "of 12 right" in text
    assert "no learning-rate study" in text  # the tiny project has none; the cell says so
    images = sum("image/png" in output.get("data", {}) for cell in notebook.cells for output in cell.get("outputs", []))
    assert images == 4  # curves, confusion matrix, misclassified, classified test images
