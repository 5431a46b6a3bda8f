"""The Spectrum page's table of one checkpoint: RankMe, α-ReQ, the eigenvalues near 1 and the
C₊ = C² stationarity residual of each kind of feature, with readable headers and "—" where a
metric does not apply.

The counts are taken from the same arrays, with the same normalisation, as
:func:`explorer.readings.figures.spectrum_figure` plots them, so the table and the plot agree: the
backbone
features h have no natural scale (the spectral loss constrains f = clip(z), not h), so their
spectrum is divided by its largest eigenvalue λ₁ and "≥ 0.9" means "≥ 0.9·λ₁". The counts stored
in the analysis artifact (``metrics.backbone["n_above_0.9"]``) are of the raw backbone spectrum,
whose size depends on that arbitrary scale; they are not shown.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from explorer.rundir.records import NEAR_ONE, AnalysisRecord, FeatureMetrics, as_analysis

MISSING = "—"
#: The header of the C₊ = C² residual: a test of stationarity, not a distance to the optimum.
STATIONARITY = "C₊ = C² residual (stationarity)"
# row key -> (label, the array its eigenvalues come from, divided by λ₁?)
ROWS: dict[str, tuple[str, str, bool]] = {
    "projector": ("projector f (as the loss sees z)", "projector_eigs_mean", False),
    "backbone": ("backbone h (spectrum ÷ λ₁)", "backbone_eigs_mean", True),
    "cross": ("cross-view E[f(x) f(x⁺)ᵀ]", "cross_eigs_mean", False),
    "graph": ("graph estimate E[f fᵀ]", "graph_c_eigs", False),
}
THRESHOLDS = (0.5, NEAR_ONE)
COLUMNS = ("features", "RankMe", "α (α-ReQ)", "eigenvalues ≥ 0.5", f"eigenvalues ≥ {NEAR_ONE}",
           STATIONARITY)


def count_at_least(eigs: np.ndarray, threshold: float, *, relative: bool) -> int:
    """How many eigenvalues are ≥ ``threshold`` (times the largest when ``relative``).

    Args:
        eigs: (n,) eigenvalues, largest first.
    """
    eigs = np.asarray(eigs, dtype=np.float64)
    if relative:
        if not len(eigs) or eigs[0] <= 0:
            return 0
        eigs = eigs / eigs[0]
    return int(np.sum(eigs >= threshold))


def _number(value: Any, digits: int) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    return f"{value:.{digits}f}"


def spectrum_table(artifact: AnalysisRecord | Mapping[str, Any]) -> list[dict[str, str]]:
    """One row per kind of feature, every cell text (``MISSING`` where it does not apply).

    Args:
        artifact: one checkpoint's analysis, any format (its metrics and arrays): an
            :class:`~explorer.rundir.records.AnalysisRecord` or the dict
            :func:`explorer.rundir.artifacts.load_analysis` returns.
    """
    record = as_analysis(artifact)
    metrics, arrays = record.metrics, record.arrays
    rows = []
    for key, (label, array, relative) in ROWS.items():
        if key not in metrics and array not in arrays:
            continue
        values = metrics.get(key, FeatureMetrics())
        counts = []
        for threshold in THRESHOLDS:
            if array in arrays:
                counts.append(str(count_at_least(arrays[array], threshold, relative=relative)))
            elif not relative and threshold in values.above:  # no arrays: the record's
                counts.append(str(values.above[threshold]))
            else:
                counts.append(MISSING)
        cells = [label, _number(values.rankme, 1), _number(values.alpha_req, 2),
                 *counts, _number(values.stationarity_residual, 3)]
        rows.append(dict(zip(COLUMNS, cells, strict=True)))
    return rows
