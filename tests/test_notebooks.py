"""The teaching notebooks in notebooks/: committed clean, and every cell runs on small settings.

Each notebook is executed top to bottom by a Jupyter kernel running this interpreter (so the same
environment and the same conv1dx), in a temporary working directory, with
`CONV1DX_NOTEBOOK_EPOCHS=2` and a temporary `CONV1DX_DATA_DIR`. A cell that raises (the notebooks'
own asserts included) fails the test with the cell's traceback.
"""

import json
import sys
from pathlib import Path

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
EXPECTED = {"01_conv1d_by_hand.ipynb", "02_train_a_classifier.ipynb",
            "03_models_from_the_articles.ipynb"}
CELL_TIMEOUT_S = 300


def test_the_tutorial_notebooks_are_present():
    assert EXPECTED <= {path.name for path in NOTEBOOKS}, f"missing from {NOTEBOOK_DIR}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_is_committed_without_outputs(path):
    notebook = json.loads(path.read_text())
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    first = notebook["cells"][0]
    intro = "".join(first["source"]).lower()
    assert first["cell_type"] == "markdown" and "teaches" in intro and "runs in about" in intro, (
        f"{path.name} must open with a markdown cell saying what it teaches and how long it runs")
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "code":
            continue
        assert cell["outputs"] == [] and cell["execution_count"] is None, (
            f"{path.name} cell {index} was committed with outputs; clear them "
            "(see notebooks/README.md)")


def _python3_kernel_of_this_interpreter(jupyter_dir: Path) -> None:
    """A `python3` kernelspec that runs sys.executable; JUPYTER_PATH puts it before any other."""
    spec_dir = jupyter_dir / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (conv1dx tests)", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs(path, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat", reason="pip install '.[dev]' to run the notebooks")
    nbclient = pytest.importorskip("nbclient", reason="pip install '.[dev]' to run the notebooks")
    pytest.importorskip("ipykernel", reason="pip install '.[dev]' to run the notebooks")

    _python3_kernel_of_this_interpreter(tmp_path / "jupyter")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "jupyter" / "runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("CONV1DX_NOTEBOOK_EPOCHS", "2")
    monkeypatch.setenv("CONV1DX_DATA_DIR", str(tmp_path / "data"))
    work_dir = tmp_path / "work"
    work_dir.mkdir()

    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, kernel_name="python3", timeout=CELL_TIMEOUT_S,
                                     extra_arguments=["--colors=nocolor"],  # plain tracebacks
                                     resources={"metadata": {"path": str(work_dir)}})
    # Raises CellExecutionError, with the failing cell and its traceback, on any error.
    client.execute()
