"""The paper's E(f), its bracket and the bounds on E(f*), against brute force on small graphs.

Every quantity the package computes is recomputed here by enumeration and plain loops, written
independently of the package: every node labelling, its majority vote (own class strictly above
every other, else an error), which labellings a linear head on f* realises strictly (an LP with
margin 1), and E(f*) as the least vote error among those.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.optimize import linprog

from explorer.graphs import downstream_error as DE
from explorer.graphs import guarantee as GU

SEEDS = range(120)


def random_graph(seed: int):
    """A (m, n) with continuous random entries (no two vote sums tie), p > 0, labels y."""
    rng = np.random.default_rng(seed)
    m, n, r = int(rng.integers(3, 7)), int(rng.integers(4, 8)), int(rng.integers(2, 4))
    A = rng.random((m, n)) * (rng.random((m, n)) < 0.5)
    A[np.arange(m), rng.integers(0, n, m)] += rng.random(m) + 0.05  # every datum reaches a node
    A[rng.integers(0, m, n), np.arange(n)] += rng.random(n) + 0.05  # every node is reached
    A /= A.sum(1, keepdims=True)
    p = rng.random(m) + 0.05
    return A, p / p.sum(), rng.integers(0, r, m), r, rng


def optimum(A, p, rng):
    """(f* = D^{-1/2} V_k Γ^{1/2} (n, k), γ descending, k) with γ_k > γ_{k+1} and γ_k > 0."""
    W = A.T @ np.diag(p) @ A
    w = W.sum(1)
    gammas, vectors = np.linalg.eigh(W / np.sqrt(np.outer(w, w)))
    gammas, vectors = gammas[::-1], vectors[:, ::-1]
    ks = [k for k in range(1, len(w)) if gammas[k - 1] - gammas[k] > 1e-8 and gammas[k - 1] > 1e-8]
    k = int(rng.choice(ks))
    return vectors[:, :k] * np.sqrt(gammas[:k]) / np.sqrt(w)[:, None], gammas, k


def loop_vote_error(A, p, y, labels, r) -> float:
    wrong = 0.0
    for i in range(len(p)):
        votes = [0.0] * r
        for x in range(A.shape[1]):
            votes[labels[x]] += A[i, x]
        if not all(votes[y[i]] > votes[c] for c in range(r) if c != y[i]):
            wrong += p[i]
    return wrong


def loop_mass(A, p, y, r):
    M = np.zeros((A.shape[1], r))
    for i in range(len(p)):
        for x in range(A.shape[1]):
            M[x, y[i]] += p[i] * A[i, x]
    return M


def realisable(f, labels, r) -> bool:
    """Some B (k, r) with (b_ℓ(x) − b_c)ᵀ f(x) ≥ 1 for every node x and c ≠ ℓ(x)."""
    n, k = f.shape
    rows = []
    for x in range(n):
        for c in range(r):
            if c != labels[x]:
                row = np.zeros((r, k))
                row[labels[x]] -= f[x]
                row[c] += f[x]
                rows.append(row.ravel())
    res = linprog(np.zeros(r * k), A_ub=np.array(rows), b_ub=-np.ones(len(rows)),
                  bounds=[(None, None)] * (r * k), method="highs")
    assert res.status in (0, 2), res.message
    return res.status == 0


def brute_force(A, p, y, r, f):
    """(least vote error over all labellings, E(f) over strictly realisable ones, per-view error
    of the best realisable labelling for that)."""
    M = loop_mass(A, p, y, r)
    labellings = [np.array(ell) for ell in itertools.product(range(r), repeat=A.shape[1])]
    errors = [loop_vote_error(A, p, y, ell, r) for ell in labellings]
    per_view = [sum(M[x].sum() - M[x, ell[x]] for x in range(len(ell))) for ell in labellings]
    exact = next(errors[i] for i in np.argsort(errors, kind="stable")
                 if realisable(f, labellings[i], r))
    view = next(per_view[i] for i in np.argsort(per_view, kind="stable")
                if realisable(f, labellings[i], r))
    return min(errors), exact, view


@pytest.fixture(scope="module")
def cases():
    out = []
    for seed in SEEDS:
        A, p, y, r, rng = random_graph(seed)
        f, gammas, k = optimum(A, p, rng)
        out.append((A, p, y, r, f, gammas, k, brute_force(A, p, y, r, f), rng))
    return out


def test_alpha_and_the_vote_error_are_the_loops(cases) -> None:
    assert len(cases) >= 100
    for A, p, y, r, f, *_ in cases:
        task = GU.task_of_kernel(A, p, y, r)
        M = loop_mass(A, p, y, r)
        alpha = sum(M[x].sum() - M[x].max() for x in range(len(M)))
        assert task.alpha == pytest.approx(alpha, abs=1e-12) and task.alpha >= 0
        labels = np.argmax(f @ np.ones((f.shape[1], r)) + np.arange(r), axis=1)
        assert GU.vote_error(labels, task) == pytest.approx(loop_vote_error(A, p, y, labels, r))


def test_the_labelling_bound_is_the_least_error_of_all_labellings(cases) -> None:
    positive = 0
    for A, p, y, r, _, _, _, (least, _, _), _ in cases:
        bound = DE.labelling_bound(GU.task_of_kernel(A, p, y, r))
        assert bound.lower <= least + 1e-12
        assert bound.lower == pytest.approx(least, abs=1e-9) and bound.exact
        assert bound.best_found == pytest.approx(least, abs=1e-9)
        positive += least > 0
    assert positive >= 20  # the MIP ran, not only the shortcut


def test_the_bracket_holds_the_paper_error_of_the_optimum(cases) -> None:
    beaten = 0
    for A, p, y, r, f, _, _, (least, exact, _), rng in cases:
        task = GU.task_of_kernel(A, p, y, r)
        bound = DE.labelling_bound(task)
        bracket = DE.error_bracket(f, task, bound, group_time_limit=2.0)
        assert least - 1e-9 <= bracket.lower <= exact + 1e-9
        assert exact <= bracket.upper + 1e-9  # a real head's error
        assert bracket.lower <= bracket.upper
        assert bracket.least_squares >= exact - 1e-9
        beaten += bracket.upper < bracket.least_squares - 1e-12
        for _ in range(5):  # no head beats the lower bound
            head = rng.normal(size=(f.shape[1], r))
            error = loop_vote_error(A, p, y, np.argmax(f @ head, axis=1), r)
            assert error >= bracket.lower - 1e-9 and error >= bound.lower - 1e-9
    assert beaten >= 1  # least squares is not always the best head


def test_the_eigenvalue_bounds_hold(cases) -> None:
    finite = 0
    for A, p, y, r, _, gammas, k, (_, exact, view), _ in cases:
        alpha = GU.task_of_kernel(A, p, y, r).alpha
        assert GU.eigenvalue_bound(alpha, gammas[k]) >= exact - 1e-9
        assert GU.per_view_bound(alpha, gammas[k]) >= view - 1e-9
        finite += alpha > 0 and GU.eigenvalue_bound(alpha, gammas[k]) < 1
    assert finite >= 1  # some bounds say something


def test_the_proofs_head_meets_each_step(cases) -> None:
    """docs/THEORY.md's proof, step by step, with its own head b_c = (⟨v_i, h_c⟩/√γ_i)_i."""
    for A, p, y, r, f, gammas, k, _, _ in cases:
        M = loop_mass(A, p, y, r)
        w, hat = M.sum(1), M.argmax(1)
        alpha, lam = GU.alpha_of_mass(M), 1 - gammas[k]
        W = A.T @ np.diag(p) @ A
        phi = sum(W[x, z] for x in range(len(w)) for z in range(len(w)) if hat[x] != hat[z])
        assert phi <= 2 * alpha + 1e-12  # step 2
        vectors = f * np.sqrt(w)[:, None] / np.sqrt(gammas[:k])  # v_i, i ≤ k
        h = np.sqrt(w)[:, None] * np.eye(r)[hat]  # (n, r) the h_c
        rest = h - vectors @ (vectors.T @ h)
        assert (rest**2).sum() <= phi / lam + 1e-9  # step 4
        scores = f @ ((vectors.T @ h) / np.sqrt(gammas[:k])[:, None])
        assert scores == pytest.approx(np.eye(r)[hat] - rest / np.sqrt(w)[:, None])  # step 5
        tied = scores >= scores.max(1, keepdims=True) - 1e-12
        off = tied.sum(1) > 1
        off |= ~tied[np.arange(len(w)), hat]
        assert w @ off <= 2 * (rest**2).sum() + 1e-12 <= 4 * alpha / lam + 1e-9  # step 6
        view = sum(M[x].sum() - (0 if off[x] else M[x, hat[x]]) for x in range(len(w)))
        assert view <= GU.per_view_bound(alpha, gammas[k]) + 1e-9  # step 7
        task = GU.task_of_kernel(A, p, y, r)
        assert DE.head_error(scores, task) <= GU.eigenvalue_bound(alpha, gammas[k]) + 1e-9


def test_alpha_zero_gives_zero_without_a_mip(monkeypatch) -> None:
    def no_mip(*args, **kwargs):
        raise AssertionError("the MIP ran")

    monkeypatch.setattr(DE, "milp", no_mip)
    # two classes on disjoint nodes: each node is produced by one class only
    A = np.array([[0.6, 0.4, 0, 0], [0.1, 0.9, 0, 0], [0, 0, 0.5, 0.5]])
    task = GU.task_of_kernel(A, np.array([0.3, 0.3, 0.4]), np.array([0, 0, 1]), 2)
    assert task.alpha == 0.0
    bound = DE.labelling_bound(task)
    assert bound.lower == 0.0 and bound.exact and bound.best_found == 0.0


def test_alpha_rounds_to_zero_and_the_bounds_at_the_edges() -> None:
    mass = np.array([[0.5, 1e-17], [0.5 - 1e-17, 0.0]])
    assert GU.alpha_of_mass(mass) == 0.0
    assert GU.theorem_bound(0.0, np.array([1.0, 0.6, 0.2]), 2) == 0.0
    assert GU.theorem_bound(0.0, np.array([1.0, 1.0, 1.0]), 2) == float("inf")  # 3 components
    assert GU.eigenvalue_bound(0.1, 1.0) == float("inf")
    assert GU.per_view_bound(0.1, 1.0) == float("inf")
    assert GU.eigenvalue_bound(0.1, 0.5) == pytest.approx(8 * 0.1 / 0.5 + 0.2)
    assert GU.per_view_bound(0.1, 0.5) == pytest.approx(4 * 0.1 / 0.5 + 0.1)


def test_the_old_form_is_above_the_proved_one_only_for_large_gaps() -> None:
    # 4α/λ + 8α ≥ 8α/λ + 2α ⇔ 6α ≥ 4α/λ ⇔ λ ≥ 2/3 (α > 0)
    lambdas = np.linspace(0.01, 1.0, 100)
    assert len(lambdas) > 0
    for lam in lambdas:
        old = 4 * 0.1 / lam + 8 * 0.1
        assert (old >= GU.eigenvalue_bound(0.1, 1 - lam) - 1e-12) == (lam >= 2 / 3 - 1e-12)


def test_a_tied_head_counts_its_ties_against_the_vote() -> None:
    A, p, y, r, _ = random_graph(0)
    task = GU.task_of_kernel(A, p, y, r)
    assert DE.head_error(np.zeros((A.shape[1], r)), task) == pytest.approx(1.0)
    scores = np.eye(r)[np.arange(A.shape[1]) % r]
    assert DE.head_error(scores, task) == pytest.approx(
        loop_vote_error(A, p, y, np.arange(A.shape[1]) % r, r))


def test_a_matrix_free_task_gets_the_heads_and_the_trivial_bound() -> None:
    A, p, y, r, rng = random_graph(3)
    f, _, _ = optimum(A, p, rng)
    held = GU.task_of_kernel(A, p, y, r)
    free = GU.DownstreamTask(held.mass, lambda P: A @ P, p, y)
    bound = DE.labelling_bound(free)
    assert bound.lower == 0.0 and bound.method.startswith(("trivial", "exact"))
    bracket = DE.error_bracket(f, free, None)
    assert bracket.lower == 0.0 and bracket.lower_method.startswith("trivial")
    assert bracket.head in ("least squares", "logistic")
    assert bracket.least_squares == pytest.approx(GU.downstream_error(f, A, p, y, r))
    assert bracket.upper >= DE.error_bracket(f, held, DE.labelling_bound(held)).upper - 1e-12
