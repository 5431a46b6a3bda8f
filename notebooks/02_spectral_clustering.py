# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 2. Spectral clustering of the augmentation graph
#
# Notebook 1 built the augmentation graph $W$. Here its **spectrum** becomes a representation:
# the top eigenvectors of the normalised adjacency map every node to a point, and when the graph
# has $k$ (nearly) disconnected components, those points separate the components linearly. This
# is the representation spectral contrastive learning provably learns (HaoChen et al. 2021,
# Sections 3-4), and the reason a linear probe on it works.
#
# Set `EXPLORER_FAST=1` to run the same cells on less data.

# %%
import os

import numpy as np
import plotly.express as px
import plotly.graph_objects as go
import plotly.io as pio
import scipy.linalg
from sklearn.cluster import SpectralClustering
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import adjusted_rand_score

from explorer.graphs import shapes as shapes_graph
from explorer.graphs import spectral as graph

pio.renderers.default = "plotly_mimetype+notebook_connected"
FAST = os.environ.get("EXPLORER_FAST") == "1"
np.set_printoptions(precision=3, suppress=True)

# %% [markdown]
# ## Normalised adjacency and Laplacian
# With the degree matrix $D = \mathrm{diag}(w_x)$,
#
# $$\bar A = D^{-1/2} W D^{-1/2}, \qquad L = I - \bar A .$$
#
# $\bar A$'s eigenvalues $\gamma_1 \ge \gamma_2 \ge \dots$ lie in $[-1, 1]$ and $\gamma_1 = 1$
# (eigenvector $\sqrt{w_x}$). For an augmentation graph $W = A^\top P A$ is positive
# semi-definite, so all $\gamma_i \ge 0$. A basic fact of spectral graph theory: **the
# multiplicity of the eigenvalue 1 is the number of connected components**, and eigenvalues
# *near* 1 count *nearly* disconnected components.
#
# ## The seed example: three components
# Nine augmented images $x_1, \dots, x_9$ in three disconnected components
# $\{x_1,x_2,x_3\}, \{x_4,x_5,x_6\}, \{x_7,x_8,x_9\}$.

# %%
W3 = graph.block_graph((3, 3, 3))
labels3 = np.repeat([0, 1, 2], 3)
gammas = graph.graph_spectrum(W3)
print("eigenvalues of Abar:", gammas)
assert np.allclose(gammas[:3], 1.0) and np.allclose(gammas[3:], 0.0)
vectors = graph.spectral_embedding(W3, 3)
print("rows of the top-3 eigenvector matrix (one row per node):\n", vectors)

# %% [markdown]
# The eigenvalue 1 appears three times, once per component. The eigenvectors of a repeated
# eigenvalue are defined only up to a rotation, but every choice has the same structure: **rows of
# nodes in one component are identical** — each row is a (rotated, scaled) indicator of its
# component. So a linear head separates $\{x_1, x_2, x_3\}$ from the rest perfectly.

# %%
for a in range(9):
    for b in range(9):
        assert np.allclose(vectors[a], vectors[b]) == (labels3[a] == labels3[b])
head = LogisticRegression(C=100.0).fit(vectors, labels3 == 0)
print("linear head, {x1, x2, x3} against the rest: accuracy", head.score(vectors, labels3 == 0))
assert head.score(vectors, labels3 == 0) == 1.0
fig = px.imshow(
    vectors,
    y=[f"x{i + 1}" for i in range(9)],
    x=["v1", "v2", "v3"],
    color_continuous_scale="RdBu",
    color_continuous_midpoint=0,
    title="Top-3 eigenvectors: rows are component indicators",
)
fig.update_layout(width=380, height=420)
fig.show()

# %% [markdown]
# ## Weak edges between components
# Real augmentations sometimes cross classes. Make it an augmentation graph again: three classes
# of natural images; each natural image's augmentations land on a few random nodes of its own
# class with probability $1 - \varepsilon$, and on random nodes of other classes with
# probability $\varepsilon$. As $\varepsilon$ grows, eigenvalues 2 and 3 leave 1 (and the gap to
# the 4th closes), and a linear probe on the top-3 eigenvectors, trained on half the nodes and
# tested on the other half, degrades: slowly while $\gamma_2, \gamma_3$ stay above the bulk
# $\gamma_4$, then quickly once they reach it.


# %%
def leaky_graph(eps: float, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """An augmentation graph of 3 classes; a fraction eps of the augmentation mass crosses."""
    n = 3 * per_class
    labels = np.repeat([0, 1, 2], per_class)
    A = np.zeros((n, n))  # row: natural image i; column: augmented image x
    for i in range(n):
        same = np.flatnonzero((labels == labels[i]) & (np.arange(n) != i))
        own = np.r_[i, rng.choice(same, 5, replace=False)]  # i itself: no node is unreached
        other = rng.choice(np.flatnonzero(labels != labels[i]), 6, replace=False)
        A[i, own] += (1 - eps) / 6
        A[i, other] += eps / 6
    return graph.augmentation_graph(np.full(n, 1 / n), A)


per_class = 40 if FAST else 150
labels = np.repeat([0, 1, 2], per_class)
epsilons = [0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
rng = np.random.default_rng(0)
rows = []
for eps in epsilons:
    W = leaky_graph(eps, per_class, rng)
    top = graph.graph_spectrum(W, 5)
    embedding = graph.spectral_embedding(W, 3)
    train = rng.permutation(len(labels))[: len(labels) // 2]
    test = np.setdiff1d(np.arange(len(labels)), train)
    probe = LogisticRegression(C=100.0, max_iter=2000).fit(embedding[train], labels[train])
    rows.append((eps, *top, probe.score(embedding[test], labels[test])))
    print(f"eps={eps:.2f}  top eigenvalues {top}  probe accuracy {rows[-1][-1]:.3f}")
rows = np.array(rows)
assert rows[0, 6] == 1.0 and np.allclose(rows[0, 1:4], 1.0)

# %%
fig = go.Figure()
for i in range(5):
    fig.add_scatter(x=rows[:, 0], y=rows[:, 1 + i], mode="lines+markers", name=f"γ{i + 1}")
fig.add_scatter(
    x=rows[:, 0], y=rows[:, 6], mode="lines+markers", name="probe accuracy", line_dash="dot"
)
fig.update_layout(
    xaxis_title="ε: augmentation mass that crosses classes",
    yaxis_title="eigenvalue / accuracy",
    width=640,
    height=400,
    title="Nearly disconnected components: eigenvalues near 1 and linear probe accuracy",
)
fig.show()

# %% [markdown]
# ## Spectral clustering
# The classic algorithm (Ng, Jordan, Weiss 2001): embed with the top-$k$ eigenvectors, normalise
# each row to unit length, run $k$-means. `graph.spectral_clustering` does exactly that; here it
# is checked against scikit-learn's `SpectralClustering` with a precomputed affinity.

# %%
W = leaky_graph(0.1, per_class, np.random.default_rng(1))
ours = graph.spectral_clustering(W, 3)
theirs = SpectralClustering(3, affinity="precomputed", random_state=0).fit_predict(W)
print("adjusted Rand index, ours vs scikit-learn:", adjusted_rand_score(ours, theirs))
print("adjusted Rand index, ours vs the classes:  ", adjusted_rand_score(ours, labels))
assert adjusted_rand_score(ours, theirs) == 1.0 and adjusted_rand_score(ours, labels) == 1.0

# %% [markdown]
# ## The spectrum of the `shapes` graph
# On the exact graph of notebook 1, the eigenvalue 1 appears six times, once per shape. The
# closed form says more: each augmentation part redraws a factor with probability $p$, its kernel
# $K = (1-p)I + pJ/n$ has $K^2$ with eigenvalues $1$ and $(1-p)^2$, and the eigenvalues of
# $\bar A$ are products of those, one factor per part. With the defaults (crop and rotation
# $p = 0.5$, colour $p = 0.8$) that gives, after the six 1s:
#
# | eigenvalue | what varies | how many (default sub-grid) |
# |---|---|---|
# | $0.5^2 = 0.25$ | crop, or rotation | 6 × 9 + 4 × 2 = 62 |
# | $0.25^2 = 0.0625$ | crop and rotation | 4 × 9 × 2 = 72 |
# | $0.2^2 = 0.04$ | colour | 6 × 5 = 30 |
# | $0.25 \cdot 0.04 = 0.01$, ... | colour and crop or rotation, ... | |
#
# per class: 10 (position, scale) pairs give 9 crop directions, 3 rotations give 2 (none for
# circles and rings, which look the same at every rotation: 4 rotating classes), 6 colour pairs
# give 5. So 0.0625 comes **before** 0.04: two parts redrawn half the time each change the image
# less often than colour alone. Checked below, counts included (the sub-grid sizes read from the
# graph's nodes):

# %%
subgrid = {"rotation": (0, 2), "fg_color": (0, 2)} if FAST else None
shapes = shapes_graph.shapes_augmentation_graph(subgrid=subgrid)
gammas = graph.graph_spectrum(shapes.weights)
values, counts = np.unique(gammas.round(10), return_counts=True)
values, counts = values[::-1], counts[::-1]
print("distinct eigenvalues, largest first:", ", ".join(f"{v:g}" for v in values[:6]))
print("multiplicities:                     ", ", ".join(str(c) for c in counts[:6]))
kept = [len(np.unique(shapes.factors[:, i])) for i in range(6)]  # shape, pos, scale, rot, fg, bg
crop, rotation, colour = kept[1] * kept[2] - 1, kept[3] - 1, kept[4] * kept[5] - 1
rotating = sum(bool((shapes.multiplicity[shapes.labels == c] == 1).all()) for c in range(6))
assert np.allclose(values[:4], [1.0, 0.25, 0.0625, 0.04])
assert counts[:4].tolist() == [6, 6 * crop + rotating * rotation, rotating * crop * rotation,
                               6 * colour]
if not FAST:
    assert counts[:4].tolist() == [6, 62, 72, 30]

# %% [markdown]
# ## What `shape_p` does, and what it does not model
# `shape_p` redraws the shape of a view uniformly at random, whatever the image. On the six
# shapes its kernel is $(1-p)I + pJ/6$: it treats every class alike, so the span of the class
# indicators (weighted by $\sqrt{w_x}$) stays an eigenspace of $\bar A$. The class
# eigenvectors do not change; only their eigenvalue falls, to $(1 - p)^2$. While it is above
# crop's and rotation's 0.25, i.e. $p < 0.5$, the top six eigenvectors are exactly the classes'
# and spectral clustering recovers them exactly; past $p = 0.5$ they drop below the 0.25 block
# and the top six lose the classes **at once**. A step, not a graceful decline: augmentations
# that change the class only where an image is ambiguous (a crop of a star's tip that looks
# like a triangle) would mix the classes gradually, and `shape_p` does not model them.

# %%
spectra = {}
for shape_p in (0.0, 0.1, 0.3, 0.45, 0.55, 0.7):
    shapes_p = shapes_graph.shapes_augmentation_graph(subgrid=subgrid, shape_p=shape_p)
    gammas_p, vectors_p = graph.top_eigenpairs(shapes_p.weights, shapes_p.num_nodes)
    spectra[shape_p] = gammas_p[:30]
    w = graph.degrees(shapes_p.weights)
    classes = np.eye(6)[shapes_p.labels] * np.sqrt(w)[:, None]  # sqrt(w) * class indicators
    angle = np.degrees(scipy.linalg.subspace_angles(vectors_p[:, :6], classes).max())
    clusters = graph.spectral_clustering(shapes_p.weights, 6)
    ari = adjusted_rand_score(clusters, shapes_p.labels)
    has_class_block = np.isclose(gammas_p, (1 - shape_p) ** 2).sum() >= 5
    print(f"shape_p={shape_p}: top-8 eigenvalues {gammas_p[:8]}, (1-p)^2 = "
          f"{(1 - shape_p) ** 2:.4f}; top 6 vs classes: {angle:5.1f} degrees; ARI {ari:.3f}")
    assert has_class_block  # the five class contrasts sit at (1 - p)^2, always
    if shape_p < 0.5:
        assert angle < 1e-4 and ari == 1.0
    else:
        assert angle > 80 and ari < 0.05
assert np.allclose(spectra[0.0][:6], 1.0) and np.isclose(spectra[0.0][6], 0.25)
assert np.allclose(spectra[0.1][1:6], 0.81) and np.allclose(spectra[0.3][1:6], 0.49)

# %%
fig = go.Figure()
for shape_p, values_p in spectra.items():
    fig.add_scatter(
        x=np.arange(1, 31), y=values_p, mode="markers+lines", name=f"shape_p = {shape_p}"
    )
fig.update_layout(
    xaxis_title="i",
    yaxis_title="γ_i",
    width=640,
    height=380,
    title="Top 30 eigenvalues of the shapes graph's normalised adjacency",
)
fig.show()

# %% [markdown]
# The eigenvectors beyond the sixth describe the nuisance factors. Take the eigenspace of
# $\gamma = 0.25$, of $\gamma = 0.0625$ and of $\gamma = 0.04$ and ask which within-class
# factor explains it: the share of the eigenspace captured by functions of (shape, crop), of
# (shape, rotation), of (shape, crop, rotation) and of (shape, colours), i.e. the squared norm
# of its group means over its squared norm.

# %%
gammas, vectors = graph.top_eigenpairs(shapes.weights, shapes.num_nodes)
parts = {"crop": (0, 1, 2), "rotation": (0, 3), "crop+rotation": (0, 1, 2, 3), "colour": (0, 4, 5)}
shares_of = {}
for value in (0.25, 0.0625, 0.04):
    space = vectors[:, np.isclose(gammas, value)]  # (n, m), orthonormal columns
    shares = {}
    for part, columns in parts.items():
        _, group = np.unique(shapes.factors[:, columns], axis=0, return_inverse=True)
        group = group.ravel()
        means = np.stack([np.bincount(group, weights=col) / np.bincount(group) for col in space.T])
        shares[part] = round(float((means[:, group] ** 2).sum() / (space**2).sum()), 3)
    shares_of[value] = shares
    print(f"eigenvalue {value} ({space.shape[1]} eigenvectors): share explained by {shares}")
assert np.isclose(shares_of[0.25]["crop"] + shares_of[0.25]["rotation"], 1.0)
assert shares_of[0.25]["colour"] < 1e-9
# crop and rotation together explain the 0.0625 block, neither alone does
assert np.isclose(shares_of[0.0625]["crop+rotation"], 1.0)
assert shares_of[0.0625]["crop"] < 1e-9 and shares_of[0.0625]["rotation"] < 1e-9
assert np.isclose(shares_of[0.04]["colour"], 1.0)

# %% [markdown]
# So the spectrum is ordered by what augmentation changes least: the class (never, eigenvalue
# 1), then crop or rotation (each half the time, $0.5^2$), then crop and rotation together
# ($0.5^2 \cdot 0.5^2$), then colour (80% of the time, $0.2^2$), then products. A
# $k$-dimensional spectral embedding keeps the top $k$ of this list.

# %% [markdown]
# **Next:** [03_spectral_contrastive_loss](03_spectral_contrastive_loss.ipynb) shows that a
# network can *learn* this embedding from positive pairs alone, without ever building $W$.
