"""Spectrum: the theorem measured on shapes runs, batch Gram spectra, RankMe and α over training."""

from __future__ import annotations

from typing import Any

import streamlit as st

from explorer.analysis.class_components import describe
from explorer.errors import UserError
from explorer.readings.figures import (
    class_components_figure,
    exact_progress_figure,
    reachable_optimum_figure,
    spectrum_figure,
    spectrum_metrics_figure,
)
from explorer.readings.run_tables import csv_text, eigenvalue_table
from explorer.readings.spectrum import NEAR_ONE, expectation, guarantee_reading, tie_reading
from explorer.readings.spectrum_table import STATIONARITY, spectrum_table
from explorer.rundir.records import ExactRecord, as_analysis
from explorer_dashboard.common import analysed_checkpoints, chosen_run

# The page's terms, as the papers define them (explorer/analysis/metrics.py has the estimators).
TERMS = {
    "RankMe": "the effective rank of the matrix of all evaluated embeddings, exp(entropy of its "
              "normalised singular values) (Garrido et al. 2023): 1 for collapsed features, d "
              "for isotropic ones; higher tends to probe better.",
    "α (α-ReQ)": "the decay λᵢ ∝ i^−α of the centred covariance spectrum over ranks 11–100 "
                 "(Agrawal et al. 2022): small α is a flat, noisy spectrum, large α a few "
                 "dominant directions; the paper finds the best probes near α ≈ 1.",
    STATIONARITY: "‖C₊ − C²‖ / (‖C₊‖ + ‖C²‖) with C = E[f fᵀ] and C₊ = E[f(x) f(x⁺)ᵀ] over "
                  "positive pairs: 0 when C₊ = C², which holds at every stationary point of the "
                  "loss (the optimum, but also saddles made of other eigenvectors), near 1 when "
                  "the two are unrelated. It cannot tell a saddle from the optimum; the gap to "
                  "the optimum (L − L*)/|L*|, on an exact graph, can.",
    "cross": "the cross-view moment C₊ = E[f(x) f(x⁺)ᵀ] of two views of the same image "
             "(symmetrised): at the optimum its eigenvalues are γᵢ², so its eigenvalues near 1 "
             "also count the nearly disconnected components.",
}

st.title("Spectrum")
st.caption("How far a checkpoint's features are from the provable optimum of its augmentation "
           "graph, and the eigenvalues that say so.")
with st.expander("The theory behind this page"):  # the derivation, one click away
    st.markdown(
        "With f = clip(z) (rows of the projector output clipped to the ball ‖f‖² ≤ μ) the "
        "spectral loss times μ is the population loss L(f) = −2E[fᵀf⁺] + E[(fᵀf′)²] of HaoChen "
        "et al. (2021). Its minimum is −Σᵢ γᵢ² over the top eigenvalues γ₁ = 1 ≥ γ₂ ≥ … of the "
        "augmentation graph's normalised adjacency. At the minimum E[f fᵀ] has those eigenvalues "
        "(necessary, not sufficient: f must also span their eigenvectors), an eigenvalue near 1 "
        "per nearly disconnected component, provided the minimiser fits in the ball: "
        "tr E[f fᵀ] = E‖f‖² ≤ μ lets at most μ/t eigenvalues reach t. SimCLR and SimSiam see "
        "only z/‖z‖: their f is z/‖z‖ at the scale that is best for the spectral loss."
    )

run, config = chosen_run(analysed_only=True)
by_epoch = {e: as_analysis(a) for e, a in analysed_checkpoints(run).items()}

epochs = sorted(by_epoch)
epoch = (st.select_slider("Checkpoint (epoch)", epochs, value=epochs[-1])
         if len(epochs) > 1 else epochs[0])
artifact = by_epoch[epoch]


def number(value: float | None, spec: str) -> str:
    """A record's number as the page prints it; "—" where an older record lacks it."""
    return "—" if value is None else format(value, spec)


def percent(share: float | None) -> str:
    """A share as the page prints it, "91.9%"; "—" where an older record lacks it."""
    return "—" if share is None else f"{100 * share:.1f}%"


def show_theorem(exact: ExactRecord) -> None:
    """The checkpoint against the provable optimum of its exact graph, in numbers and figures."""
    graph = exact.graph
    st.subheader("The theorem, measured on every node of the exact graph")
    if graph.own:
        st.caption(f"Graph: {graph.description}; {number(graph.nodes, ',')} nodes, "
                   f"k = {graph.k} features. L(f) below is exact, not a batch estimate.")
    else:
        st.warning(f"This run did not train on an exact graph. It is scored on "
                   f"{graph.description} ({graph.nodes} nodes): a reference, not its own "
                   "population graph, so the numbers below say how far the network is from the "
                   "optimum of graph views, not from its own optimum. Train with augment=graph "
                   "for a run scored on its own graph.")
    share = percent(exact.share)
    cols = st.columns(5)
    cols[0].metric("of the provable optimum", share,
                   help="L(f)/L* = 1 − (L − L*)/|L*|: 100% at the optimum, 0% for f = 0")
    certified = exact.reachable_certified
    if certified:
        cols[1].metric("of the reachable optimum", percent(exact.reachable_share),
                       help="against the best loss with every ‖f(x)‖² ≤ μ")
    else:  # the whole grid: the ball's optimum is bracketed, not solved
        cols[1].metric("of the reachable optimum, at most",
                       f"≤ {percent(exact.reachable_share)}",
                       help="against the best loss found with every ‖f(x)‖² ≤ μ (a feasible "
                            "point, so an upper bound on the ball's optimum): the true share is "
                            "between the share of the provable optimum and this")
    cols[2].metric("population loss L(f)", number(exact.loss, ".3f"))
    cols[3].metric("optimum −Σγᵢ²", number(exact.optimum, ".3f"),
                   help=f"reachable inside the ball: {number(exact.reachable_optimum, '.3f')}")
    chance = exact.span_chance
    # the chance level under the value, grey and without an arrow (one read as an increase),
    # not in the label (a long label is cut off)
    cols[4].metric("class span R²", number(exact.class_r2, ".3f"),
                   None if chance is None else f"chance {chance:.2f}", delta_color="off",
                   delta_arrow="off",
                   help="R² (mean squared cosine of the principal angles) of the γ = 1 block; "
                        "random features of the same rank r span r/n of it on average (chance)")
    st.markdown(f"At epoch {epoch} the network is at **{share}** of the provable "
                f"optimum of {'its own' if graph.own else 'this'} augmentation graph.")
    if exact.mu is None:
        st.caption(f"{config.loss} sees only u = z/‖z‖ and has no ball: its features are scored "
                   f"as u at the best scale c·u for L (c = {number(exact.feature_scale, '.3g')}, "
                   "L(c·u) = −P²/N).")
        return
    mu, largest = exact.mu, number(exact.max_optimal_sq_norm, ".3g")
    optimum, reachable = number(exact.optimum, ".3f"), number(exact.reachable_optimum, ".3f")
    if exact.ball_binds:
        if certified:
            cost = (number(exact.reachable_optimum - exact.optimum, ".3g")
                    if exact.reachable_optimum is not None and exact.optimum is not None else "—")
            st.info(f"μ = {mu:g} is below max‖f*(x)‖² = {largest}: the ball cuts the "
                    f"optimum off. The best reachable loss is {reachable} "
                    f"instead of {optimum} (higher by {cost}); "
                    f"μ ≥ {largest} leaves it free.")
        else:
            st.info(f"μ = {mu:g} is below max‖f*(x)‖² = {largest}: the ball cuts the "
                    f"optimum off. On a graph this large the ball's optimum is bracketed, not "
                    f"solved: it lies between {optimum} (no ball) and "
                    f"{reachable}, the best loss a short descent found "
                    f"inside the ball; μ ≥ {largest} leaves it free.")
            return
    else:
        st.success(f"μ = {mu:g} ≥ max‖f*(x)‖² = {largest}: the ball leaves the optimum free.")
    if tie := tie_reading(exact):
        st.caption(tie)
    mus, losses = exact.ball_curve
    if mus and exact.optimum is not None:
        st.plotly_chart(reachable_optimum_figure(mus, losses, exact.optimum,
                                                 mu_run=mu, max_sq_norm=exact.max_optimal_sq_norm),
                        key="reachable")


def show_guarantee(exact: ExactRecord) -> None:
    """Why the features are useful: α, E(f), E(f*) and the bound on this run's graph."""
    st.subheader("Why the features are useful: the downstream guarantee")
    try:
        trained = ((run.probe() or {}).get("methods") or {}).get("trained") or {}
    except (UserError, OSError):  # a damaged probe.json: the guarantee still reads
        trained = {}
    metrics, text = guarantee_reading(exact, config.loss,
                                      (trained.get("linear") or {}).get("accuracy"))
    for column, (label, value, meaning) in zip(st.columns(len(metrics)), metrics, strict=True):
        column.metric(label, value, help=meaning)
    st.markdown(text)


if artifact.exact is not None:
    show_theorem(artifact.exact)
    st.plotly_chart(exact_progress_figure(by_epoch), key="exact-progress")
    if artifact.exact.guarantee is not None:
        show_guarantee(artifact.exact)
elif config.dataset.startswith("shapes"):
    st.info(f"No exact metrics in this artifact: `explorer analyze {run.path} --force` adds them.")

st.subheader("Spectra")
st.markdown(expectation(artifact, len(artifact.classes)).text)
st.caption(f"Eigenvalues of the graph estimate from views ≥ {NEAR_ONE} are starred (★, their "
           "count in the legend). For shapes runs, the exact eigenvalues of E_w[f fᵀ] over every "
           "node sit beside the graph's γᵢ. The backbone's features h have no natural scale, so "
           "its spectrum is divided by its largest eigenvalue λ₁, here and in the table.")
st.plotly_chart(spectrum_figure(artifact), key="spectrum")
st.plotly_chart(spectrum_metrics_figure(by_epoch), key="spectrum-metrics")
st.markdown("\n".join(f"- **{term}**: {meaning}" for term, meaning in TERMS.items()))
st.dataframe(
    spectrum_table(artifact),
    hide_index=True,
    column_config={
        "RankMe": st.column_config.TextColumn(help=TERMS["RankMe"]),
        "α (α-ReQ)": st.column_config.TextColumn(help=TERMS["α (α-ReQ)"]),
        STATIONARITY: st.column_config.TextColumn(help=TERMS[STATIONARITY]),
        "features": st.column_config.TextColumn(
            help="which features' spectrum: the projector's f (clip(z) for the spectral loss, "
                 "z/‖z‖ at its best scale for SimCLR and SimSiam) and the backbone's h "
                 "(mean batch Gram spectra), the cross-view moment, and E[f fᵀ] over both views"),
    },
)
st.caption(f"Counts of eigenvalues ≥ 0.5 and ≥ {NEAR_ONE} of each spectrum (the backbone's ÷ λ₁); "
           "— where a metric does not apply (RankMe and α need the embedding matrix; the "
           "residual compares C₊ with C²).")


def show_class_components(arrays: dict[str, Any], classes: list[str]) -> None:
    """Do the classes behave as nearly disconnected components?
    (explorer.analysis.class_components)"""
    st.subheader("Do the classes behave as components of the graph?")
    if "class_cosines" not in arrays:
        st.info("This analysis predates the class reading (or has over 100 classes): "
                f"`explorer analyze {run.path} --force` adds it.")
        return
    st.markdown(describe(arrays, classes))
    st.plotly_chart(class_components_figure(arrays, classes), key="class-components")
    st.caption(
        "Read from the features of the analysis sample's two views, split by class: E[f fᵀ] = "
        "M + Σ p_c Cov(f | c). At an optimum where every class is a disconnected component of "
        "the augmentation graph, the top eigenvectors are the class indicators (R eᵢ/√pᵢ on "
        "class i) and the further ones average to zero over each class, so M has one "
        "eigenvalue 1 per class and the class means are orthogonal; two classes in one "
        "component share one eigenvalue 1 and have parallel means. What it shows: how the "
        "network's features split by class, whatever rotation they use. What it does not: the "
        "graph itself. A low eigenvalue may be a class the graph connects to others, or one the "
        "network has not separated yet; on real images there is no exact graph to tell them "
        "apart, and its estimate (the eigenvalues of E[f fᵀ] above) is made of the same features."
    )


show_class_components(dict(artifact.arrays), list(artifact.classes))

eigen_rows = eigenvalue_table(by_epoch)
if eigen_rows:
    st.subheader("Eigenvalues per checkpoint")
    st.caption("The eigenvalues of E_w[f fᵀ] over every node of the exact graph at each analysed "
               "checkpoint, beside the graph's γᵢ, which they reach at the optimum: the numbers "
               "the spectrum chart draws for one checkpoint at a time.")
    st.dataframe(eigen_rows, hide_index=True, height=300, column_config={
        name: st.column_config.NumberColumn(format="%.4g") for name in eigen_rows[0]
        if name != "i"})
    st.download_button("Download the eigenvalues (CSV)", csv_text(eigen_rows),
                       file_name=f"{run.name}-eigenvalues.csv", mime="text/csv",
                       on_click="ignore", icon=":material/download:")
