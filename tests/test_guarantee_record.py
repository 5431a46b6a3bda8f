"""The stored guarantee read as a type: older records (the least-squares head's error only) stay
readable and say what they hold; the proven bound is recomputed from α and γ_{k+1}."""

from __future__ import annotations

import json
import math

import pytest

from explorer.rundir.guarantee_record import BEST_HEAD, ErrorRange, read_guarantee
from tests.conftest import ROOT

#: A record as the project wrote it before the bracket (the shipped sweep's class_change_p = 0.9
#: run, epoch 360), committed as a fixture.
OLDER = ROOT / "tests" / "fixtures" / "guarantee_least_squares.json"


def test_an_older_record_reads_as_a_least_squares_upper_bound() -> None:
    stored = json.loads(OLDER.read_text())
    g = read_guarantee(stored)
    assert not g.bracketed
    assert g.network.upper == stored["error"] and g.network.lower is None
    assert g.network.head == "least squares" and not g.network.exact
    assert g.network.text().startswith("≤ ")
    assert "older analysis" in g.network.lower_method
    # the bound is the proven 8α/λ + 2α from the stored α and γ_{k+1}, not the stored old form
    lam = 1 - stored["gamma_k1"]
    assert g.bound == pytest.approx(8 * stored["alpha"] / lam + 2 * stored["alpha"])
    assert stored["bound"] == pytest.approx(4 * stored["alpha"] / lam + 8 * stored["alpha"])
    assert g.per_view_bound == pytest.approx(4 * stored["alpha"] / lam + stored["alpha"])


def test_a_bracketed_record_reads_both_sides() -> None:
    stored = {**json.loads(OLDER.read_text()), "error_definition": BEST_HEAD,
              "error": 0.2, "error_lower": 0.15, "error_head": "logistic",
              "error_lower_method": "all node labellings, exact", "error_least_squares": 0.24,
              "optimum_error": 0.19, "optimum_error_lower": 0.19, "optimum_error_head": "x",
              "optimum_error_lower_method": "m", "optimum_error_least_squares": 0.27,
              "tied": True}
    g = read_guarantee(stored)
    assert g.bracketed and g.tied
    assert (g.network.lower, g.network.upper, g.network.least_squares) == (0.15, 0.2, 0.24)
    assert g.network.text() == "15.0–20.0%" and not g.network.exact
    assert g.optimum.exact and g.optimum.text() == "19.0%"


def test_alpha_zero_reads_as_zero_with_no_infinite_order() -> None:
    stored = {**json.loads(OLDER.read_text()), "alpha": 1.1e-16, "theorem_order": math.inf}
    g = read_guarantee(stored)
    assert g.alpha == 0.0 and g.theorem_order == 0.0 and g.bound == 0.0


def test_error_range_text_without_a_lower_side() -> None:
    assert ErrorRange(0.125, None, "least squares", "", 0.125).text() == "≤ 12.5%"
    assert ErrorRange(0.0, 0.0, "least squares", "", 0.0).text() == "0.0%"
