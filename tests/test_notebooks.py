"""The notebooks run top to bottom (on a few photos) with the installed package."""

import nbformat
import pytest
from conftest import ROOT
from nbclient import NotebookClient

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_notebooks_are_stored_without_outputs():
    assert {p.name for p in NOTEBOOKS} >= {"inference_demo.ipynb", "dataset_explorer.ipynb"}
    for path in NOTEBOOKS:
        cells = nbformat.read(path, as_version=4).cells
        assert all(not c.get("outputs") and not c.get("execution_count") for c in cells if c.cell_type == "code"), path


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, ccp_root, monkeypatch):
    monkeypatch.setenv("PARSING_CCP_ROOT", str(ccp_root))
    monkeypatch.setenv("PARSING_NOTEBOOK_PHOTOS", "2")
    monkeypatch.setenv("PARSING_NOTEBOOK_LIMIT", "60")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    book = nbformat.read(path, as_version=4)
    NotebookClient(
        book, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    errors = [o for c in book.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    if path.stem == "inference_demo":
        text = "".join(o.get("text", "") for c in book.cells for o in c.get("outputs", []))
        assert "→ garments:" in text
