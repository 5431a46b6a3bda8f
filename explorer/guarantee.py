"""Why the features are useful: the paper's downstream quantities on a finite augmentation graph.

HaoChen et al. [0, Section 3.3] bound the linear-probe error of the population optimum f* when
the classes are only *approximately* disconnected components of the augmentation graph. Here
those quantities are computed exactly on a finite graph given by its augmentation kernel:

- A (m, n): A(x | x̄) from each of m natural data x̄ to the n augmented images x (rows sum to 1),
- p (m,): the natural data's probabilities, y (m,): their labels; W = Aᵀ diag(p) A.

:func:`alpha` is Assumption 3.5's α, the least Pr[g(x) ≠ y(x̄)] over labelings g of augmented
images; :func:`downstream_error` is the paper's E(f), a linear head on f(x) and a majority vote
over x ~ A(·|x̄), with the head fitted by least squares (docs/THEORY.md, "The downstream
guarantee"). No model here: :mod:`explorer.theorem` evaluates a network on every node first.

References:
    [0] HaoChen, Wei, Gaidon, Ma, "Provable Guarantees for Self-Supervised Deep Learning with
        Spectral Contrastive Loss", NeurIPS 2021, https://arxiv.org/abs/2106.04156
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def _check(A: np.ndarray, p: np.ndarray, y: np.ndarray) -> None:
    if A.ndim != 2 or p.shape != (len(A),) or y.shape != (len(A),):
        raise ValueError(f"A (m, n), p (m,) and y (m,) expected, got {A.shape}, {p.shape}, "
                         f"{y.shape}")


def label_mass(A: np.ndarray, p: np.ndarray, y: np.ndarray, num_classes: int) -> np.ndarray:
    """M (n, r): M[x, c] = Pr[x̄ of class c and x ~ A(·|x̄) is x] = Σ_{x̄: y=c} p(x̄) A(x|x̄).

    Its rows sum to the degrees w_x; ``M.argmax(1)`` is the best labeling of augmented images.
    """
    _check(A, p, y)
    return (A * p[:, None]).T @ np.eye(num_classes)[y]


def alpha(A: np.ndarray, p: np.ndarray, y: np.ndarray, num_classes: int) -> float:
    """Assumption 3.5's α [0]: min over g of Pr_{x̄, x ~ A(·|x̄)}[g(x) ≠ y(x̄)].

    The best g labels each image with the class that produces it most often, so
    α = 1 − Σ_x max_c M[x, c] (:func:`label_mass`): 0 when no augmentation changes a class.
    """
    return alpha_of_mass(label_mass(A, p, y, num_classes))


def alpha_of_mass(mass: np.ndarray) -> float:
    """α from the label mass M (n, r) of :func:`label_mass`: 1 − Σ_x max_c M[x, c]."""
    return float(1.0 - mass.max(axis=1).sum())


def least_squares_head(
    features: np.ndarray, A: np.ndarray, p: np.ndarray, y: np.ndarray, num_classes: int
) -> np.ndarray:
    """B (d, r) minimising E_{x̄, x ~ A(·|x̄)} ‖Bᵀf(x) − e_{y(x̄)}‖²: the linear head of the
    paper's proof (regression of the natural label on the augmented image's features),
    fitted on every node, each weighted by how often the graph produces it.

    Args:
        features: f (n, d), one row per augmented image.
    """
    return head_of_mass(features, label_mass(A, p, y, num_classes))


def head_of_mass(features: np.ndarray, mass: np.ndarray) -> np.ndarray:
    """:func:`least_squares_head` from the label mass M (n, r): E_w[f fᵀ]⁻¹ fᵀ M, w = M·1."""
    w = mass.sum(1)  # (n,) the degrees
    gram = (features.T * w) @ features  # E_w[f fᵀ], (d, d)
    return np.linalg.lstsq(gram, features.T @ mass, rcond=None)[0]


def vote_errors(
    predictions: np.ndarray, A: np.ndarray, y: np.ndarray, num_classes: int
) -> np.ndarray:
    """Whether the majority vote over x ~ A(·|x̄) of ``predictions`` (n,) misses y(x̄): (m,) bool.

    The vote of class c is Σ_x A(x|x̄) 1[pred(x) = c]; a tie with the true class counts as an
    error (the vote does not name it).
    """
    return errors_of_votes(A @ np.eye(num_classes)[predictions], y)


def errors_of_votes(votes: np.ndarray, y: np.ndarray) -> np.ndarray:
    """:func:`vote_errors` from the votes (m, r) = A·onehot(predictions): own class ≤ another."""
    votes = votes.copy()
    own = votes[np.arange(len(y)), y]
    votes[np.arange(len(y)), y] = -np.inf
    return own <= votes.max(axis=1)


def downstream_error(
    features: np.ndarray, A: np.ndarray, p: np.ndarray, y: np.ndarray, num_classes: int
) -> float:
    """The paper's E(f) [0, Section 3.3] with the least-squares head: Pr_{x̄}[ḡ(x̄) ≠ y(x̄)], ḡ
    the majority vote over x ~ A(·|x̄) of argmax Bᵀf(x), B = :func:`least_squares_head`.

    The paper takes the min over B; this head is the one its proof uses, so the value is an
    upper bound on the paper's E(f) (equal to it whenever the head is perfect).

    Args:
        features: f (n, d) of every augmented image (node) of the graph.
        A, p, y: the augmentation kernel (m, n), natural probabilities (m,) and labels (m,).
    """
    _check(A, p, y)
    return downstream_error_of(features, label_mass(A, p, y, num_classes), lambda P: A @ P, p, y)


def downstream_error_of(
    features: np.ndarray, mass: np.ndarray, vote: Callable[[np.ndarray], np.ndarray],
    p: np.ndarray, y: np.ndarray,
) -> float:
    """:func:`downstream_error` from the two products it needs of A, for a kernel too large to
    form (:class:`explorer.kron_graph.KronGraph`): the label mass M (n, r) and ``vote``,
    P (n, r) ↦ A P (m, r)."""
    predictions = np.argmax(features @ head_of_mass(features, mass), axis=1)
    votes = vote(np.eye(mass.shape[1])[predictions])
    return float(p @ errors_of_votes(votes, y))


def spectral_partition_bound(gammas: np.ndarray, m: int) -> float:
    """A certified lower bound on the sparsest m-partition ρ_m [0, Definition 3.4]: (1 − γ_m)/2.

    For disjoint sets S₁..S_m the D-weighted Rayleigh quotient of any combination of their
    indicators is at most 2·maxᵢ φ(Sᵢ) (Dirichlet conductance), so by Courant–Fischer the m-th
    smallest eigenvalue 1 − γ_m of the normalised Laplacian is at most 2ρ_m (the easy side of the
    higher-order Cheeger inequality, Lee, Oveis Gharan and Trevisan, J. ACM 2014).

    Args:
        gammas: eigenvalues of Ā, largest first (at least m of them).
        m: the number of parts, 1 ≤ m ≤ len(gammas).
    """
    if not 1 <= m <= len(gammas):
        raise ValueError(f"m must be in [1, {len(gammas)}], got {m}")
    return max(0.0, (1.0 - float(gammas[m - 1])) / 2.0)


def theorem_bound(alpha_value: float, gammas: np.ndarray, k: int) -> float:
    """Theorem 3.7's α·log k / ρ²_{⌊k/2⌋} [0] with the Õ's constant set to 1 and ρ_{⌊k/2⌋}
    replaced by its spectral lower bound (:func:`spectral_partition_bound`): an order of
    magnitude, not a certified bound (the theorem hides a universal constant). ``inf`` when the
    bound on ρ is 0 (⌊k/2⌋ = 1, or γ_{⌊k/2⌋} = 1: as many components as parts)."""
    rho = spectral_partition_bound(gammas, max(1, k // 2))
    return alpha_value * max(np.log(k), 1.0) / rho**2 if rho > 0 else float("inf")


def eigenvalue_bound(alpha_value: float, gamma_next: float) -> float:
    """The γ_{k+1} form of the bound, 4α/(1 − γ_{k+1}) + 8α, with λ_{k+1} = 1 − γ_{k+1} the
    (k+1)-th smallest eigenvalue of the normalised Laplacian (docs/THEORY.md, "The downstream
    guarantee", says where this form was read). ``inf`` when γ_{k+1} = 1."""
    gap = 1.0 - gamma_next
    return 4.0 * alpha_value / gap + 8.0 * alpha_value if gap > 1e-12 else float("inf")


def approximate_minimiser_regime(
    excess_loss: float, gammas: np.ndarray, k: int
) -> dict[str, float | bool]:
    """Theorem 4.2's conditions [0] for a network with loss ε = L(f) − L* above the optimum:
    ε < γ_k² and the eigen-gap Δ_γ = γ_{⌊3k/4⌋} − γ_k in its second term kε/Δ_γ².

    Returns:
        ``{"epsilon", "gamma_k_sq", "eigengap", "in_regime", "excess_term"}``: the theorem
        applies only when ``in_regime`` (ε < γ_k²); ``excess_term`` = kε/Δ_γ² (constant 1).
    """
    gamma_k = float(gammas[k - 1])
    gap = float(gammas[max(1, (3 * k) // 4) - 1]) - gamma_k
    return {
        "epsilon": float(excess_loss),
        "gamma_k_sq": gamma_k**2,
        "eigengap": gap,
        "in_regime": bool(excess_loss < gamma_k**2),
        "excess_term": k * excess_loss / gap**2 if gap > 0 else float("inf"),
    }
