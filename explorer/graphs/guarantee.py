"""Why the features are useful: the paper's downstream quantities on a finite augmentation graph.

HaoChen et al. [0, Section 3.3] bound the linear-probe error of the population optimum f* when
the classes are only *approximately* disconnected components of the augmentation graph. Here
those quantities are computed exactly on a finite graph given by its augmentation kernel:

- A (m, n): A(x | x̄) from each of m natural data x̄ to the n augmented images x (rows sum to 1),
- p (m,): the natural data's probabilities, y (m,): their labels; W = Aᵀ diag(p) A.

:class:`DownstreamTask` holds what the downstream error needs of a graph (the label mass, the
vote, and the kernel when it is small enough to hold); :func:`alpha` is Assumption 3.5's α;
:func:`vote_error` is the majority vote's error of one labelling of the nodes. The paper's E(f),
a minimum over every linear head, is bracketed in :mod:`explorer.graphs.downstream_error` (the
heads,
the search over labellings and the lower bound); this module keeps the least-squares head, whose
error (:func:`downstream_error`) is only an upper bound on E(f), and the bounds on E(f*)
(:func:`eigenvalue_bound`, :func:`per_view_bound`, proved in docs/THEORY.md, "The downstream
guarantee"). No model here: :mod:`explorer.analysis.theorem` evaluates a network on every node
first.

References:
    [0] HaoChen, Wei, Gaidon, Ma, "Provable Guarantees for Self-Supervised Deep Learning with
        Spectral Contrastive Loss", NeurIPS 2021, https://arxiv.org/abs/2106.04156
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

ALPHA_ZERO = 1e-12
"""α below this is rounded to exactly 0 (1 − a sum of masses that is 1 leaves ±2e-16)."""

TIE_TOLERANCE = 1e-12
"""A class's vote within this of the true class's counts as a tie (an error): the votes are sums
of kernel entries, and two sums equal in exact arithmetic can differ by rounding."""

GAP_FLOOR = 1e-12
"""A spectral gap 1 − γ_{k+1} at or below this makes the eigenvalue bounds infinite."""


def _check(A: np.ndarray | sp.spmatrix, p: np.ndarray, y: np.ndarray) -> None:
    if len(A.shape) != 2 or p.shape != (A.shape[0],) or y.shape != (A.shape[0],):
        raise ValueError(f"A (m, n), p (m,) and y (m,) expected, got {A.shape}, {p.shape}, "
                         f"{y.shape}")


def label_mass(A: np.ndarray, p: np.ndarray, y: np.ndarray, num_classes: int) -> np.ndarray:
    """M (n, r): M[x, c] = Pr[x̄ of class c and x ~ A(·|x̄) is x] = Σ_{x̄: y=c} p(x̄) A(x|x̄).

    Its rows sum to the degrees w_x; ``M.argmax(1)`` is the best labeling of augmented images.
    A may be dense or scipy-sparse.
    """
    _check(A, p, y)
    if sp.issparse(A):
        return np.asarray((sp.diags(p) @ A).T @ np.eye(num_classes)[y])
    return (A * p[:, None]).T @ np.eye(num_classes)[y]


def alpha(A: np.ndarray, p: np.ndarray, y: np.ndarray, num_classes: int) -> float:
    """Assumption 3.5's α [0]: min over g of Pr_{x̄, x ~ A(·|x̄)}[g(x) ≠ y(x̄)].

    The best g labels each image with the class that produces it most often, so
    α = 1 − Σ_x max_c M[x, c] (:func:`label_mass`): 0 when no augmentation changes a class.
    """
    return alpha_of_mass(label_mass(A, p, y, num_classes))


def alpha_of_mass(mass: np.ndarray) -> float:
    """α from the label mass M (n, r) of :func:`label_mass`: 1 − Σ_x max_c M[x, c], exactly 0.0
    below :data:`ALPHA_ZERO` (never negative)."""
    value = float(1.0 - mass.max(axis=1).sum())
    return value if value >= ALPHA_ZERO else 0.0


@dataclass(frozen=True, eq=False)
class DownstreamTask:
    """What the downstream error needs of one augmentation graph and its labels.

    Build it with :func:`task_of_kernel` from a kernel A, or directly for a graph too large to
    form (:class:`explorer.graphs.kronecker.KronGraph`: its label mass and its product P ↦ A P).

    Attributes:
        mass: M (n, r) = Aᵀ diag(p) onehot(y) (:func:`label_mass`).
        vote: P (n, r) ↦ A P (m, r): the votes of the natural data for a (soft) labelling P.
        natural_p: p (m,); natural_labels: y (m,).
        kernel: A as scipy.sparse csr (m, n) when held (small graphs): it enables the search over
            labellings, the labelling bound and the head fitted to a labelling; None otherwise.
    """

    mass: np.ndarray
    vote: Callable[[np.ndarray], np.ndarray]
    natural_p: np.ndarray
    natural_labels: np.ndarray
    kernel: sp.csr_matrix | None = None

    @property
    def num_classes(self) -> int:
        return int(self.mass.shape[1])

    @property
    def degrees(self) -> np.ndarray:
        """w (n,): how often the graph produces each node (sums to 1)."""
        return self.mass.sum(1)

    @property
    def alpha(self) -> float:
        """Assumption 3.5's α (:func:`alpha_of_mass`): exactly 0.0 below 1e-12, never negative."""
        return alpha_of_mass(self.mass)


def task_of_kernel(
    A: np.ndarray | sp.spmatrix, p: np.ndarray, y: np.ndarray, num_classes: int
) -> DownstreamTask:
    """:class:`DownstreamTask` of a kernel A (m, n), dense or sparse: A is held as csr."""
    _check(A, p, y)
    kernel = sp.csr_matrix(A, dtype=float)
    y = np.asarray(y, dtype=np.int64)
    return DownstreamTask(label_mass(kernel, p, y, num_classes), lambda P: kernel @ P,
                          np.asarray(p, dtype=float), y, kernel)


def vote_error(predictions: np.ndarray, task: DownstreamTask) -> float:
    """Pr_x̄[the majority vote over x ~ A(·|x̄) of ``predictions`` (n,) misses y(x̄)], exactly; a
    tie with the true class is an error (:func:`errors_of_votes`)."""
    votes = task.vote(np.eye(task.num_classes)[predictions])
    return float(task.natural_p @ errors_of_votes(np.asarray(votes), task.natural_labels))


def least_squares_head(
    features: np.ndarray, A: np.ndarray, p: np.ndarray, y: np.ndarray, num_classes: int
) -> np.ndarray:
    """B (d, r) minimising E_{x̄, x ~ A(·|x̄)} ‖Bᵀf(x) − e_{y(x̄)}‖²: the linear head of the
    regression of the natural label on the augmented image's features, fitted on every node,
    each weighted by how often the graph produces it.

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
    """:func:`vote_errors` from the votes (m, r) = A·onehot(predictions): own class ≤ another
    (within :data:`TIE_TOLERANCE`)."""
    votes = np.array(votes, dtype=float)
    own = votes[np.arange(len(y)), y]
    votes[np.arange(len(y)), y] = -np.inf
    return own <= votes.max(axis=1) + TIE_TOLERANCE


def downstream_error(
    features: np.ndarray, A: np.ndarray, p: np.ndarray, y: np.ndarray, num_classes: int
) -> float:
    """The vote error of the least-squares head (:func:`least_squares_head`): Pr_{x̄}[ḡ(x̄) ≠
    y(x̄)], ḡ the majority vote over x ~ A(·|x̄) of argmax Bᵀf(x).

    The paper's E(f) [0, eq. 1] is the least such error over *every* head B; this one head is
    not the best one in general (it regresses, it does not classify), so the value is only an
    upper bound on E(f). :func:`explorer.graphs.downstream_error.error_bracket` brackets E(f)
    itself.

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
    form (:class:`explorer.graphs.kronecker.KronGraph`): the label mass M (n, r) and ``vote``,
    P (n, r) ↦ A P (m, r)."""
    predictions = np.argmax(features @ head_of_mass(features, mass), axis=1)
    return vote_error(predictions, DownstreamTask(mass, vote, p, y))


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
    bound on ρ is 0 (⌊k/2⌋ = 1, or γ_{⌊k/2⌋} = 1: as many components as parts).

    α = 0 gives 0.0 whenever E(f*) = 0 is proved: the eigenvalue form (:func:`eigenvalue_bound`)
    gives 0 as soon as 1 − γ_{k+1} > 0 (read from ``gammas[k]`` when given, else implied by
    ρ > 0). It stays ``inf`` when γ_{k+1} = 1: more components than k, and then f* can miss a
    whole component (all its scores 0) however clean the labels.
    """
    rho = spectral_partition_bound(gammas, max(1, k // 2))
    if alpha_value == 0.0:
        separated = 1.0 - float(gammas[k]) > GAP_FLOOR if len(gammas) > k else rho > 0
        return 0.0 if separated else float("inf")
    return alpha_value * max(np.log(k), 1.0) / rho**2 if rho > 0 else float("inf")


def eigenvalue_bound(alpha_value: float, gamma_next: float) -> float:
    """E(f*) ≤ 8α/λ + 2α, λ = 1 − γ_{k+1} the (k+1)-th smallest eigenvalue of the normalised
    Laplacian: the majority vote of the best head on the top-k optimum f* (any optimum: any
    choice of top-k eigenvectors, ties γ_k = γ_{k+1} included). Proved from the paper's
    definitions in docs/THEORY.md, "The downstream guarantee". ``inf`` when λ ≤ 1e-12."""
    gap = 1.0 - gamma_next
    return 8.0 * alpha_value / gap + 2.0 * alpha_value if gap > GAP_FLOOR else float("inf")


def per_view_bound(alpha_value: float, gamma_next: float) -> float:
    """Pr_{x̄, x ~ A(·|x̄)}[argmax Bᵀf*(x) ≠ y(x̄)] ≤ 4α/λ + α for the same head as
    :func:`eigenvalue_bound` (one view, no vote), λ = 1 − γ_{k+1}. ``inf`` when λ ≤ 1e-12."""
    gap = 1.0 - gamma_next
    return 4.0 * alpha_value / gap + alpha_value if gap > GAP_FLOOR else float("inf")


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
