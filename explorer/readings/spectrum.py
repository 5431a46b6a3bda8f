"""What the Spectrum page may say about a checkpoint's spectrum, given its loss and its μ.

The optimum of the population spectral loss has E_w[f fᵀ] with eigenvalues γ₁..γ_k, one near 1 per
nearly disconnected component (HaoChen et al. 2021, Section 3; docs/THEORY.md, "The population
loss and its optimum"), but only when that optimum fits in the ball ‖f(x)‖² ≤ μ that the loss's
clipping imposes. The ball caps the spectrum whatever the graph: tr E[f fᵀ] = E‖f‖² ≤ μ, so at
most μ/t eigenvalues reach t (docs/THEORY.md, "The ball"). At μ = 1 (the paper's CIFAR recipe) at
most one eigenvalue reaches 0.9, and "one eigenvalue near 1 per class" cannot be read off the
spectrum. This module turns that into the numbers and sentences the page shows; no Streamlit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from explorer.rundir.guarantee_record import percent
from explorer.rundir.records import (
    NEAR_ONE,
    AnalysisRecord,
    ExactRecord,
    as_analysis,
    as_exact,
    eigenvalue_cap,
)

__all__ = ["NEAR_ONE", "SpectrumExpectation", "eigenvalue_cap", "expectation",
           "guarantee_reading", "tie_reading"]


@dataclass(frozen=True)
class SpectrumExpectation:
    """What a good checkpoint's spectrum looks like for one run.

    Attributes:
        near_one: how many eigenvalues of E[f fᵀ] ≥ :data:`NEAR_ONE` the best features of this
            run have: of the reachable optimum on an exact graph, else one per class capped by
            the ball; None when nothing can be said.
        cap: ⌊μ/NEAR_ONE⌋ for the spectral loss (None without a ball).
        ball_binds: whether the ball cuts the optimum off (known on an exact graph; True
            without one when the classes alone exceed the cap).
        text: one paragraph for the page.
    """

    near_one: int | None
    cap: int | None
    ball_binds: bool
    text: str


def expectation(
    artifact: AnalysisRecord | Mapping[str, Any], num_classes: int
) -> SpectrumExpectation:
    """What a good run looks like, for one analysis artifact (its loss, μ and exact metrics).

    Args:
        artifact: an :class:`~explorer.rundir.records.AnalysisRecord` (or the dict
            :func:`explorer.rundir.artifacts.load_analysis` returns).
        num_classes: the dataset's class count.
    """
    record = as_analysis(artifact)
    mu, cap, exact = record.ball_mu, record.eigenvalue_cap, record.exact
    if mu is None or cap is None:
        text = (f"**What a good {record.loss} run looks like:** its loss sees only z/‖z‖, so its "
                "features are read as z/‖z‖ at the scale that is best for the spectral loss "
                "(no ball). Spanning the graph's top eigenvectors is what a linear probe needs "
                "(Lemma 3.1: an invertible linear map changes no probe); eigenvalues of "
                f"E[f fᵀ] near 1, one per class ({num_classes}), appear only if the features "
                "also match the optimum's scale per direction, which NT-Xent does not ask for.")
        return SpectrumExpectation(None, None, False, text)
    cap_text = (f"With μ = {mu:g}, tr E[f fᵀ] = E‖f‖² ≤ μ lets at most {cap} eigenvalue"
                f"{'s' if cap != 1 else ''} reach {NEAR_ONE}.")
    if exact is not None:
        binds = exact.ball_binds
        reachable = np.asarray(exact.reachable_c_eigs, dtype=np.float64)
        gammas = np.asarray(record.arrays.get("exact_gammas", []), dtype=np.float64)
        target = reachable if binds and len(reachable) else gammas
        count = int(np.sum(target >= NEAR_ONE))
        largest = _number(exact.max_optimal_sq_norm, ".3g")
        if binds:
            text = (f"**What a good run looks like here:** μ = {mu:g} is below max‖f*(x)‖² = "
                    f"{largest}, so the ball binds: the best features "
                    f"inside it have {count} eigenvalue{'s' if count != 1 else ''} of E_w[f fᵀ] "
                    f"≥ {NEAR_ONE} (the graph has {int(np.sum(gammas >= NEAR_ONE))} γᵢ ≥ "
                    f"{NEAR_ONE}); compare with that and with the reachable optimum, not with "
                    f"−Σγᵢ². {cap_text}")
        else:
            text = (f"**What a good run looks like here:** the optimum fits in the ball "
                    f"(μ = {mu:g} ≥ max‖f*(x)‖² = {largest}), so at the "
                    f"optimum E_w[f fᵀ] has the graph's γᵢ as eigenvalues: {count} of them "
                    f"≥ {NEAR_ONE}, one per nearly disconnected component. {cap_text}")
        return SpectrumExpectation(count, cap, binds, text + _rest())
    if cap < num_classes:
        text = (f"**What a good run looks like:** {cap_text} With {num_classes} classes the "
                "optimum's one eigenvalue near 1 per class does not fit: the ball binds, "
                "−Σγᵢ² is out of reach, and the count of eigenvalues near 1 cannot count the "
                "classes. Read the span (linear probe) and the decay of the spectrum instead.")
        return SpectrumExpectation(cap, cap, True, text + _rest())
    text = (f"**What a good run looks like:** one eigenvalue of E[f fᵀ] ≥ {NEAR_ONE} per nearly "
            f"disconnected component of the augmentation graph ({num_classes} if the classes "
            f"are), in the projector, cross and graph rows. {cap_text}")
    return SpectrumExpectation(num_classes, cap, False, text + _rest())


def _number(value: float | None, spec: str) -> str:
    """A number as the page prints it; "—" where the record lacks it."""
    return "—" if value is None else format(value, spec)


def _rest() -> str:
    return (" The C₊ = C² residual falls towards 0 at any stationary point (the optimum or a "
            "saddle): it cannot tell them apart; the share of the optimum can. RankMe stays well "
            "above the number of classes (no collapse).")


def guarantee_reading(
    exact: ExactRecord | Mapping[str, Any], loss: str, probe_accuracy: float | None = None
) -> tuple[list[tuple[str, str, str]], str]:
    """The downstream guarantee of one checkpoint, for the page: ``(metrics, paragraph)``.

    Args:
        exact: an analysis artifact's exact record holding a guarantee, of any format
            (:class:`~explorer.rundir.records.ExactRecord`, or the ``exact`` dict as written).
        loss: the run's loss.
        probe_accuracy: the run's linear probe accuracy on held-out images, shown beside E(f)
            as its error (another question than the paper's, said in the paragraph).

    Returns:
        metrics as ``(label, value, help)`` and a paragraph that says which theorem applies.

    Raises:
        ValueError: a record without a guarantee.
    """
    exact = as_exact(exact)
    g = exact.guarantee
    if g is None:
        raise ValueError("this exact record holds no guarantee (analysis format 2)")
    net, opt = g.network, g.optimum
    what = ("the paper's downstream error (eq. 1): the best linear head on f, each natural "
            "datum of the training graph classified by the majority vote over its augmented "
            "views. Shown as a bracket, one number where it closes. ")
    metrics = [
        ("α (Assumption 3.5)", percent(g.alpha),
         "the least error of any labelling of augmented images: how often an augmentation "
         "changes the class, exactly, from the kernel"),
        ("E(f) of the network", net.text(), what + net.explanation()),
        ("E(f*) of the optimum", opt.text(),
         f"the same for the top-{g.k} eigenvectors of the graph, the loss's minimiser"
         + (" (γ_k = γ_{k+1}: f* is not unique; this is the eigensolver's basis)"
            if g.tied else "") + ". " + opt.explanation()),
        ("bound 8α/λ + 2α", percent(g.bound),
         f"the γ_(k+1) form of the guarantee for f* (any optimal basis), λ = 1 − γ_(k+1), "
         f"γ_(k+1) = {g.gamma_next:.3f}; proven in docs/THEORY.md; above 100% it says nothing"),
    ]
    if probe_accuracy is not None:
        metrics.append(("linear probe error", percent(1.0 - probe_accuracy),
                        "a head fitted on training images, tested on held-out scenes: "
                        "another error than E(f)"))
    regime = g.theorem_4_2
    if not regime:
        transfer = ""
    elif regime["in_regime"]:
        transfer = (f"The network's excess loss ε = {regime['epsilon']:.3g} is below γ_k² = "
                    f"{regime['gamma_k_sq']:.3g}, so Theorem 4.2 carries the guarantee over to "
                    "it, up to a term kε/Δ_γ².")
    else:
        transfer = (f"The network's excess loss ε = L − L* = {regime['epsilon']:.3g} is far "
                    f"above γ_k² = {regime['gamma_k_sq']:.3g}: it is outside Theorem 4.2's "
                    "regime, so its E(f) is measured here, not guaranteed.")
    r2 = exact.class_r2
    chance = exact.span_chance if exact.span_chance is not None else float("nan")
    span = (f" A linear probe is unchanged by an invertible linear map of f and a positive "
            f"scale per datum (Lemma 3.1), so what the probe needs is that f *spans* the class "
            f"eigenvectors: R² = {_number(r2, '.3f')} here (chance {chance:.2f}), whether or "
            "not their eigenvalues sit near 1.")
    beside = (" E(f) and the probe answer two questions: E(f) votes over the augmented views "
              "of the training graph with a head fitted on every node, the probe fits a head on "
              "training images and tests it on held-out scenes; they need not agree.")
    older = ("" if g.bracketed else " This analysis is older: its E(f) is the least-squares "
             "head's, an upper bound only (`explorer analyze --force` brackets it).")
    text = (f"The guarantee (HaoChen et al. 2021, Section 3.3): when augmentations change the "
            f"class with probability α, the minimiser's linear head errs at most "
            f"8α/(1 − γ_(k+1)) + 2α; here α = {percent(g.alpha)}, E(f*) = {opt.text()}, the "
            f"bound {percent(g.bound)}. " + transfer + beside + older
            + (span if r2 is not None and (loss != "spectral" or r2 < 0.99) else ""))
    return metrics, text


def tie_reading(exact: ExactRecord | Mapping[str, Any]) -> str | None:
    """One paragraph when k splits an eigenspace (γ_k = γ_{k+1}, the record's ``tie``): what
    depends on the eigensolver's basis and what holds for every optimal one; None without a tie
    (and in older records, which did not look)."""
    exact = as_exact(exact)
    tie = exact.tie
    if tie is None:
        return None
    low_high = exact.max_optimal_sq_norm_range
    spread = ("" if low_high is None else
              f" max‖f*(x)‖² is {_number(exact.max_optimal_sq_norm, '.3g')} for the eigensolver's "
              f"basis and lies in [{low_high[0]:.3g}, {low_high[1]:.3g}] over every optimal "
              "basis;")
    return (f"k = {exact.graph.k} splits the eigenspace of γ_{tie.first}…γ_{tie.last} = "
            f"{tie.gamma:.4g} (γ_k = γ_(k+1)), so the optimum f* is not unique beyond "
            f"rotations:{spread} E(f*) is that of the eigensolver's basis. The optimum "
            "−Σγᵢ², the eigenvalues of E_w[f* f*ᵀ] and the bound 8α/(1 − γ_(k+1)) + 2α hold for "
            "every optimal basis.")
