"""Do the classes behave as nearly disconnected components of the augmentation graph? A reading
from the features alone, for data without an exact graph (MNIST, CIFAR, an image folder).

At the minimiser of the population spectral loss on a graph whose classes are disconnected
components, the top eigenvectors of the normalised adjacency are the components' indicators
scaled by √w (HaoChen et al. 2021, Section 3), so the features' first directions are constant on
each component: R eᵢ / √w(Cᵢ) for x in Cᵢ, with w(Cᵢ) the component's probability and R any
rotation. The further eigenvectors (with d larger than the number of components) vary within the
components and average to zero over each of them under the data's weights w_x, since each is
orthogonal to √w there. Split E[f fᵀ] by class c (probability p_c, class mean m_c = E[f | c]):

    E[f fᵀ] = M + Σ_c p_c Cov(f | c),     M = Σ_c p_c m_c m_cᵀ  (the between-class part).

At that minimiser M has one eigenvalue 1 per component, whatever d: ten for ten separated digits,
nine if two of them share a component, whose class means are then parallel (their cosine is 1)
while means of different components are orthogonal (cosine 0); Σ_c p_c Cov(f | c) holds the
further eigenvectors. All three readings are invariant to the rotation R, which the loss cannot
fix:

- the eigenvalues of M (how much of an eigenvalue-1 component each class direction carries);
- the cosines of the class means (1: the classes share a component; 0: apart);
- each class's mean share ‖m_c‖² / E[‖f‖² | c] (1: the class is one point of feature space, as
  at a minimiser with d equal to the number of components; smaller: f also varies within the
  class, as the further eigenvectors do).

They read the features the network learned, not the graph: a class that merges with another here
may be separable in the graph while the network has not separated it yet, and the features' own
estimate of the graph (the eigenvalues of E[f fᵀ]) says how close to an optimum they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Above this cosine two class means count as pointing the same way (one shared component).
MERGE_COSINE = 0.5
#: Past this many classes the C × C cosine table is not stored (ImageNet's 1,000 would be 8 MB).
MAX_CLASSES = 100


@dataclass(frozen=True)
class ClassMoments:
    """The class structure of features f over N points of C classes.

    Attributes:
        weights: (C,) p_c, the share of points in each class.
        between_eigs: (C,) eigenvalues of M = Σ_c p_c m_c m_cᵀ, largest first.
        cosines: (C, C) cosines of the class means m_c (0 where a mean is zero).
        mean_share: (C,) ‖m_c‖² / E[‖f‖² | c].
    """

    weights: np.ndarray
    between_eigs: np.ndarray
    cosines: np.ndarray
    mean_share: np.ndarray


def class_moments(features: np.ndarray, labels: np.ndarray, num_classes: int) -> ClassMoments:
    """The between-class moment, class-mean cosines and mean shares of ``features``.

    Args:
        features: (N, d) features f (for the spectral loss f = clip(z), as its loss sees them).
        labels: (N,) class of each row, in [0, num_classes).
        num_classes: C; a class without points gets weight 0, a zero mean and share 0.
    """
    f = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if f.ndim != 2 or len(f) != len(y) or len(f) == 0:
        raise ValueError(f"need (N, d) features and N labels, got {f.shape} and {y.shape}")
    counts = np.bincount(y, minlength=num_classes).astype(np.float64)
    weights = counts / len(y)
    sums = np.zeros((num_classes, f.shape[1]))
    np.add.at(sums, y, f)
    means = sums / np.maximum(counts, 1)[:, None]  # (C, d)
    energy = np.bincount(y, weights=np.einsum("nd,nd->n", f, f), minlength=num_classes)
    mean_energy = np.einsum("cd,cd->c", means, means)
    mean_share = np.divide(mean_energy, energy / np.maximum(counts, 1),
                           out=np.zeros(num_classes), where=energy > 0)  # fmt: skip
    # M = Σ p_c m_c m_cᵀ = Bᵀ B with B = diag(√p) means: its nonzero eigenvalues are B Bᵀ's (C × C)
    scaled = np.sqrt(weights)[:, None] * means
    between = np.clip(np.linalg.eigvalsh(scaled @ scaled.T)[::-1], 0.0, None)
    norms = np.sqrt(mean_energy)
    unit = np.divide(means, norms[:, None], out=np.zeros_like(means), where=norms[:, None] > 0)
    return ClassMoments(weights, between, unit @ unit.T, mean_share)


def shared_components(cosines: np.ndarray, threshold: float = MERGE_COSINE) -> list[list[int]]:
    """Groups of classes whose means point the same way: the connected components of the graph
    "cosine ≥ ``threshold``" over classes, each group sorted, groups of one left out."""
    count = len(cosines)
    group = list(range(count))

    def root(i: int) -> int:
        while group[i] != i:
            group[i] = group[group[i]]
            i = group[i]
        return i

    for i in range(count):
        for j in range(i + 1, count):
            if cosines[i, j] >= threshold:
                group[root(i)] = root(j)
    members: dict[int, list[int]] = {}
    for i in range(count):
        members.setdefault(root(i), []).append(i)
    return sorted(g for g in members.values() if len(g) > 1)


def class_arrays(
    features: np.ndarray, labels: np.ndarray, num_classes: int
) -> dict[str, np.ndarray]:
    """The analysis artifact's arrays (docs/RUN_FORMAT.md): ``class_weights``,
    ``class_between_eigs``, ``class_cosines`` and ``class_mean_share``; none past
    :data:`MAX_CLASSES` classes."""
    if num_classes > MAX_CLASSES:
        return {}
    moments = class_moments(features, labels, num_classes)
    return {
        "class_weights": moments.weights,
        "class_between_eigs": moments.between_eigs,
        "class_cosines": moments.cosines.astype(np.float32),
        "class_mean_share": moments.mean_share,
    }


def describe(arrays: dict[str, np.ndarray], classes: list[str], near_one: float = 0.9) -> str:
    """One paragraph for the Spectrum page from :func:`class_arrays`' arrays (Markdown)."""
    eigs, cosines = arrays["class_between_eigs"], np.asarray(arrays["class_cosines"], np.float64)
    share = arrays["class_mean_share"]
    count, total = int(np.sum(eigs >= near_one)), len(classes)
    parts = [f"**Between-class part of E[f fᵀ]** (M = Σ_c p_c m_c m_cᵀ over the views, m_c "
             f"the class mean): {count} of its {total} eigenvalues ≥ {near_one} (largest "
             f"{eigs[0]:.2f}); at an optimum where each class is a disconnected component all "
             f"{total} are 1."]
    groups = shared_components(cosines)
    off = cosines - 2 * np.eye(total)  # the diagonal out of the running
    i, j = np.unravel_index(int(np.argmax(off)), off.shape)
    if groups:
        named = "; ".join("{" + ", ".join(classes[c] for c in g) + "}" for g in groups)
        parts.append(f"Classes whose means point the same way (cosine ≥ {MERGE_COSINE}), read "
                     f"as one component: {named}.")
    else:
        parts.append(f"No two class means point the same way (largest cosine {off[i, j]:.2f}, "
                     f"{classes[i]} and {classes[j]}): no classes merge.")
    spread = ("the classes are nearly points of feature space." if share.min() >= 0.9 else
              "the rest varies within a class, as the eigenvectors after the components' do "
              "at the optimum when d exceeds their number.")
    parts.append(f"Each class mean carries {share.min():.0%}–{share.max():.0%} of its class's "
                 f"E‖f‖²: {spread}")
    return " ".join(parts)
