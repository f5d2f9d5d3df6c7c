"""Build small notebooks for runner tests (a parameters cell plus code cells)."""
from __future__ import annotations

from pathlib import Path

import nbformat


def make_notebook(path: Path, parameters: str, *cells: str, kernel: str = "workbench") -> Path:
    """Write a notebook with one ``parameters``-tagged cell followed by ``cells``."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": "workbench (.venv)",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    params = nbformat.v4.new_code_cell(parameters)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params] + [nbformat.v4.new_code_cell(c) for c in cells]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path
