"""The tables behind the dashboard's CSV downloads: eigenvalues per checkpoint, probe per class."""

from __future__ import annotations

import csv
import io

import numpy as np

from explorer.readings.run_tables import (
    GAMMA,
    REACHABLE,
    csv_text,
    eigenvalue_table,
    epoch_column,
    per_class_table,
)
from explorer.rundir.artifacts import load_all_analyses
from explorer.rundir.demo import DEMO_RUNS
from explorer.rundir.run import Run


def test_the_eigenvalues_of_every_checkpoint_sit_beside_the_graphs_gammas() -> None:
    by_epoch, errors = load_all_analyses(Run(DEMO_RUNS / "shapes-spectral"))
    assert not errors
    rows = eigenvalue_table(by_epoch)
    latest = by_epoch[max(by_epoch)]["arrays"]
    assert [r["i"] for r in rows] == list(range(1, len(latest["exact_gammas"]) + 1))
    assert [r[GAMMA] for r in rows] == latest["exact_gammas"].tolist()
    for epoch, artifact in by_epoch.items():
        assert [r[epoch_column(epoch)] for r in rows] == artifact["arrays"]["exact_c_eigs"].tolist()
    back = list(csv.DictReader(io.StringIO(csv_text(rows))))  # full precision, same numbers
    assert [float(r[epoch_column(max(by_epoch))]) for r in back] == latest["exact_c_eigs"].tolist()
    exact = by_epoch[max(by_epoch)]["exact"]
    assert exact["ball_binds"]  # μ = 30 cuts the optimum off: its reachable eigenvalues too
    assert list(back[0]) == ["i", GAMMA, *(epoch_column(e) for e in sorted(by_epoch)), REACHABLE]
    assert [r[REACHABLE] for r in rows] == exact["reachable_c_eigs"]


def test_no_exact_arrays_no_table() -> None:
    artifact = {"arrays": {"graph_c_eigs": np.ones(3)}}
    assert eigenvalue_table({1: artifact}) == [] and csv_text([]) == ""


def test_the_per_class_table_has_a_row_per_class_in_percent() -> None:
    rows = per_class_table(["circle", "ring"], {"trained linear": [0.5, 0.25], "raw knn": [1, 0]})
    assert rows == [{"class": "circle", "trained linear": 50.0, "raw knn": 100.0},
                    {"class": "ring", "trained linear": 25.0, "raw knn": 0.0}]
    assert csv_text(rows).splitlines()[0] == "class,trained linear,raw knn"
