"""Every notebook's parameters cell: one cell, flat literals, a help comment papermill shows."""
from __future__ import annotations

import ast
import json
import nbformat
import pytest

from workbench.paths import NOTEBOOKS_DIR

NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))


def _parameters_cells(path):
    nb = nbformat.read(path, as_version=4)
    return [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]


def test_the_suite_is_there():
    names = {p.stem for p in NOTEBOOKS}
    assert {"01_data", "02_train", "04_backtest", "05_price_model"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_one_parameters_cell_of_flat_literals_with_help(path):
    cells = _parameters_cells(path)
    assert len(cells) == 1
    for line in cells[0].source.splitlines():
        code, _, help_text = line.partition("#")
        target, _, value = code.partition("=")
        assert help_text.strip(), f"{path.name}: no help comment in {line!r}"
        assert "=" not in help_text, f"{path.name}: papermill cannot parse '=' in {line!r}"
        ast.literal_eval(value.strip())  # a flat literal, nothing computed
        assert target.split(":")[0].strip().isidentifier()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_papermill_help_notebook_describes_every_parameter(path):
    from click.testing import CliRunner
    from papermill.cli import papermill

    out = CliRunner().invoke(papermill, ["--help-notebook", str(path)])
    assert out.exit_code == 0, out.output
    assert "Unable to parse" not in out.output
    for line in _parameters_cells(path)[0].source.splitlines():
        name = line.split("=")[0].split(":")[0].strip()
        help_text = line.partition("#")[2].strip()
        assert f"  {name}: " in out.output, f"{name} missing from --help-notebook"
        assert help_text in out.output.replace("\n" + " " * 34, " ")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_cell_has_an_id(path):
    """nbformat 4.5 cells carry ids; a missing one makes every reader of the notebook (Voila's
    signing, papermill) warn "Cell is missing an id field"."""
    raw = json.loads(path.read_text())
    assert (raw["nbformat"], raw["nbformat_minor"]) >= (4, 5)
    missing = [i for i, cell in enumerate(raw["cells"]) if not cell.get("id")]
    assert not missing, f"{path.name}: cells {missing} have no id"
