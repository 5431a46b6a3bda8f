"""Regenerate the tutorial notebooks from their jupytext sources, executed, with outputs.

    .venv/bin/python notebooks/build_notebooks.py [NAME ...]   # default: every NN_*.py

Each ``notebooks/NN_name.py`` (jupytext percent format, the reviewable source) is converted to
``NN_name.ipynb`` and executed top to bottom in a Jupyter kernel at full size (``EXPLORER_FAST``
is removed from the environment), so the committed notebooks carry real outputs.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
#: A full-size cell may train three runs (04_training: about 20 minutes on two busy CPU cores).
CELL_TIMEOUT_S = 3600


def sources() -> list[Path]:
    """The notebook sources, in reading order."""
    return sorted(HERE.glob("[0-9][0-9]_*.py"))


def execute(source: Path, *, fast: bool = False, timeout: int = 600) -> nbformat.NotebookNode:
    """Convert ``source`` to a notebook and run it in a fresh ``python3`` kernel."""
    notebook = jupytext.read(source)
    previous = os.environ.pop("EXPLORER_FAST", None)
    if fast:
        os.environ["EXPLORER_FAST"] = "1"
    try:
        client = NotebookClient(
            notebook,
            timeout=timeout,
            kernel_name="python3",
            resources={"metadata": {"path": str(source.parent)}},
        )
        client.execute()
    finally:
        os.environ.pop("EXPLORER_FAST", None)
        if previous is not None:
            os.environ["EXPLORER_FAST"] = previous
    return notebook


def main(names: list[str]) -> None:
    chosen = [HERE / f"{n.removesuffix('.py')}.py" for n in names] if names else sources()
    for source in chosen:
        started = time.perf_counter()
        notebook = execute(source, timeout=CELL_TIMEOUT_S)
        nbformat.write(notebook, source.with_suffix(".ipynb"))
        print(f"{source.with_suffix('.ipynb').name}: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
