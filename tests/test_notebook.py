"""The Colab notebook runs top to bottom on a CPU-only machine with a tiny config."""

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def test_colab_notebook_executes_on_cpu(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXSYM_NOTEBOOK_TINY", "1")
    monkeypatch.setenv("JAXSYM_NOTEBOOK_OUT", str(tmp_path / "out"))
    nb = nbformat.read(ROOT / "notebooks" / "colab.ipynb", as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert (tmp_path / "out" / "report.md").exists()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert os.environ["JAXSYM_NOTEBOOK_TINY"] == "1"
