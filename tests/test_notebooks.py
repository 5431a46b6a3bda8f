"""The tutorial notebooks: sources and committed notebooks in sync; each runs in a real kernel.

Each ``notebooks/NN_name.py`` (jupytext percent format) is the reviewable source of
``NN_name.ipynb``, which is committed with outputs (``notebooks/build_notebooks.py`` makes it).
Execution uses fast mode (``EXPLORER_FAST=1``): every cell runs, on less data.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jupytext
import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
sys.path.insert(0, str(NOTEBOOKS))
import build_notebooks  # noqa: E402

SOURCES = build_notebooks.sources()


def test_every_notebook_has_a_source() -> None:
    assert [p.stem for p in SOURCES] == sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    assert len(SOURCES) >= 3


def _cells(notebook: nbformat.NotebookNode) -> list[tuple[str, str]]:
    return [(cell.cell_type, cell.source.strip()) for cell in notebook.cells]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_source_and_notebook_in_sync(source: Path) -> None:
    committed = source.with_suffix(".ipynb")
    assert committed.exists(), f"run: .venv/bin/python notebooks/build_notebooks.py {source.stem}"
    from_source = jupytext.read(source)
    from_notebook = jupytext.read(committed)
    assert _cells(from_source) == _cells(from_notebook), (
        f"{committed.name} is out of date; run .venv/bin/python notebooks/build_notebooks.py "
        f"{source.stem}"
    )
    code = [c for c in from_notebook.cells if c.cell_type == "code"]
    assert all(c.get("outputs") is not None for c in code)
    assert any(c.outputs for c in code), f"{committed.name} was committed without outputs"
    errors = [o for c in code for o in c.outputs if o.get("output_type") == "error"]
    assert not errors, f"{committed.name} was committed with an error output"


@pytest.mark.slow
@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_runs_in_fast_mode(source: Path) -> None:
    notebook = build_notebooks.execute(source, fast=True, timeout=300)  # raises on a cell error
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code and all(c.execution_count for c in code)
