"""The Graph page's ``shapes`` graph as ``class_change_p`` grows, and the paper's downstream
guarantee along it.

The exact ``shapes`` augmentation graph (:mod:`explorer.graphs.shapes`) with natural data uniform
over the default sub-grid (1,080 factor tuples, 840 images, 6 classes): the graph the training
kernel defines, not a run's (a run's natural data are its training split's tuples, so its
nuisance eigenvalues differ a little: :mod:`explorer.analysis.theorem`). Classes mix through
``class_change_p`` (:class:`explorer.data.shapes.ShapesKernel`, the mechanism training uses):
a view of a ring, cross or star is drawn as its look-alike circle, square or triangle with
probability class_change_p x its ambiguity, so the classes become *approximately* disconnected
components, mixing most where images are hard to tell apart (HaoChen et al. [0], Assumption 3.5).
Changes stay inside the three look-alike pairs, which remain exact components: gamma_3 = 1.

Along it the paper's quantities [0, Section 3.3] are exact or bracketed
(:mod:`explorer.graphs.guarantee`, :mod:`explorer.graphs.downstream_error`): α, the least fraction
of augmentations whose class no
labelling of images can recover; E(f*), the downstream error of the top-k eigenvector features
with the best linear head, between the best head found and the least vote error of the
labellings a head can draw; and the proven bound 8α/(1 − γ_{k+1}) + 2α. E(f*) stays 0 while
every natural datum's views mostly keep its class, which holds up to class_change_p = 0.5 (a
change needs class_change_p x ambiguity > 1/2 for most views), and rises in steps past it, as
groups of natural data lose their vote.

A sweep is cheap because the kernel is affine in ``class_change_p``: A(c) = A(0) + c (A(c₁) −
A(0))/c₁, the view drawn as its look-alike with a probability linear in c. So the kernel at two
values gives every A(c), and W(c) = A(c)ᵀ diag(p) A(c) is a quadratic in c with three matrix
coefficients (:class:`ClassChangeFamily`).

References:
    [0] HaoChen, Wei, Gaidon, Ma, "Provable Guarantees for Self-Supervised Deep Learning with
        Spectral Contrastive Loss", NeurIPS 2021, https://arxiv.org/abs/2106.04156
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from explorer.data.shapes import MAX_CLASS_CHANGE_P
from explorer.graphs import downstream_error, guarantee
from explorer.graphs.clusters import LabGraph, probe_accuracy
from explorer.graphs.downstream_error import ErrorBracket
from explorer.graphs.optimum import eigenvector_features, optimal_features, tied_block
from explorer.graphs.shapes import shapes_augmentation_graph
from explorer.graphs.spectral import top_eigenpairs

#: The class_change_p values of the page's curve: every 0.05 up to 0.5, where only the
#: eigenvalues move (continuously) and E(f*) is 0, then every 0.0125 up to the largest value,
#: where E(f*) rises in steps (each found within 0.0125).
CLASS_CHANGE_SWEEP: tuple[float, ...] = tuple(
    float(v)
    for v in np.round(
        np.r_[np.arange(0.0, 0.5, 0.05), np.arange(0.5, MAX_CLASS_CHANGE_P + 1e-9, 0.0125)], 4
    )
)
#: Eigenvalues closer than this to 1 are taken as exactly 1 (a component): eigensolvers return
#: 1 - 1e-15, which would make Theorem 3.7's ρ bound a meaningless 1e-16 instead of 0.
ONE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class ClassChangeFamily:
    """The ``shapes`` graphs of one (crop, rotation, colour) setting, for every class_change_p.

    Nodes (images) are ordered by class, as :class:`LabGraph` wants; the m natural data are the
    sub-grid's tuples, uniform.

    Attributes:
        kernel: A(0) (m, n), rows summing to 1: A(x | x̄) with no class change.
        slope: (m, n) dA/dc: A(c) = kernel + c * slope (rows summing to 0).
        natural_p: (m,) the natural data's probabilities; ``natural_labels`` (m,) their classes.
        quadratic: (W0, W1, W2), each (n, n): W(c) = W0 + c W1 + c² W2 = A(c)ᵀ diag(p) A(c).
        labels: (n,) int64 class of each node, non-decreasing; ``classes`` their names.
    """

    kernel: np.ndarray
    slope: np.ndarray
    natural_p: np.ndarray
    natural_labels: np.ndarray
    quadratic: tuple[np.ndarray, np.ndarray, np.ndarray]
    labels: np.ndarray
    classes: tuple[str, ...]

    def augmentation(self, class_change_p: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(A, p, y) at ``class_change_p``: the kernel (m, n), natural probabilities and labels
        that :mod:`explorer.graphs.guarantee` takes. Clipped at 0: where A is exactly 0 the affine
        form
        can leave -1e-17."""
        _check(class_change_p)
        A = np.maximum(self.kernel + class_change_p * self.slope, 0.0)
        return A, self.natural_p, self.natural_labels

    def graph(self, class_change_p: float) -> LabGraph:
        """The graph at ``class_change_p`` (W summing to 1, clipped at 0 like the kernel)."""
        _check(class_change_p)
        W0, W1, W2 = self.quadratic
        W = np.maximum(W0 + class_change_p * W1 + class_change_p**2 * W2, 0.0)
        return LabGraph(W / W.sum(), self.labels, self.classes)


def _check(class_change_p: float) -> None:
    if not 0.0 <= class_change_p <= MAX_CLASS_CHANGE_P:
        raise ValueError(
            f"class_change_p must be in [0, {MAX_CLASS_CHANGE_P}], got {class_change_p}"
        )


def class_change_family(
    crop_p: float = 0.5, rotate_p: float = 0.5, color_p: float = 0.8
) -> ClassChangeFamily:
    """:class:`ClassChangeFamily` of the default sub-grid with these redraw probabilities.

    One exact graph, at class_change_p = 0
    (:func:`explorer.graphs.shapes.shapes_augmentation_graph`,
    uniform natural data: its nodes and labels), and its kernel A at 0 and at
    :data:`MAX_CLASS_CHANGE_P` (:meth:`ShapesGraph.natural_augmentation` of the same nodes with
    the kernel's class_change_p replaced: the nodes are images, which the class change does not
    move). W is never taken from the graph: W(c) = A(c)ᵀ diag(p) A(c) (tests compare it with
    the graph built afresh at several c).
    """
    exact = shapes_augmentation_graph(crop_p=crop_p, rotate_p=rotate_p, color_p=color_p)
    changed = dataclasses.replace(
        exact, kernel=dataclasses.replace(exact.kernel, class_change_p=MAX_CLASS_CHANGE_P)
    )
    order = np.argsort(exact.labels, kind="stable")
    (A0, p, y), (A1, _, _) = exact.natural_augmentation(), changed.natural_augmentation()
    A0, slope = A0[:, order], (A1 - A0)[:, order] / MAX_CLASS_CHANGE_P
    # W(c) = (A0 + c S)ᵀ P (A0 + c S): the constant, linear and quadratic terms
    PA0, PS = A0 * p[:, None], slope * p[:, None]
    cross = A0.T @ PS
    quadratic = (A0.T @ PA0, cross + cross.T, slope.T @ PS)
    return ClassChangeFamily(A0, slope, p, y, quadratic, exact.labels[order], tuple(exact.classes))


@dataclass(frozen=True)
class GuaranteePoint:
    """The paper's downstream quantities [0, Section 3.3] on one graph, k = its class count.

    Attributes:
        alpha: Assumption 3.5's α (:attr:`explorer.graphs.guarantee.DownstreamTask.alpha`).
        optimum: E(f*) of the top-k eigenvector features, bracketed
            (:func:`explorer.graphs.downstream_error.error_bracket`): the best head found from
            above,
            the least vote error over all node labellings from below.
        bound: the proven 8α/(1 − γ_{k+1}) + 2α
            (:func:`explorer.graphs.guarantee.eigenvalue_bound`).
        theorem_order: Theorem 3.7's α log k / ρ²_{⌊k/2⌋} with ρ replaced by its lower bound and
            the constant set to 1 (an order of magnitude; ``inf`` when ⌊k/2⌋ components are
            exact, 0 when α = 0).
        tied: γ_k = γ_{k+1} (:func:`explorer.graphs.optimum.tied_block`): f* is not unique, E(f*)
            is
            that of the eigensolver's choice (the bound holds for every choice).
    """

    alpha: float
    optimum: ErrorBracket
    bound: float
    theorem_order: float
    tied: bool

    @property
    def optimum_error(self) -> float:
        """E(f*)'s upper side: the best head found."""
        return self.optimum.upper


def guarantee_point(
    family: ClassChangeFamily,
    class_change_p: float,
    gammas: np.ndarray,
    vectors: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    lower: bool = True,
) -> GuaranteePoint:
    """:class:`GuaranteePoint` of ``family.graph(class_change_p)``.

    Args:
        gammas: its top eigenvalues of Ā, descending, at least k + 1 (k the class count).
        vectors: (n, >= k) their eigenvectors: the top k give f*. From a full eigh
            (:func:`explorer.graphs.spectral.top_eigenpairs`) for E(f*)'s lower side to be
            informative:
            it treats rows of f* within 1e-9 as one point, which LOBPCG's accuracy does not
            keep.
        weights: its W when at hand (else built again).
        lower: compute the labelling bound (E's lower side; a mixed-integer program where the
            votes can fail, seconds); False leaves the trivial 0 below.
    """
    A, p, y = family.augmentation(class_change_p)
    k = len(family.classes)
    W = family.graph(class_change_p).weights if weights is None else weights
    gammas = np.where(gammas > 1.0 - ONE_TOLERANCE, 1.0, gammas)
    f_star = optimal_features(W, k, eigenpairs=(gammas, vectors))
    task = guarantee.task_of_kernel(A, p, y, k)
    labelling = downstream_error.labelling_bound(task) if lower else None
    return GuaranteePoint(
        alpha=task.alpha,
        optimum=downstream_error.error_bracket(f_star, task, labelling),
        bound=guarantee.eigenvalue_bound(task.alpha, float(gammas[k])),
        theorem_order=guarantee.theorem_bound(task.alpha, gammas, k),
        tied=tied_block(gammas, k) is not None,
    )


@dataclass(frozen=True)
class GuaranteeCurve:
    """The guarantee and the recovery along class_change_p, one entry per value swept.

    Attributes:
        values: (m,) the class_change_p swept.
        alpha: (m,) α at each (the curve's abscissa: the fraction of augmentations that change
            the class, not the raw probability).
        optimum_error, optimum_error_lower: (m,) E(f*)'s bracket at each (the best head found,
            the labelling bound); ``least_squares`` (m,) the least-squares head's E(f*).
        bound, theorem_order, tied: (m,) :class:`GuaranteePoint`'s, at each.
        gamma_k, gamma_next: (m,) γ_k and γ_{k+1} of Ā.
        probe_accuracy: (m,) :func:`explorer.graphs.clusters.probe_accuracy` on the top-k features
            (nodes labelled by their image's class, half fitted, half scored).
    """

    values: np.ndarray
    alpha: np.ndarray
    optimum_error: np.ndarray
    optimum_error_lower: np.ndarray
    least_squares: np.ndarray
    bound: np.ndarray
    theorem_order: np.ndarray
    tied: np.ndarray
    gamma_k: np.ndarray
    gamma_next: np.ndarray
    probe_accuracy: np.ndarray

    def bound_passes_one(self) -> float | None:
        """The α from which the bound exceeds 1 and says nothing (None: never on the curve),
        interpolated linearly between the points around it: exact while γ_{k+1} stays put
        (the bound is then linear in α), as on the default graph."""
        above = np.flatnonzero(self.bound > 1.0)
        if not len(above):
            return None
        i = int(above[0])
        if i == 0:
            return float(self.alpha[0])
        a0, a1, b0, b1 = self.alpha[i - 1], self.alpha[i], self.bound[i - 1], self.bound[i]
        return float(a0 + (1.0 - b0) * (a1 - a0) / (b1 - b0))


def guarantee_curve(
    family: ClassChangeFamily, values: Sequence[float] = CLASS_CHANGE_SWEEP, *, seed: int = 0,
    on_point: Callable[[int, int], None] | None = None,
) -> GuaranteeCurve:
    """Sweep ``values`` of class_change_p: the top k + 1 eigenpairs
    (a full eigh), the probe and :func:`guarantee_point` of
    each graph of ``family`` (no spectral clustering: the curve does not draw it). About a
    minute for the 43 default values on 2 cores (each E(f*) bracketed); ``on_point(i, n)`` is
    called before the i-th value (from 0) of n."""
    k = len(family.classes)
    rows = []
    for i, value in enumerate(values):
        if on_point is not None:
            on_point(i, len(values))
        W = family.graph(float(value)).weights
        # a full eigh, not LOBPCG: nodes that the graph's symmetry makes equal keep equal rows
        # of f* to 1e-15, which E(f*)'s lower side needs (it groups rows within 1e-9)
        gammas, vectors = top_eigenpairs(W, k + 1)
        point = guarantee_point(family, float(value), gammas, vectors, W)
        probe = probe_accuracy(eigenvector_features(W, vectors[:, :k]), family.labels, seed=seed)
        rows.append(
            (
                point.alpha,
                point.optimum.upper,
                point.optimum.lower,
                point.optimum.least_squares,
                point.bound,
                point.theorem_order,
                point.tied,
                gammas[k - 1],
                gammas[k],
                probe,
            )
        )
    columns = [np.asarray(c, dtype=np.float64) for c in zip(*rows, strict=True)]
    columns[6] = columns[6].astype(bool)
    return GuaranteeCurve(np.asarray(values, dtype=np.float64), *columns)


#: The curve of the default (crop_p, rotate_p, color_p), shipped with the package so that the
#: Graph page draws it at once (computing it brackets 43 graphs' E(f*): about a minute);
#: ``python -m explorer.graphs.class_change_curve`` writes it anew, tests/test_shapes_lab.py
#: recomputes points.
SHIPPED_CURVE = Path(__file__).with_name("class_change_curve.json")
SHIPPED_SETTINGS = (0.5, 0.5, 0.8)


def save_curve(curve: GuaranteeCurve, path: Path, settings: tuple[float, float, float]) -> None:
    """``curve`` as JSON (one list per field) with the (crop_p, rotate_p, color_p) it is of."""
    fields = {f.name: getattr(curve, f.name).tolist() for f in dataclasses.fields(curve)}
    path.write_text(json.dumps({"settings": list(settings), **fields}) + "\n")


def shipped_curve(crop_p: float, rotate_p: float, color_p: float) -> GuaranteeCurve | None:
    """The shipped curve when these are its settings and its values are
    :data:`CLASS_CHANGE_SWEEP`; None otherwise (or when the file is missing)."""
    if (crop_p, rotate_p, color_p) != SHIPPED_SETTINGS or not SHIPPED_CURVE.exists():
        return None
    stored = json.loads(SHIPPED_CURVE.read_text())
    if tuple(stored.pop("settings")) != SHIPPED_SETTINGS or tuple(
            stored["values"]) != CLASS_CHANGE_SWEEP:
        return None
    arrays = {name: np.asarray(v, dtype=bool if name == "tied" else np.float64)
              for name, v in stored.items()}
    return GuaranteeCurve(**arrays)


if __name__ == "__main__":
    save_curve(guarantee_curve(class_change_family(*SHIPPED_SETTINGS)), SHIPPED_CURVE,
               SHIPPED_SETTINGS)
    print(f"wrote {SHIPPED_CURVE}")
