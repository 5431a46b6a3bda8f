"""A checkpoint's analysis read as types: one shape for every format the project wrote.

:mod:`explorer.rundir.artifacts` reads and writes the files (``analysis/epoch-NNNN.{json,npz}``,
docs/RUN_FORMAT.md); this module turns a record's JSON into an :class:`AnalysisRecord`, with its
exact record (``shapes`` runs) as an :class:`ExactRecord` and the downstream guarantee as
:class:`~explorer.rundir.guarantee_record.GuaranteeRecord`. The numbers derived from a record are
computed here and nowhere else: the share of the optimum reached 1 − gap
(:attr:`ExactRecord.share`), the ball's cap on the spectrum (:attr:`AnalysisRecord.eigenvalue_cap`).

Formats (``format_version``), each read into the same types:

- 4: α-ReQ's decay is ``alpha_req`` in ``metrics`` (``alpha`` is Assumption 3.5's α alone, in
  ``exact.guarantee``);
- 3: α-ReQ under ``alpha``, read as ``alpha_req``;
- 2: f = clip(z) for every loss (no ``metrics.features``), the C₊ = C² residual under
  ``optimum_gap``, read as ``stationarity_residual``; no guarantee;
- 1: f = clip(z)/√μ (z/‖z‖ for SimCLR and SimSiam), so the features lie in the unit ball;
  RankMe and α of the mean batch spectrum, for ``cross`` and ``graph`` too; no exact record.

Keys a format lacks read as None (the pages show "—"), empty or their documented default.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from explorer.errors import UserError
from explorer.rundir.guarantee_record import GuaranteeRecord, read_guarantee

# 4: α-ReQ renamed alpha_req in metrics. 3: the C+ = C^2 residual renamed stationarity_residual;
# SimCLR/SimSiam read as z/|z| at the best scale; every eigenspace's span and its chance level.
# 2: f = clip(z); RankMe and α-ReQ of the embedding matrix. 1: the first.
ANALYSIS_FORMAT_VERSION = 4
#: Every format the project wrote, all read by :func:`analysis_record`.
ANALYSIS_FORMATS = (1, 2, 3, 4)
#: From this format on the numbers are of the features as they are now (3 → 4 renamed a key):
#: ``explorer analyze`` recomputes older artifacts, whose spectra are of other features.
CURRENT_FEATURES_SINCE = 3

#: Eigenvalues at or above this count as "near 1" (one per nearly disconnected component).
NEAR_ONE = 0.9


def eigenvalue_cap(mu: float, threshold: float) -> int:
    """The most eigenvalues of E[f fᵀ] that can reach ``threshold`` when every ‖f(x)‖² ≤ μ.

    The eigenvalues are non-negative and sum to tr E[f fᵀ] = E‖f‖² ≤ μ, so at most ⌊μ/t⌋ of them
    are ≥ t (docs/THEORY.md, "The ball").
    """
    if mu <= 0 or threshold <= 0:
        raise ValueError(f"mu and threshold must be positive, got {mu} and {threshold}")
    return math.floor(mu / threshold * (1 + 1e-12))


@dataclass(frozen=True)
class FeatureMetrics:
    """``metrics[kind]`` of one kind of feature (``projector``, ``backbone``, ``cross``, ``graph``).

    Attributes:
        rankme: RankMe (Garrido et al. 2023) of the embedding matrix; None where not measured.
        alpha_req: α-ReQ's eigenvalue decay (Agrawal et al. 2022); None where not measured or
            too short a spectrum to fit.
        above: threshold -> how many eigenvalues of the mean spectrum are ≥ it
            (``n_above_0.5``, ``n_above_0.9``).
        stationarity_residual: ‖C₊ − C²‖/(‖C₊‖ + ‖C²‖) of the views (``graph`` only).
    """

    rankme: float | None = None
    alpha_req: float | None = None
    above: Mapping[float, int] = field(default_factory=dict)
    stationarity_residual: float | None = None


@dataclass(frozen=True)
class FeatureReading:
    """``metrics.features`` (format 3 on): how f was read from z: ``loss``, ``scale`` c of
    f = c·z/‖z‖ (1 for the spectral loss) and the ball's ``mu`` (None without one)."""

    loss: str
    scale: float | None
    mu: float | None


@dataclass(frozen=True)
class ProbeScores:
    """One probe on the test sample, as ``probe.json`` holds it: ``accuracy`` in [0, 1],
    ``per_class_accuracy`` (C,) and ``confusion`` (C, C) counts ``[true][pred]``."""

    accuracy: float
    per_class_accuracy: tuple[float, ...] = ()
    confusion: tuple[tuple[int, ...], ...] = ()


@dataclass(frozen=True)
class ExactGraph:
    """``exact.graph``: whether it is the run's own population graph, what it is, its node
    count and the features' dimension k."""

    own: bool = False
    description: str | None = None
    nodes: int | None = None
    k: int | None = None


@dataclass(frozen=True)
class SpanBlock:
    """One eigenspace of γ₁..γ_k (1-based ``first``, ``size``, its ``gamma``) and the R² of the
    features' span of it."""

    first: int
    size: int
    gamma: float
    r2: float


@dataclass(frozen=True)
class Tie:
    """k splits the eigenspace of γ_first..γ_last = ``gamma`` (1-based)."""

    first: int
    last: int
    gamma: float


@dataclass(frozen=True)
class ExactRecord:
    """``exact``: a ``shapes`` checkpoint scored on every node of its exact graph
    (:mod:`explorer.analysis.theorem`; docs/RUN_FORMAT.md, "Exact metrics").

    Attributes:
        loss: the population loss L(f); ``optimum``: −Σ_{i≤k} γᵢ²; ``reachable_optimum``: the
            best loss with every ‖f(x)‖² ≤ μ.
        gap, reachable_gap: (L − L*)/|L*| to each.
        max_optimal_sq_norm_range: ``(low, high)`` over every optimal basis when k splits an
            eigenspace (``high`` infinite past the eigenpairs computed), else None.
        ball_curve: ``(mus, losses)`` of the reachable optimum.
        guarantee: the downstream guarantee (format 3 on), any of its own formats.
    """

    graph: ExactGraph = ExactGraph()
    feature_scale: float | None = None
    loss: float | None = None
    optimum: float | None = None
    reachable_optimum: float | None = None
    gap: float | None = None
    reachable_gap: float | None = None
    mu: float | None = None
    max_optimal_sq_norm: float | None = None
    max_optimal_sq_norm_range: tuple[float, float] | None = None
    tie: Tie | None = None
    ball_binds: bool = False
    ball_curve: tuple[tuple[float, ...], tuple[float, ...]] = ((), ())
    reachable_certified: bool = True  # False: the ball's optimum bracketed (the whole grid)
    class_r2: float | None = None
    span_chance: float | None = None
    blocks: tuple[SpanBlock, ...] = ()
    reachable_c_eigs: tuple[float, ...] = ()
    guarantee: GuaranteeRecord | None = None

    @property
    def share(self) -> float | None:
        """The share of the optimum reached, L(f)/L* = 1 − gap: 1 at the optimum, 0 for f = 0,
        negative for features worse than f = 0."""
        return None if self.gap is None else 1 - self.gap

    @property
    def reachable_share(self) -> float | None:
        """1 − reachable_gap: the same against the best loss inside the ball."""
        return None if self.reachable_gap is None else 1 - self.reachable_gap


@dataclass(frozen=True)
class AnalysisRecord:
    """One checkpoint's analysis (``epoch-NNNN.json``, with its arrays when read with them).

    Attributes:
        format_version: the format it was written in (:data:`ANALYSIS_FORMATS`).
        mu: the run's μ; ``features``: how f was read from z (None before format 3).
        metrics: kind of feature -> its :class:`FeatureMetrics` (the kinds present).
        probes: ``"linear"``, ``"knn"`` on the backbone features h; ``probes_projector``: on
            the projector features (None where the record predates them), read as
            ``projector_reading`` (``"clip(z)"`` with ``projector_mu``, or ``"z/|z|"``).
        exact: the exact record (``shapes`` runs from format 2 on), else None.
        arrays: name -> array of the ``.npz`` (empty when read without them).
    """

    format_version: int
    epoch: int | None = None
    checkpoint: str | None = None
    classes: tuple[str, ...] = ()
    mu: float | None = None
    projections: tuple[str, ...] = ()
    metrics: Mapping[str, FeatureMetrics] = field(default_factory=dict)
    features: FeatureReading | None = None
    alignment: float | None = None
    uniformity: float | None = None
    probes: Mapping[str, ProbeScores] = field(default_factory=dict)
    probes_projector: Mapping[str, ProbeScores] | None = None
    projector_reading: str | None = None
    projector_mu: float | None = None
    exact: ExactRecord | None = None
    arrays: Mapping[str, np.ndarray] = field(default_factory=dict)

    @property
    def loss(self) -> str:
        """The run's loss as the record says; records before format 3 do not, and read as the
        spectral loss (format 2 read every loss's features as clip(z) with the run's μ)."""
        return self.features.loss if self.features is not None else "spectral"

    @property
    def ball_mu(self) -> float | None:
        """The μ of the ball ‖f(x)‖² ≤ μ that the spectra's features lie in; None for losses
        without one (SimCLR, SimSiam from format 3 on)."""
        if self.format_version == 1:  # f = clip(z)/√μ or z/‖z‖: the unit ball
            return 1.0
        if self.features is None:
            return self.mu
        if self.features.loss != "spectral":
            return None
        return self.features.mu if self.features.mu is not None else self.mu

    @property
    def eigenvalue_cap(self) -> int | None:
        """⌊μ/NEAR_ONE⌋: the most eigenvalues of E[f fᵀ] that can reach :data:`NEAR_ONE` in the
        ball (:func:`eigenvalue_cap`); None without a ball."""
        mu = self.ball_mu
        return None if mu is None else eigenvalue_cap(mu, NEAR_ONE)

    def accuracy(self, kind: str, *, projector: bool = False) -> float | None:
        """The ``kind`` (``"linear"``, ``"knn"``) probe's accuracy on the backbone features, or
        on the projector's with ``projector``; None where the record has none."""
        probes = self.probes_projector if projector else self.probes
        scores = (probes or {}).get(kind)
        return None if scores is None else scores.accuracy


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _feature_metrics(values: Mapping[str, Any], version: int) -> FeatureMetrics:
    return FeatureMetrics(
        rankme=_number(values.get("rankme")),
        alpha_req=_number(values.get("alpha_req" if version >= 4 else "alpha")),
        above={float(key.removeprefix("n_above_")): int(count) for key, count in values.items()
               if key.startswith("n_above_") and count is not None},
        stationarity_residual=_number(
            values.get("stationarity_residual" if version >= 3 else "optimum_gap")),
    )


def _probes(values: Any) -> dict[str, ProbeScores]:
    return {kind: ProbeScores(float(r["accuracy"]),
                              tuple(float(a) for a in r.get("per_class_accuracy") or ()),
                              tuple(tuple(int(n) for n in row) for row in r.get("confusion") or ()))
            for kind, r in (values or {}).items()}


def exact_record(exact: Mapping[str, Any]) -> ExactRecord:
    """The typed reading of an ``exact`` record (every format has the same keys; later ones added
    some, absent keys read as their defaults)."""
    graph = exact.get("graph") or {}
    tie, low_high, curve = exact.get("tie"), exact.get("max_optimal_sq_norm_range"), \
        exact.get("ball_curve") or {}
    return ExactRecord(
        graph=ExactGraph(bool(graph.get("own", False)), graph.get("description"),
                         graph.get("nodes"), graph.get("k")),
        feature_scale=_number(exact.get("feature_scale")),
        loss=_number(exact.get("loss")),
        optimum=_number(exact.get("optimum")),
        reachable_optimum=_number(exact.get("reachable_optimum")),
        gap=_number(exact.get("gap")),
        reachable_gap=_number(exact.get("reachable_gap")),
        mu=_number(exact.get("mu")),
        max_optimal_sq_norm=_number(exact.get("max_optimal_sq_norm")),
        # an infinite high end was written as null (JSON has no infinity)
        max_optimal_sq_norm_range=None if not low_high else (
            float(low_high[0]), math.inf if low_high[1] is None else float(low_high[1])),
        tie=None if not tie else Tie(int(tie["first"]), int(tie["last"]), float(tie["gamma"])),
        ball_binds=bool(exact.get("ball_binds", False)),
        ball_curve=(tuple(map(float, curve.get("mu") or ())),
                    tuple(map(float, curve.get("loss") or ()))),
        reachable_certified=bool(exact.get("reachable_certified", True)),
        class_r2=_number(exact.get("class_r2")),
        span_chance=_number(exact.get("span_chance")),
        blocks=tuple(SpanBlock(int(b["first"]), int(b["size"]), float(b["gamma"]),
                               float(b["r2"])) for b in exact.get("blocks") or ()),
        reachable_c_eigs=tuple(map(float, exact.get("reachable_c_eigs") or ())),
        guarantee=read_guarantee(exact["guarantee"]) if exact.get("guarantee") else None,
    )


def analysis_record(
    record: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None = None
) -> AnalysisRecord:
    """The typed reading of an analysis record of any format (see the module).

    Args:
        record: the JSON record as written (or as :func:`explorer.rundir.artifacts.load_analysis`
            returns it, its arrays under ``"arrays"``); without ``format_version`` (a record
            just computed, not yet written) it is read as the current format.
        arrays: the ``.npz`` arrays; default: ``record["arrays"]`` where that is a dict.

    Raises:
        UserError: a format this explorer does not know.
    """
    version = record.get("format_version", ANALYSIS_FORMAT_VERSION)
    if isinstance(version, bool) or version not in ANALYSIS_FORMATS:
        raise UserError(f"analysis format version {version} is not one this explorer reads "
                        f"({', '.join(map(str, ANALYSIS_FORMATS))})")
    if arrays is None:
        stored = record.get("arrays")
        arrays = stored if isinstance(stored, Mapping) else {}
    metrics = record.get("metrics") or {}
    features = metrics.get("features")
    reading = record.get("projector_features") or {}
    exact = record.get("exact")
    return AnalysisRecord(
        format_version=int(version),
        epoch=record.get("epoch"),
        checkpoint=record.get("checkpoint"),
        classes=tuple(record.get("classes") or ()),
        mu=_number(record.get("mu")),
        projections=tuple(record.get("projections") or ()),
        metrics={kind: _feature_metrics(values, version) for kind, values in metrics.items()
                 if kind != "features" and isinstance(values, Mapping)},
        features=None if not isinstance(features, Mapping) else FeatureReading(
            str(features.get("loss", "spectral")), _number(features.get("scale")),
            _number(features.get("mu"))),
        alignment=_number(metrics.get("alignment")),
        uniformity=_number(metrics.get("uniformity")),
        probes=_probes(record.get("probes")),
        probes_projector=_probes(record["probes_projector"]) if record.get("probes_projector")
        else None,
        projector_reading=reading.get("reading"),
        projector_mu=_number(reading.get("mu")),
        exact=exact_record(exact) if isinstance(exact, Mapping) else None,
        arrays=dict(arrays),
    )


def as_analysis(artifact: AnalysisRecord | Mapping[str, Any]) -> AnalysisRecord:
    """``artifact`` typed: an :class:`AnalysisRecord` as it is, a dict (as
    :func:`explorer.rundir.artifacts.load_analysis` returns it) through :func:`analysis_record`."""
    return artifact if isinstance(artifact, AnalysisRecord) else analysis_record(artifact)


def as_exact(exact: ExactRecord | Mapping[str, Any]) -> ExactRecord:
    """``exact`` typed: an :class:`ExactRecord` as it is, a dict through :func:`exact_record`."""
    return exact if isinstance(exact, ExactRecord) else exact_record(exact)
