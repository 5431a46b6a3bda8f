"""The downstream guarantee of one checkpoint as stored (``exact.guarantee``), read as a type.

:mod:`explorer.analysis.theorem` writes the record; pages, sweeps, the CLI and notebooks read it
through :func:`read_guarantee`, which gives every format the project wrote one shape:

- since format 2 of the record (``"error_definition": "best head"``), ``error`` and
  ``optimum_error`` are the paper's E(f) bracketed [0, eq. (1)]: the least vote error of the
  heads tried (an upper bound, with ``*_head`` naming the head) and a lower bound that holds for
  every head (``*_lower``, ``*_lower_method``); the least-squares head's error is kept under its
  own name (``*_least_squares``);
- older records hold the least-squares head's error under ``error``: read as an upper bound
  named so, with no lower bound.

The γ_{k+1} bound is recomputed from α and γ_{k+1} whatever the format: older records stored a
form whose constants were never proven (docs/THEORY.md, "The γ_{k+1} bound, proven").

References:
    [0] HaoChen, Wei, Gaidon, Ma, "Provable Guarantees for Self-Supervised Deep Learning with
        Spectral Contrastive Loss", NeurIPS 2021, https://arxiv.org/abs/2106.04156
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from explorer.graphs import guarantee
from explorer.graphs.downstream_error import ErrorBracket

#: The value of ``error_definition`` in records that hold the bracket.
BEST_HEAD = "best head"
#: The head an older record's ``error`` was computed with.
LEAST_SQUARES = "least squares"


def percent(value: float | None) -> str:
    """A rate as the pages print it: one decimal, '∞' for an infinite bound, '–' for none."""
    if value is None:
        return "–"
    return f"{100 * value:.1f}%" if math.isfinite(value) else "∞"


@dataclass(frozen=True)
class ErrorRange:
    """E(f) of one f, bracketed: ``lower`` ≤ E(f) ≤ ``upper``.

    Attributes:
        upper: the vote error of the best head tried (a real head, so E(f) is at most this).
        lower: a bound that holds for every head, or None where none was computed.
        head: which head gave ``upper``.
        lower_method: what ``lower`` is (the least error over all node labellings, exact or a
            solver's proven bound), or why there is none.
        least_squares: the least-squares head's error (the value older records called E(f)).
    """

    upper: float
    lower: float | None
    head: str
    lower_method: str
    least_squares: float | None

    @property
    def exact(self) -> bool:
        """Both sides meet: the paper's E(f) itself."""
        return self.lower is not None and self.upper - self.lower <= 1e-9

    def text(self) -> str:
        """'7.8%' where the bracket closes, '0.0–19.3%' where it does not, '≤ 24.3%' without a
        lower bound."""
        if self.exact:
            return percent(self.upper)
        if self.lower is None:
            return f"≤ {percent(self.upper)}"
        return f"{100 * self.lower:.1f}–{percent(self.upper)}"

    def explanation(self) -> str:
        """One line: which head gave the upper side, what the lower side is."""
        lower = ("no lower bound in this record" if self.lower is None
                 else f"lower: {self.lower_method}")
        return f"upper: the {self.head} head; {lower}"


@dataclass(frozen=True)
class GuaranteeRecord:
    """``exact.guarantee`` of an analysis artifact, any format.

    Attributes:
        k: the features' dimension the guarantee is read at.
        alpha: Assumption 3.5's α (0 where below 1e-12).
        gamma_next: γ_{k+1} of the graph.
        network: E(f) of the checkpoint's features; ``optimum``: E(f*) of the top-k optimum.
        rho_lower, theorem_order: Theorem 3.7's ρ_{⌊k/2⌋} lower bound and order of magnitude.
        theorem_4_2: Theorem 4.2's regime
            (:func:`explorer.graphs.guarantee.approximate_minimiser_regime`).
        tied: γ_k = γ_{k+1}: f* is not unique, E(f*) is that of the eigensolver's basis (None in
            older records).
        bracketed: whether the record holds the bracket (format 2) or only least squares.
    """

    k: int
    alpha: float
    gamma_next: float
    network: ErrorRange
    optimum: ErrorRange
    rho_lower: float
    theorem_order: float
    theorem_4_2: dict[str, Any]
    tied: bool | None
    bracketed: bool

    @property
    def bound(self) -> float:
        """E(f*) ≤ 8α/(1 − γ_{k+1}) + 2α (:func:`explorer.graphs.guarantee.eigenvalue_bound`)."""
        return guarantee.eigenvalue_bound(self.alpha, self.gamma_next)

    @property
    def per_view_bound(self) -> float:
        """The best head's error on one view: ≤ 4α/(1 − γ_{k+1}) + α."""
        return guarantee.per_view_bound(self.alpha, self.gamma_next)


def _range(record: dict[str, Any], key: str, bracketed: bool) -> ErrorRange:
    if not bracketed:
        return ErrorRange(float(record[key]), None, LEAST_SQUARES,
                          "none: an older analysis, which held the least-squares head's error "
                          "only (explorer analyze --force recomputes it)",
                          float(record[key]))
    lower = record.get(f"{key}_lower")
    least = record.get(f"{key}_least_squares")
    return ErrorRange(float(record[key]), None if lower is None else float(lower),
                      str(record.get(f"{key}_head", "")),
                      str(record.get(f"{key}_lower_method", "")),
                      None if least is None else float(least))


def read_guarantee(record: dict[str, Any]) -> GuaranteeRecord:
    """The typed reading of an ``exact.guarantee`` record of any format (see the module)."""
    bracketed = record.get("error_definition") == BEST_HEAD
    alpha = float(record["alpha"])
    alpha = 0.0 if abs(alpha) < 1e-12 else alpha  # a sum of masses: 1.1e-16 is 0
    return GuaranteeRecord(
        k=int(record["k"]),
        alpha=alpha,
        gamma_next=float(record["gamma_k1"]),
        network=_range(record, "error", bracketed),
        optimum=_range(record, "optimum_error", bracketed),
        rho_lower=float(record.get("rho_lower", float("nan"))),
        theorem_order=float(record.get("theorem_order", float("nan"))) if alpha else 0.0,
        theorem_4_2=dict(record.get("theorem_4_2") or {}),
        tied=record.get("tied"),
        bracketed=bracketed,
    )


def bracket_text(bracket: ErrorBracket) -> str:
    """An :class:`explorer.graphs.downstream_error.ErrorBracket` as the pages print E: one number
    where it closes, 'lower–upper%' where not."""
    return ErrorRange(bracket.upper, bracket.lower, bracket.head, bracket.lower_method,
                      bracket.least_squares).text()
