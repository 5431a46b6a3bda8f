"""The Spectrum page's table, checked with NumPy against the plotted spectra of a real artifact."""

from __future__ import annotations

import numpy as np

from explorer.readings.figures import NEAR_ONE, spectrum_figure
from explorer.readings.spectrum_table import COLUMNS, MISSING, STATIONARITY, spectrum_table
from explorer.rundir.artifacts import load_analysis
from explorer.rundir.demo import DEMO_RUNS
from explorer.rundir.run import Run


def _demo_artifact() -> dict:
    run = Run(DEMO_RUNS / "shapes-spectral")
    return load_analysis(run, max(int(p.stem.split("-")[1]) for p in
                                  (run.path / "analysis").glob("epoch-*.json")))


def test_the_backbone_count_is_of_the_plotted_spectrum() -> None:
    artifact = _demo_artifact()
    eigs = artifact["arrays"]["backbone_eigs_mean"]
    rows = {r["features"].split()[0]: r for r in spectrum_table(artifact)}
    expected = int(np.sum(eigs / eigs[0] >= NEAR_ONE))  # NumPy on the artifact's eigenvalues
    assert rows["backbone"][f"eigenvalues ≥ {NEAR_ONE}"] == str(expected)
    plotted = next(t for t in spectrum_figure(artifact).data if "backbone" in t.name)
    assert int(np.sum(np.asarray(plotted.y) >= NEAR_ONE)) == expected  # the plot agrees
    graph = artifact["arrays"]["graph_c_eigs"]
    starred = next(t for t in spectrum_figure(artifact).data if t.name.startswith("estimate ≥"))
    assert rows["graph"][f"eigenvalues ≥ {NEAR_ONE}"] == str(
        int(np.sum(graph >= NEAR_ONE))) == str(len(starred.y))


def test_every_cell_is_readable() -> None:
    artifact = _demo_artifact()
    rows = spectrum_table(artifact)
    assert len(rows) == 4
    for row in rows:
        assert tuple(row) == COLUMNS
        assert all("_" not in header for header in row)  # no raw keys
        assert all(isinstance(v, str) and v not in ("None", "nan", "") for v in row.values())
    cross = next(r for r in rows if r["features"].startswith("cross"))
    assert cross["RankMe"] == MISSING and cross[STATIONARITY] == MISSING  # not measured there
    graph = next(r for r in rows if r["features"].startswith("graph"))
    gap = artifact["metrics"]["graph"]["stationarity_residual"]
    assert graph[STATIONARITY] == f"{gap:.3f}"


def test_a_metric_without_a_value_reads_as_a_dash() -> None:
    artifact = {"metrics": {"projector": {"rankme": 3.0, "alpha_req": float("nan"),
                                          "n_above_0.5": 2, "n_above_0.9": 1}},
                "arrays": {}}
    (row,) = spectrum_table(artifact)
    assert row["RankMe"] == "3.0" and row["α (α-ReQ)"] == MISSING
    assert row["eigenvalues ≥ 0.5"] == "2" and row[f"eigenvalues ≥ {NEAR_ONE}"] == "1"
