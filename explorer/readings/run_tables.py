"""Tables of a run's numbers that the dashboard plots, for reading and for download as CSV.

- :func:`eigenvalue_table`: the eigenvalues of E_w[f fᵀ] over every node of the exact graph at
  each analysed checkpoint, beside the graph's γᵢ (the eigenvalues they reach at the optimum);
- :func:`per_class_table`: probe accuracy per class, one column per probe;
- :func:`csv_text`: any such table as CSV, numbers at full precision.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from explorer.rundir.records import AnalysisRecord, as_analysis

GAMMA = "γᵢ (graph)"
REACHABLE = "reachable optimum (ball)"


def epoch_column(epoch: int) -> str:
    return f"epoch {epoch}"


def eigenvalue_table(
    artifacts: Mapping[int, AnalysisRecord | Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """One row per index i (largest first): ``i``, the graph's γᵢ, the eigenvalue i of
    E_w[f fᵀ] at each checkpoint that has exact arrays (``epoch N``) and, when the ball cuts
    the optimum off at the latest one, the reachable optimum's eigenvalue i. Empty when no
    checkpoint was scored on an exact graph (only ``shapes`` runs are).

    Args:
        artifacts: each checkpoint's analysis with its arrays, by epoch (typed, or the dicts
            :func:`explorer.rundir.artifacts.load_analysis` returns).
    """
    records = {e: as_analysis(a) for e, a in artifacts.items()}
    epochs = [e for e in sorted(records) if "exact_c_eigs" in records[e].arrays]
    if not epochs:
        return []
    latest = records[epochs[-1]]
    columns: dict[str, np.ndarray] = {GAMMA: np.asarray(latest.arrays["exact_gammas"])}
    for epoch in epochs:
        columns[epoch_column(epoch)] = np.asarray(records[epoch].arrays["exact_c_eigs"])
    exact = latest.exact
    if exact is not None and exact.ball_binds and exact.reachable_c_eigs:
        columns[REACHABLE] = np.asarray(exact.reachable_c_eigs, dtype=np.float64)
    size = max(len(values) for values in columns.values())
    return [
        {"i": i + 1, **{name: float(values[i]) if i < len(values) else None
                        for name, values in columns.items()}}
        for i in range(size)
    ]


def per_class_table(
    classes: Sequence[str], series: Mapping[str, Sequence[float]]
) -> list[dict[str, Any]]:
    """One row per class: its accuracy (%) under each probe of ``series`` (name -> per-class
    accuracy in [0, 1], in ``classes`` order)."""
    return [{"class": name, **{label: 100 * float(values[c]) for label, values in series.items()}}
            for c, name in enumerate(classes)]


def csv_text(rows: Sequence[Mapping[str, Any]]) -> str:
    """``rows`` as CSV with a header line (the first row's keys); a missing cell is empty."""
    if not rows:
        return ""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
