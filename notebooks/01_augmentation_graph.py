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
# # 1. The augmentation graph
#
# Spectral contrastive learning (HaoChen, Wei, Gaidon, Ma, *Provable Guarantees for
# Self-Supervised Deep Learning with Spectral Contrastive Loss*, NeurIPS 2021,
# [arXiv:2106.04156](https://arxiv.org/abs/2106.04156)) starts from one object: the
# **population augmentation graph**. This notebook builds it, first on a toy example small enough
# to read entry by entry, then exactly on the `shapes` dataset this package trains on.
#
# Every claim is checked numerically: an `assert` fails if it is false. The figures are
# interactive Plotly figures (open the notebook in JupyterLab, `make notebooks`); each is followed
# by a printed summary, so the story also reads where the figures cannot be shown.
#
# Set `EXPLORER_FAST=1` in the environment to run the same cells on less data (the tests do).

# %%
import os

import numpy as np
import plotly.express as px
import plotly.io as pio
from scipy.sparse.csgraph import connected_components

from explorer.graphs import shapes as shapes_graph
from explorer.graphs import spectral as graph

# JupyterLab renders the plotly mimetype offline; the HTML fallback loads plotly.js from a CDN.
pio.renderers.default = "plotly_mimetype+notebook_connected"
FAST = os.environ.get("EXPLORER_FAST") == "1"
np.set_printoptions(precision=3, suppress=True)

# %% [markdown]
# ## The definition
#
# Let $\bar{\mathcal X}$ be the natural data (un-augmented images) with distribution
# $\mathcal P_{\bar{\mathcal X}}$, and $\mathcal A(x \mid \bar x)$ the probability that augmenting
# $\bar x$ gives $x$. The augmentation graph has one node per augmented datum $x$ and edge weights
#
# $$w(x, x') = \mathbb E_{\bar x \sim \mathcal P_{\bar{\mathcal X}}}
#   \big[\mathcal A(x \mid \bar x)\,\mathcal A(x' \mid \bar x)\big],$$
#
# the probability that $x$ and $x'$ are two augmentations of the same natural datum: a
# **positive pair**. So $w$ is a joint distribution: it sums to 1, and its marginal, the degree
# $w_x = \sum_{x'} w(x, x')$, is the probability of drawing $x$ as an augmented datum.
#
# In matrix form, with $A_{\bar x x} = \mathcal A(x\mid\bar x)$ and $P = \mathrm{diag}(p)$:
# $W = A^\top P A$. That is `graph.augmentation_graph(p, A)`.
#
# ## A toy example
# Two natural images, a cat and a dog. Each has three augmentations of its own, and both can be
# cropped to the same patch of grass: an augmented image shared by the two.

# %%
augmented = ["cat-1", "cat-2", "cat-3", "grass", "dog-1", "dog-2", "dog-3"]
p_natural = np.array([0.5, 0.5])  # cat, dog
A = np.array(
    [
        [0.3, 0.3, 0.3, 0.1, 0.0, 0.0, 0.0],  # augmentations of the cat
        [0.0, 0.0, 0.0, 0.1, 0.3, 0.3, 0.3],  # augmentations of the dog
    ]
)
W_toy = graph.augmentation_graph(p_natural, A)
print("W =\n", W_toy)

# %% [markdown]
# Check it against the definition written as plain loops, and check that $W$ is a joint
# distribution whose marginal is the distribution of augmented data,
# $w_x = \sum_{\bar x} p(\bar x) \mathcal A(x\mid\bar x)$.

# %%
loops = np.zeros_like(W_toy)
for x in range(len(augmented)):
    for x2 in range(len(augmented)):
        for xbar in range(len(p_natural)):
            loops[x, x2] += p_natural[xbar] * A[xbar, x] * A[xbar, x2]
assert np.allclose(W_toy, loops)
assert np.allclose(W_toy, W_toy.T) and np.isclose(W_toy.sum(), 1.0)
assert np.allclose(graph.degrees(W_toy), p_natural @ A)
print("degrees w_x:", graph.degrees(W_toy), " sum:", W_toy.sum())

# %%
fig = px.imshow(
    W_toy,
    x=augmented,
    y=augmented,
    color_continuous_scale="Blues",
    title="Toy augmentation graph: w(x, x')",
)
fig.update_layout(width=520, height=460)
fig.show()

# %% [markdown]
# The cat's augmentations form one block, the dog's another, and the grass patch links them
# weakly. Two things follow, and the next notebooks make them precise:
# - images of one natural image (or one class) are **connected** in the graph;
# - a representation that maps connected images close together separates the blocks.
#
# ## The exact augmentation graph of `shapes`
# The `shapes` dataset renders every image from a finite grid of factors: shape (the class),
# position, scale, rotation, foreground and background colour. Because the grid is finite, its
# augmentation graph can be built **exactly** once augmentation is modelled as moves on the grid.
# `shapes_graph.shapes_augmentation_graph` uses this discrete model of the `shapes` recipe:
#
# | augmentation | move on the grid | probability (default) |
# |---|---|---|
# | random resized crop | redraw (position, scale) uniformly | `crop_p = 0.5` |
# | rotation | redraw the rotation uniformly | `rotate_p = 0.5` |
# | hue jitter (full circle) | redraw (foreground, background) colours uniformly | `color_p = 0.8` |
# | (none by default) | redraw the shape uniformly, whatever the image | `shape_p = 0` |
#
# The full grid has 64,800 factor tuples, too many for a dense matrix, so the graph is built on a
# sub-grid (`shapes_graph.DEFAULT_SUBGRID`: five positions, two scales, three rotations, three
# foreground and two background colours). Nodes are distinct *images*: circles and rings look the
# same at every rotation, so their tuples are merged into one node.

# %%
subgrid = {"rotation": (0, 2), "fg_color": (0, 2)} if FAST else None  # fast: a smaller sub-grid
shapes = shapes_graph.shapes_augmentation_graph(subgrid=subgrid)
W = shapes.weights
print(f"{shapes.num_nodes} nodes (distinct images), W sums to {W.sum():.6f}")
print(
    "nodes per class:", dict(zip(shapes.classes, np.bincount(shapes.labels).tolist(), strict=True))
)
print("factor tuples per node (circles, rings merge rotations):", np.unique(shapes.multiplicity))

# %% [markdown]
# A few nodes of each class, rendered from their factor tuples:

# %%
rng = np.random.default_rng(0)
per_class = 6
picks = np.concatenate(
    [rng.choice(np.flatnonzero(shapes.labels == c), per_class, replace=False) for c in range(6)]
)
images = shapes.images(picks).permute(0, 2, 3, 1).numpy()  # (36, 32, 32, 3)
fig = px.imshow(images, facet_col=0, facet_col_wrap=per_class, facet_row_spacing=0.02)
fig.for_each_annotation(lambda a: a.update(text=""))
fig.update_xaxes(showticklabels=False).update_yaxes(showticklabels=False)
fig.update_layout(width=520, height=560, title="Nodes of the shapes graph, one row per class")
fig.show()

# %% [markdown]
# ### Who are a node's neighbours?
# The heaviest edges of one node (a star): images that one augmentation step can turn into it.
# Every neighbour is a star: augmentations change position, scale, rotation and colours, never
# the shape.

# %%
node = int(np.flatnonzero(shapes.labels == 5)[0])
neighbours = np.argsort(W[node])[::-1][:12]
print("edge weights, times the number of nodes:", W[node, neighbours] * shapes.num_nodes)
print("classes of the neighbours:", [shapes.classes[c] for c in shapes.labels[neighbours]])
assert np.all(shapes.labels[np.flatnonzero(W[node])] == shapes.labels[node])
fig = px.imshow(
    shapes.images(neighbours).permute(0, 2, 3, 1).numpy(), facet_col=0, facet_col_wrap=6
)
fig.for_each_annotation(lambda a: a.update(text=""))
fig.update_xaxes(showticklabels=False).update_yaxes(showticklabels=False)
fig.update_layout(width=520, height=220, title="The 12 heaviest neighbours of a star")
fig.show()

# %% [markdown]
# ### Classes are the connected components
# Summing $w$ over pairs of classes gives the probability that a positive pair falls in those
# two classes. It is diagonal: with `shape_p = 0` no augmentation changes the class, so each
# class is a connected component of the graph.

# %%
onehot = np.eye(6)[shapes.labels]  # (n, 6)
class_mass = onehot.T @ W @ onehot  # (6, 6)
print("positive-pair mass per pair of classes:\n", class_mass)
count, component = connected_components(W > 0, directed=False)
print("connected components:", count)
assert count == 6 and np.allclose(class_mass, np.diag(np.diag(class_mass)))
assert all(len(set(component[shapes.labels == c])) == 1 for c in range(6))

# %% [markdown]
# Real augmentations sometimes destroy the class where an image is ambiguous (a crop of a
# star's tip looks like a triangle). `shape_p > 0` is **not** a model of that: it redraws the
# shape of a view uniformly at random, whatever the image looks like, the same noise for every
# class. It does join the components by weak edges, so they are only **nearly** disconnected;
# but because it treats all classes alike it leaves the class eigenvectors unchanged and only
# lowers their eigenvalue, to $(1 - p)^2$. Notebook 2 shows the consequence: the classes are
# recovered exactly up to `shape_p = 0.5` and lost at once past it, a step rather than a
# graceful decline.

# %%
leaky = shapes_graph.shapes_augmentation_graph(subgrid=subgrid, shape_p=0.1)
leaky_mass = onehot.T @ leaky.weights @ onehot
print(f"mass of positive pairs across classes: {leaky_mass.sum() - np.trace(leaky_mass):.4f}")
fig = px.imshow(
    np.stack([class_mass, leaky_mass]),
    facet_col=0,
    x=shapes.classes,
    y=shapes.classes,
    color_continuous_scale="Blues",
)
fig.layout.annotations[0].text = "shape_p = 0: disconnected"
fig.layout.annotations[1].text = "shape_p = 0.1: nearly disconnected"
fig.update_layout(width=760, height=380, title="Positive-pair mass between classes")
fig.show()

# %% [markdown]
# **Next:** [02_spectral_clustering](02_spectral_clustering.ipynb) turns the graph into a
# representation: the eigenvectors of its normalised adjacency.
