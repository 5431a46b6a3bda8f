"""The paper's downstream error E(f) on a finite graph, bracketed.

E(f) [0, eq. 1] is the least, over every linear head B, of Pr_x̄[the majority vote over
x ~ A(·|x̄) of argmax Bᵀf(x) misses y(x̄)] (a tie with the true class is an error). No closed form
gives that minimum, so it is bracketed (docs/THEORY.md, "The downstream guarantee"):

- above, by the least vote error among real heads (:func:`error_bracket`): least squares (the
  only head the project used to report), a weighted multinomial logistic regression, heads fitted
  to searched node labellings; each is a head B, so E(f) ≤ its error;
- below, by the least vote error over *all* labellings of the nodes (:func:`labelling_bound`):
  whatever f and B, argmax Bᵀf(x) is one labelling. A mixed-integer program finds it on small
  graphs; when its time runs out, the solver's dual bound is what is certified. That bound is
  the graph's (computed once per graph); when f has few distinct rows (f* of a symmetric graph),
  :func:`error_bracket` raises it for f by asking the labelling to be constant on them and
  realised by a head.

Every lower bound here counts a tied vote correct (the MIP cannot tell '>' from '≥'), so on
graphs whose votes tie exactly the bracket keeps a gap that only ties make.

References:
    [0] HaoChen, Wei, Gaidon, Ma, "Provable Guarantees for Self-Supervised Deep Learning with
        Spectral Contrastive Loss", NeurIPS 2021, https://arxiv.org/abs/2106.04156
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse.csgraph import connected_components

from explorer.graphs.guarantee import DownstreamTask, errors_of_votes, head_of_mass, vote_error

LOGISTIC_MAX_ROWS = 200_000
"""The logistic head is skipped above this many (node, class) pairs of positive mass."""

LP_MAX_ENTRIES = 150_000
"""The LP head is replaced by a logistic regression on the labelling above this many constraint
entries, n (r − 1) (2d + 1) (about 1 s of HiGHS): at n = 840, r = 6 the LP takes d ≤ 17."""

HEAD_BOX = 1e3
"""|B_ij| ≤ this in the LP head (on features scaled to unit weighted RMS): keeps the LP bounded."""

DEFAULT_TIME_LIMIT = 20.0
"""Seconds the MIP of :func:`labelling_bound` may take on one graph, all components together
(the 840-node shapes graphs need 0 to 5 s)."""

MIP_MAX_ENTRIES = 20_000_000
""":func:`labelling_bound` skips the MIP above this many constraint entries, 2 (r − 1) nnz(A)."""

GROUP_LIMIT = 300
""":func:`error_bracket` refines both ends over f's distinct rows when f has at most this many."""

GROUP_TOLERANCE = 1e-9
"""Rows of f within this (relative to the largest |f|) are one point: a head that told them apart
would read rounding noise (f* of a symmetric graph repeats rows up to 1e-15)."""

SCORE_TIE = 1e-9
"""A class scoring within this (relative to the largest |score|) of a node's best is tied."""


def _scale(features: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Per-column weighted RMS of f (1 where 0): dividing by it is an invertible diagonal map,
    which changes no linear head's predictions (Lemma 3.1). No centring: that would add a bias
    the paper's linear head does not have."""
    rms = np.sqrt((w[:, None] * features**2).sum(0) / w.sum())
    return np.where(rms > 0, rms, 1.0)


def _logistic(features, w, nodes, classes, weight, r, C):
    """Bᵀf(x) (n, r) of a weighted multinomial logistic regression of ``classes`` on the rows
    ``nodes`` of f (scaled, no intercept, lbfgs); a class absent from ``classes`` scores −inf."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    scale = _scale(features, w)
    model = LogisticRegression(C=C, fit_intercept=False, max_iter=200, tol=1e-6)
    with warnings.catch_warnings():  # unconverged, it is still a head: its error is measured
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(features[nodes] / scale, classes,
                  sample_weight=weight * len(weight) / weight.sum())
    coef = model.coef_ if len(model.classes_) > 2 else np.vstack([-model.coef_, model.coef_]) / 2
    head = np.zeros((features.shape[1], r))
    head[:, model.classes_] = (coef / scale).T
    scores = features @ head
    scores[:, np.setdiff1d(np.arange(r), model.classes_)] = -np.inf
    return scores


def least_squares_scores(features: np.ndarray, task: DownstreamTask) -> np.ndarray:
    """Bᵀf(x) (n, r) of the least-squares head (:func:`explorer.graphs.guarantee.head_of_mass`)."""
    return features @ head_of_mass(features, task.mass)


def logistic_scores(
    features: np.ndarray, task: DownstreamTask, C: float = 1.0
) -> np.ndarray | None:
    """Bᵀf(x) (n, r) of a multinomial logistic regression on the pairs (node x, class c), each
    weighted by M[x, c], without intercept, on features scaled to unit weighted RMS (lbfgs).

    None above :data:`LOGISTIC_MAX_ROWS` pairs (about 10 s there at d = 128).
    """
    nodes, classes = np.nonzero(task.mass > 0)
    if len(nodes) > LOGISTIC_MAX_ROWS or len(np.unique(classes)) < 2:
        return None
    return _logistic(features, task.degrees, nodes, classes, task.mass[nodes, classes],
                     task.num_classes, C)


def _margin_lp(f: np.ndarray, own: np.ndarray, r: int, cost: np.ndarray, box: float | None):
    """min Σ cost_x ξ_x s.t. (b_own(x) − b_c)ᵀ f(x) ≥ 1 − ξ_x (c ≠ own(x)), ξ ≥ 0, |B| ≤ box
    (free without box): HiGHS's result, B = x[: r q] as (r, q) rows b_c."""
    n, q = f.shape
    other = np.array([[c for c in range(r) if c != o] for o in own], dtype=np.int64).ravel()
    node = np.repeat(np.arange(n), r - 1)
    rows = np.repeat(np.arange(len(node)), 2 * q + 1)
    cols = np.column_stack([own[node, None] * q + np.arange(q), other[:, None] * q + np.arange(q),
                            r * q + node]).ravel()
    vals = np.column_stack([-f[node], f[node], -np.ones(len(node))]).ravel()
    A_ub = sp.csr_matrix((vals, (rows, cols)), shape=(len(node), r * q + n))
    bounds = [(-box, box) if box else (None, None)] * (r * q) + [(0, None)] * n
    return linprog(np.concatenate([np.zeros(r * q), cost]), A_ub=A_ub, b_ub=-np.ones(len(node)),
                   bounds=bounds, method="highs")


def labelling_scores(
    features: np.ndarray, task: DownstreamTask, labelling: np.ndarray
) -> np.ndarray | None:
    """Bᵀf(x) (n, r) of the head fitted to a node labelling ℓ by a linear program (HiGHS): soft
    margin, minimise Σ_x w_x ξ_x subject to (b_ℓ(x) − b_c)ᵀ f(x) ≥ 1 − ξ_x for every c ≠ ℓ(x),
    ξ ≥ 0, |B_ij| ≤ :data:`HEAD_BOX` on features scaled to unit weighted RMS. Above
    :data:`LP_MAX_ENTRIES` a logistic regression of ℓ weighted by w stands in for the LP."""
    w, r = task.degrees, task.num_classes
    nodes = np.flatnonzero(w > 0)
    own = np.asarray(labelling, dtype=np.int64)[nodes]
    if len(nodes) * (r - 1) * (2 * features.shape[1] + 1) > LP_MAX_ENTRIES:
        return _logistic(features, w, nodes, own, w[nodes], r, 100.0)
    scale = _scale(features, w)
    res = _margin_lp(features[nodes] / scale, own, r, w[nodes] / w[nodes].mean(), HEAD_BOX)
    if res.x is None:
        return None
    return features @ (res.x[: r * features.shape[1]].reshape(r, -1).T / scale[:, None])


def head_error(scores: np.ndarray, task: DownstreamTask) -> float:
    """The vote error of the head with these scores (n, r), ties at a node's top counted against
    the vote: a tied node adds no vote to the true class and a vote to each tied class. A head
    with exact ties is the limit of heads without (B + εΔ): each of those gives every tied node
    one of its tied classes, so this is an upper bound on their error (equal without ties)."""
    top = scores.max(1, keepdims=True)
    scale = np.abs(scores[np.isfinite(scores)]).max(initial=0.0)
    tied = scores >= top - SCORE_TIE * max(scale, 1e-300)  # (n, r) the classes a node may take
    alone = tied & (tied.sum(1, keepdims=True) == 1)
    own = np.asarray(task.vote(alone.astype(float)))
    rivals = np.asarray(task.vote(tied.astype(float)))
    y = task.natural_labels
    rivals[np.arange(len(y)), y] = own[np.arange(len(y)), y]
    return float(task.natural_p @ errors_of_votes(rivals, y))


def search_labelling(
    task: DownstreamTask, start: np.ndarray, *, max_passes: int = 30
) -> np.ndarray:
    """A node labelling (n,) no single relabelling improves, by local search from ``start``.

    Nodes are visited in order; a node takes the class that lowers the vote error most (strictly)
    given the others, its kernel column updating the votes of the natural data it reaches. Passes
    repeat until one changes nothing. Deterministic. Needs ``task.kernel``.
    """
    if task.kernel is None:
        raise ValueError("search_labelling needs the kernel (task_of_kernel)")
    columns = task.kernel.tocsc()
    labelling = np.array(start, dtype=np.int64)
    y, p, r = task.natural_labels, task.natural_p, task.num_classes
    for _ in range(max_passes):
        votes = np.asarray(task.vote(np.eye(r)[labelling]))  # afresh: no drift across passes
        changed = False
        for x in range(len(labelling)):
            lo, hi = columns.indptr[x], columns.indptr[x + 1]
            rows, share = columns.indices[lo:hi], columns.data[lo:hi]
            if len(rows) == 0:
                continue
            current = labelling[x]
            trial = np.repeat(votes[rows][None], r, axis=0)  # (r, |rows|, r): x given class b
            trial[:, :, current] -= share[None, :]
            trial[np.arange(r), :, np.arange(r)] += share[None, :]
            wrong = errors_of_votes(trial.reshape(-1, r), np.tile(y[rows], r)).reshape(r, -1)
            cost = wrong @ p[rows]
            best = int(np.argmin(cost))
            if cost[best] < cost[current] - 1e-15:
                votes[rows] = trial[best]
                labelling[x] = best
                changed = True
        if not changed:
            break
    return labelling


def _vote_mip(
    A: sp.csr_matrix, p: np.ndarray, y: np.ndarray, r: int, time_limit: float,
    cuts: list[np.ndarray] = (),
) -> tuple[float, np.ndarray | None, bool]:
    """The least vote error over labellings of A's columns, ties counted correct (HiGHS MIP).

    Binaries z[x, c] (one class per column) and s[x̄] (x̄ correct): maximise Σ p s subject to
    Σ_x A[x̄, x](z[x, y(x̄)] − z[x, c]) ≥ −(1 − s[x̄]) for every c ≠ y(x̄), and Σ_{(x, c) ∈ cut}
    z[x, c] ≤ |cut| − 1 for each cut (flat indices x r + c). Rows of A with the same label and
    entries (to 1e-15, far below the solver's 1e-7) are one row of summed p.

    Returns:
        (lower bound on the error: the optimum, or the dual bound when ``time_limit`` stopped
        the solver; the best labelling found or None; whether the optimum was proved).
    """
    A = sp.csr_matrix(A[p > 0])
    y, p = y[p > 0], p[p > 0]
    merged: dict[tuple, int] = {}
    index = np.array([merged.setdefault((y[i], A.indices[A.indptr[i]:A.indptr[i + 1]].tobytes(),
                                         np.round(A.data[A.indptr[i]:A.indptr[i + 1]], 15)
                                         .tobytes()), len(merged)) for i in range(len(p))])
    first = np.unique(index, return_index=True)[1]
    A, y, p = A[first], y[first], np.bincount(index, weights=p)
    unit, n = p.min(), A.shape[1]
    nz, ns = n * r, len(p)
    rows = []
    for c in range(r):  # x̄ of another class: own votes − c's votes − s ≥ −1
        keep = np.flatnonzero(y != c)
        sub = A[keep].tocoo()
        rows.append(sp.csr_matrix((
            np.concatenate([sub.data, -sub.data, -np.ones(len(keep))]),
            (np.concatenate([sub.row, sub.row, np.arange(len(keep))]),
             np.concatenate([sub.col * r + y[keep][sub.row], sub.col * r + c, nz + keep]))),
            shape=(len(keep), nz + ns)))
    one = sp.csr_matrix((np.ones(nz), (np.repeat(np.arange(n), r), np.arange(nz))),
                        shape=(n, nz + ns))
    constraints = [LinearConstraint(sp.vstack(rows).tocsr(), -1.0, np.inf),
                   LinearConstraint(one, 1.0, 1.0)]
    if len(cuts):
        at = np.concatenate([np.full(len(cut), i) for i, cut in enumerate(cuts)])
        matrix = sp.csr_matrix((np.ones(len(at)), (at, np.concatenate(cuts))),
                               shape=(len(cuts), nz + ns))
        constraints.append(LinearConstraint(matrix, -np.inf, [len(cut) - 1 for cut in cuts]))
    res = milp(np.concatenate([np.zeros(nz), -p / unit]), integrality=np.ones(nz + ns),
               bounds=Bounds(0, 1), constraints=constraints,
               options={"time_limit": max(time_limit, 0.5), "mip_rel_gap": 0.0})
    labels = None if res.x is None else res.x[:nz].reshape(n, r).argmax(1)
    if res.status == 0:  # optimal: the incumbent, within HiGHS's absolute gap 1e-6 of `unit`
        return max(0.0, p.sum() + res.fun * unit), labels, True
    dual = res.mip_dual_bound
    bound = p.sum() + dual * unit if dual is not None and np.isfinite(dual) else 0.0
    return max(0.0, bound), labels, False


@dataclass(frozen=True)
class LabellingBound:
    """The least vote error over all node labellings: a lower bound on E(f) for every f.

    Attributes:
        lower: certified lower bound on that least error (up to HiGHS's tolerances; ties of the
            vote counted correct, see :func:`labelling_bound`).
        best_found: the vote error of ``labelling``, the best labelling found.
        labelling: (n,) that labelling.
        exact: lower == best_found (the least error is known).
        method: one line saying how ``lower`` was obtained.
    """

    lower: float
    best_found: float
    labelling: np.ndarray
    exact: bool
    method: str


def labelling_bound(
    task: DownstreamTask, *, time_limit: float = DEFAULT_TIME_LIMIT,
    starts: tuple[np.ndarray, ...] = (),
) -> LabellingBound:
    """:class:`LabellingBound` of the task: min over all node labellings ℓ of the vote error.

    Any head on any f labels the nodes (argmax Bᵀf(x)), so this minimum is a lower bound on E(f)
    for every f. Local search (:func:`search_labelling`, from α's labelling argmax_c M[x, c] and
    ``starts``) finds a good labelling; when its error is 0 the bound is 0, exactly, at once.
    Otherwise, per connected component of the graph where that labelling errs, a mixed-integer
    program (:func:`_vote_mip`: binaries z[x, c], one class per node, and s[x̄], x̄ counted
    correct; maximise Σ p s subject to Σ_x A[x̄, x](z[x, y(x̄)] − z[x, c]) ≥ −(1 − s[x̄]) for
    every c ≠ y(x̄)). A correct vote is strict ('>'); the MIP asks '≥', which counts ties correct:
    that can only lower the minimum, so the bound stays valid (and is below the least error
    wherever the best labellings tie votes). The optimum, or the solver's dual bound when
    ``time_limit`` (seconds, all components together) stops it, is the certified lower bound.
    Without a kernel (matrix-free graphs) the bound is the trivial E ≥ 0.
    """
    labelling = np.asarray(task.mass.argmax(1), dtype=np.int64)
    if task.kernel is None:
        error = vote_error(labelling, task)
        method = "exact: α's labelling has vote error 0" if error == 0 else "trivial: E ≥ 0"
        return LabellingBound(0.0, error, labelling, error == 0.0, method)
    found = [search_labelling(task, start) for start in (labelling, *starts)]
    labelling = min(found, key=lambda ell: vote_error(ell, task))
    best = vote_error(labelling, task)
    if best == 0.0:
        return LabellingBound(0.0, 0.0, labelling, True, "exact: a labelling with vote error 0")
    if 2 * (task.num_classes - 1) * task.kernel.nnz > MIP_MAX_ENTRIES:
        return LabellingBound(0.0, best, labelling, False,
                              "trivial: E ≥ 0 (graph too large for the labelling MIP)")
    m, n = task.kernel.shape
    live = sp.diags((task.natural_p > 0).astype(float)) @ task.kernel
    _, part = connected_components(sp.bmat([[None, live], [live.T, None]]), directed=False)
    wrong = errors_of_votes(np.asarray(task.vote(np.eye(task.num_classes)[labelling])),
                            task.natural_labels) & (task.natural_p > 0)
    pending = np.unique(part[:m][wrong])
    lower, proved, deadline = 0.0, True, time.monotonic() + time_limit
    for i, component in enumerate(pending):
        rows, nodes = np.flatnonzero(part[:m] == component), np.flatnonzero(part[m:] == component)
        budget = (deadline - time.monotonic()) / (len(pending) - i)
        part_lower, labels, optimal = _vote_mip(
            task.kernel[rows][:, nodes], task.natural_p[rows], task.natural_labels[rows],
            task.num_classes, budget)
        trial = labelling.copy()
        if labels is not None:
            trial[nodes] = labels
            labelling = min(labelling, trial, key=lambda ell: vote_error(ell, task))
        lower, proved = lower + part_lower, proved and optimal
    best = vote_error(labelling, task)
    lower = min(lower, best)
    if best - lower <= 1e-12:
        method = "all node labellings, exact (MIP, HiGHS)"
    elif proved:
        method = "all node labellings, exact with ties of the vote counted correct (MIP, HiGHS)"
    else:
        method = (f"all node labellings, MIP dual bound after {time_limit:.0f} s "
                  f"(gap {100 * (best - lower):.1f} points)")
    return LabellingBound(lower, best, labelling, best - lower <= 1e-12, method)


def _realise(points: np.ndarray, labels: np.ndarray, r: int) -> tuple[np.ndarray | None, list]:
    """Is the labelling of these points strictly realised by a linear head? (B (q, r), []) if
    so (margin 1); else (None, the points of an infeasible subsystem), read off the LP's duals:
    they combine its constraints into 0 ≥ (positive), so no head gives those points those labels.
    """
    res = _margin_lp(points, labels, r, np.ones(len(points)), None)
    if res.status == 0 and res.fun <= 1e-9:
        return res.x[: r * points.shape[1]].reshape(r, -1).T, []
    everything = list(range(len(points)))
    if res.status != 0 or res.ineqlin is None:
        return None, everything
    dual = -res.ineqlin.marginals  # ≥ 0, one per (point, rival class)
    subset = sorted(set(np.flatnonzero(dual > 1e-9) // (r - 1)))
    again = _margin_lp(points[subset], labels[subset], r, np.ones(len(subset)), None)
    proved = subset and again.status == 0 and again.fun > 1e-7  # the subset alone is infeasible
    return None, subset if proved else everything


def _group_search(points, group, task, labels, deadline):
    """Local search over realisable labellings of the distinct points: a point takes another
    class when that lowers the vote error and a head still realises the labelling."""
    r = task.num_classes
    error = vote_error(labels[group], task)
    improved = True
    while improved:
        improved = False
        for g in range(len(points)):
            if time.monotonic() > deadline:
                return labels
            for c in range(r):
                trial = labels.copy()
                trial[g] = c
                trial_error = vote_error(trial[group], task)
                if trial_error < error - 1e-15 and _realise(points, trial, r)[0] is not None:
                    labels, error, improved = trial, trial_error, True
    return labels


def _groups(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """f's distinct rows to :data:`GROUP_TOLERANCE`: (index of each one's first row, the group
    of every row)."""
    key = np.round(features / (max(np.abs(features).max(), 1e-300) * GROUP_TOLERANCE))
    _, first, group = np.unique(key, axis=0, return_index=True, return_inverse=True)
    return first, group.ravel()


def _group_bracket(features, task, first, group, starts, time_limit):
    """Over f's distinct rows (:func:`_groups`): a lower bound on E(f) (the least vote error of
    labellings constant on them, ties counted correct, refined by cuts that exclude labellings
    no head realises) and the scores of heads realising searched labellings."""
    points, r, start_time = features[first], task.num_classes, time.monotonic()
    heads = []
    for start in starts:  # above: each realisable start searched, for half the time
        labels = np.array([np.bincount(start[group == g], minlength=r).argmax()
                           for g in range(len(points))])
        if _realise(points, labels, r)[0] is not None:
            labels = _group_search(points, group, task, labels, start_time + time_limit / 2)
            heads.append(features @ _realise(points, labels, r)[0])
    merged = task.kernel @ sp.csr_matrix((np.ones(len(group)), (np.arange(len(group)), group)))
    lower, cuts, exact, deadline = 0.0, [], False, start_time + time_limit
    while True:  # below: the MIP, cut until a head realises its optimum or time runs out
        bound, labels, optimal = _vote_mip(merged.tocsr(), task.natural_p, task.natural_labels,
                                           r, deadline - time.monotonic(), cuts)
        lower = max(lower, bound)
        if labels is None or not optimal:
            break
        head, subset = _realise(points, labels, r)
        if head is not None:
            heads.append(features @ head)
            exact = True
            break
        if not np.abs(points).max(1).all():  # a row 0 ties every head: no head is strict there,
            break  # and a cut would exclude what a tied head's error is measured against
        cuts.append(np.array([g * r + labels[g] for g in subset]))
        if time.monotonic() >= deadline:
            break
    rounds = f"{len(cuts)} cut{'s' * (len(cuts) != 1)}"
    method = (f"labellings of f's {len(points)} distinct rows that a head realises, "
              + ("exact" if exact else "bound") + f" with ties of the vote counted correct "
              f"(MIP, HiGHS, {rounds})")
    return lower, method, heads


@dataclass(frozen=True)
class ErrorBracket:
    """lower ≤ E(f) ≤ upper.

    Attributes:
        upper: the least vote error among the heads tried (a real head: E(f) ≤ upper).
        head: the head that gave it: "least squares", "logistic", "fitted to a searched
            labelling" or "realising a searched labelling".
        lower: the larger of the labelling bound's (:class:`LabellingBound`, or 0.0) and, when
            f has few distinct rows, the bound over labellings that a head on f realises.
        lower_method: how ``lower`` was obtained (one line).
        least_squares: the least-squares head's vote error, its score ties broken to the first
            class (:func:`explorer.graphs.guarantee.downstream_error_of`, what the project reported
            before): above E(f) whenever no score ties (else perhaps no head's error).
    """

    upper: float
    head: str
    lower: float
    lower_method: str
    least_squares: float

    @property
    def exact(self) -> bool:
        return self.upper - self.lower <= 1e-12


def error_bracket(
    features: np.ndarray, task: DownstreamTask, labelling: LabellingBound | None = None,
    *, group_time_limit: float = 2.0,
) -> ErrorBracket:
    """:class:`ErrorBracket` of the paper's E(f) for features f (n, d) on the task's graph.

    Heads tried: least squares, logistic (:func:`logistic_scores`) and, when the kernel is held,
    the head fitted (:func:`labelling_scores`) to ``labelling.labelling`` and to the labelling
    searched (:func:`search_labelling`) from the least-squares predictions. Each head's error is
    :func:`head_error` (ties against it). ``labelling`` is the graph's :func:`labelling_bound`
    (computed once per graph by the caller); None gives the trivial lower bound 0.

    When the kernel is held and f has at most :data:`GROUP_LIMIT` distinct rows (f* of a
    symmetric graph: tens), both ends are refined over those rows for ``group_time_limit``
    seconds: below, the least vote error of labellings constant on them (every head's is), with
    cuts excluding labellings no head realises (an infeasible LP's dual certificate); above,
    local search among realisable labellings, from each head's ("realising a searched
    labelling").
    """
    least = least_squares_scores(features, task)
    tried = [("least squares", least), ("logistic", logistic_scores(features, task))]
    if task.kernel is not None:
        targets = [search_labelling(task, least.argmax(1))]
        if labelling is not None:
            targets.insert(0, labelling.labelling)
        tried += [("fitted to a searched labelling", labelling_scores(features, task, target))
                  for target in targets]
    if labelling is None:
        lower, method = 0.0, "trivial: E ≥ 0 (no labelling bound on this graph)"
    else:
        lower, method = labelling.lower, labelling.method
    first, group = _groups(features) if task.kernel is not None else ((), None)
    if 0 < len(first) <= GROUP_LIMIT:
        starts = [scores.argmax(1) for _, scores in tried if scores is not None]
        group_lower, group_method, heads = _group_bracket(features, task, first, group, starts,
                                                          group_time_limit)
        tried += [("realising a searched labelling", scores) for scores in heads]
        if group_lower > lower:
            lower, method = group_lower, group_method
    errors = [(head_error(scores, task), name) for name, scores in tried if scores is not None]
    upper, head = min(errors, key=lambda pair: pair[0])  # first of equals: least squares first
    least_error = vote_error(least.argmax(1), task)  # ties to the first class, as always
    return ErrorBracket(float(upper), head, float(min(lower, upper)), method, least_error)
