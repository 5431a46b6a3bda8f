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
# # 3. The spectral contrastive loss, derived
#
# Notebook 2 showed that the top eigenvectors of $\bar A$ are a good representation. But a
# dataset's augmentation graph is astronomically large: nobody can build $W$. HaoChen et al.
# (2021, Section 3.2) turn the eigenvector problem into a loss that needs only **samples of
# positive pairs** — the *spectral contrastive loss*. This notebook derives it step by step and
# checks every step numerically, then checks the two facts a practitioner relies on:
# gradient descent finds the optimum, and the mini-batch loss is an unbiased estimate. It ends
# with the ball $\|f(x)\|^2 \le \mu$ that the loss clips to, and what it costs on `shapes`.
#
# Set `EXPLORER_FAST=1` to run the same cells with fewer steps and samples.

# %%
import os
import time

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import scipy.linalg
import torch

from explorer.graphs import optimum as opt
from explorer.graphs import shapes as shapes_graph
from explorer.graphs import spectral as graph
from explorer.losses import clip_to_ball, spectral_contrastive_loss
from explorer.readings import figures

torch.manual_seed(0)  # the gradient-descent starts below are random
pio.renderers.default = "plotly_mimetype+notebook_connected"
FAST = os.environ.get("EXPLORER_FAST") == "1"
np.set_printoptions(precision=4, suppress=True)

# %% [markdown]
# A small augmentation graph to check the algebra on: 12 natural images, 20 augmented ones, and
# a random feature map $f$ with $k = 4$ outputs.

# %%
rng = np.random.default_rng(0)
n_natural, n, k = 12, 20, 4
A = rng.random((n_natural, n)) ** 4  # each natural image favours a few augmentations
A /= A.sum(1, keepdims=True)
W = graph.augmentation_graph(np.full(n_natural, 1 / n_natural), A)  # sums to 1
w = graph.degrees(W)  # (n,) marginal of an augmented image
Abar = graph.normalized_adjacency(W)
f = rng.normal(size=(n, k))  # row x is f(x)
print(f"W: {W.shape}, sums to {W.sum():.6f}; f: {f.shape}")

# %% [markdown]
# ## Step 1: matrix factorisation
# Look for $F \in \mathbb R^{n \times k}$ with $F F^\top \approx \bar A$:
#
# $$\mathcal L_{\mathrm{mf}}(F) = \big\|\bar A - F F^\top\big\|_F^2
#  = \|\bar A\|_F^2 - 2\,\mathrm{tr}\big(F^\top \bar A F\big) + \big\|F^\top F\big\|_F^2 .$$
#
# (Expand the square; $\mathrm{tr}(F F^\top F F^\top) = \|F^\top F\|_F^2$.)

# %%
F = rng.normal(size=(n, k))
lhs = graph.matrix_factorization_loss(F, W)
rhs = (Abar**2).sum() - 2 * np.trace(F.T @ Abar @ F) + ((F.T @ F) ** 2).sum()
print(f"||Abar - F F^T||^2 = {lhs:.6f};  expanded: {rhs:.6f}")
assert np.isclose(lhs, rhs)

# %% [markdown]
# ## Step 2: the minimiser is spectral (Eckart-Young-Mirsky)
# The best rank-$k$ approximation of a symmetric PSD matrix keeps its top $k$ eigenpairs:
# $F^\star = [\sqrt{\gamma_1} v_1, \dots, \sqrt{\gamma_k} v_k]\,R$ for any rotation $R$, and
#
# $$\min_F \mathcal L_{\mathrm{mf}} = \sum_{i>k} \gamma_i^2
#   = \|\bar A\|_F^2 - \sum_{i \le k} \gamma_i^2 .$$

# %%
gammas = graph.graph_spectrum(W)
F_star = graph.spectral_embedding(W, k, scale=True)
print("eigenvalues of Abar:", gammas[:8], "...")
print(f"L_mf(F*) = {graph.matrix_factorization_loss(F_star, W):.6f};"
      f"  sum of the other gamma^2 = {(gammas[k:] ** 2).sum():.6f}")  # fmt: skip
assert np.isclose(graph.matrix_factorization_loss(F_star, W), (gammas[k:] ** 2).sum())
assert gammas.min() > -1e-12  # an augmentation graph's Abar is PSD

# %% [markdown]
# ## Step 3: from rows of $F$ to a feature map
# Write row $x$ of $F$ as $u_x = \sqrt{w_x}\, f(x)$. The trace term becomes an expectation over
# **positive pairs** $(x, x^+) \sim w$:
#
# $$\mathrm{tr}(F^\top \bar A F) = \sum_{x,x'} \frac{w(x,x')}{\sqrt{w_x w_{x'}}}\,
#   \sqrt{w_x}\sqrt{w_{x'}}\, f(x)^\top f(x')
#   = \mathbb E_{(x,x^+)\sim w}\big[f(x)^\top f(x^+)\big].$$

# %%
U = graph.factor_from_embedding(f, W)  # u_x = sqrt(w_x) f(x)
trace = np.trace(U.T @ Abar @ U)
positive = sum(W[x, x2] * f[x] @ f[x2] for x in range(n) for x2 in range(n))
print(f"tr(F^T Abar F) = {trace:.6f};  E[f(x)^T f(x+)] = {positive:.6f}")
assert np.isclose(trace, positive)

# %% [markdown]
# ## Step 4: the regulariser is an expectation over independent pairs
# $$\|F^\top F\|_F^2 = \|F F^\top\|_F^2 = \sum_{x,x'} (u_x^\top u_{x'})^2
#   = \sum_{x,x'} w_x w_{x'} \big(f(x)^\top f(x')\big)^2
#   = \mathbb E_{x \sim w,\ x' \sim w}\big[(f(x)^\top f(x'))^2\big],$$
#
# with $x, x'$ drawn **independently** from the marginal: a negative pair.

# %%
regulariser = ((U.T @ U) ** 2).sum()
negative = sum(w[x] * w[x2] * (f[x] @ f[x2]) ** 2 for x in range(n) for x2 in range(n))
print(f"||F^T F||^2 = {regulariser:.6f};  E[(f(x)^T f(x'))^2] = {negative:.6f}")
assert np.isclose(regulariser, negative)

# %% [markdown]
# ## Step 5: the spectral contrastive loss
# Put steps 1, 3 and 4 together. Up to the constant $\|\bar A\|_F^2 = \sum_i \gamma_i^2$:
#
# $$\boxed{\ \mathcal L(f) = -2\,\mathbb E_{x, x^+}\big[f(x)^\top f(x^+)\big]
#   + \mathbb E_{x, x'}\big[(f(x)^\top f(x'))^2\big]
#   = \big\|\bar A - F F^\top\big\|_F^2 - \|\bar A\|_F^2\ }$$
#
# Everything in it can be estimated from samples: pull positive pairs together, push the
# squared similarity of independent pairs down. And from step 2, its minimum is
# $-\sum_{i\le k}\gamma_i^2$, reached exactly when the rows $u_x = \sqrt{w_x} f(x)$ form
# $[\sqrt{\gamma_1} v_1, \dots, \sqrt{\gamma_k} v_k]\,R$ for a rotation $R$ (when
# $\gamma_k > \gamma_{k+1}$): spanning the top-$k$ eigenvectors is needed, and so is the scale
# $\sqrt{\gamma_i}$ along each. One caveat the algebra makes visible: $w$ must be a
# **probability** (sum 1) for the identity; `opt.population_loss` normalises $W$
# itself.

# %%
population = opt.population_loss(f, W)
identity = graph.matrix_factorization_loss(U, W) - (Abar**2).sum()
print(f"L(f) = {population:.6f};  ||Abar - FF^T||^2 - ||Abar||^2 = {identity:.6f}")
assert np.isclose(population, identity)
assert np.isclose(population, -2 * positive + negative)
assert np.isclose((Abar**2).sum(), (gammas**2).sum())

# %% [markdown]
# ## Gradient descent finds the optimum
# The loss is not convex in $f$, yet symmetric low-rank matrix factorisation has no spurious
# local minima (Ge, Jin, Zheng, ICML 2017): every local minimum is global. Plain gradient
# descent on the exact population loss, from a small random start:

# %%
steps = 400 if FAST else 1500
f_t = (0.1 * torch.randn(n, k, dtype=torch.float64)).requires_grad_()
W_t = torch.from_numpy(W)
optimizer = torch.optim.SGD([f_t], lr=1.0)
history = []
for _ in range(steps):
    optimizer.zero_grad()
    loss = opt.population_loss(f_t, W_t)
    loss.backward()
    optimizer.step()
    history.append(loss.item())
optimum = opt.optimal_population_loss(W, k)
U_learned = graph.factor_from_embedding(f_t.detach().numpy(), W)
vectors = graph.spectral_embedding(W, k)
angles = np.degrees(scipy.linalg.subspace_angles(U_learned, vectors))
print(f"after {steps} steps: L = {history[-1]:.6f};  -sum_(i<=k) gamma_i^2 = {optimum:.6f}")
print("principal angles to the top-k eigenvectors (degrees):", angles)
assert abs(history[-1] - optimum) < 1e-3 * abs(optimum)
assert angles.max() < 5

# %%
fig = go.Figure()
fig.add_scatter(y=np.array(history) - optimum, mode="lines", name="L(f) - min")
fig.update_layout(
    yaxis_type="log",
    xaxis_title="gradient step",
    yaxis_title="L(f) − (−Σ γᵢ²)",
    width=600,
    height=360,
    title="Gradient descent on the population loss reaches the Eckart-Young optimum",
)
fig.show()

# %% [markdown]
# ## What the optimum looks like from the inside
# At the optimum $F^\top F = \mathrm{diag}(\gamma_1..\gamma_k)$ up to rotation, so
#
# $$\mathbb E_x[f(x) f(x)^\top] = \sum_x w_x f(x) f(x)^\top = F^\top F
#   \ \text{has eigenvalues}\ \gamma_1, \dots, \gamma_k, \qquad
#   \mathbb E_{x,x^+}[f(x) f(x^+)^\top] = F^\top \bar A F
#   \ \text{has eigenvalues}\ \gamma_1^2, \dots, \gamma_k^2 .$$
#
# Both are averages over samples. So the **spectrum of a batch Gram matrix of learned features
# estimates the top of the augmentation graph's spectrum**, without ever building the graph.
# Notebook 4 uses this on a trained network.
#
# The implication runs one way only: these eigenvalues are **necessary, not sufficient** for
# the optimum. Any $F = [\sqrt{\gamma_1} u_1, \dots, \sqrt{\gamma_k} u_k]$ with orthonormal
# $u_i$ has $F^\top F = \mathrm{diag}(\gamma_1..\gamma_k)$; only $u_i$ spanning the top-$k$
# eigenvectors make it a minimum. And $\mathbb E[f f^{+\top}] = \mathbb E[f f^\top]^2$ holds
# at every stationary point, the saddles made of other eigenvectors included. The last cell
# checks both on a table built from eigenvectors 2 to $k + 1$.

# %%
f_opt = f_t.detach().numpy()
auto = (w[:, None] * f_opt).T @ f_opt  # E_x[f f^T], (k, k)
cross = f_opt.T @ W @ f_opt  # E_{x,x+}[f(x) f(x+)^T], (k, k)
print("eig E[f f^T]:      ", np.linalg.eigvalsh(auto)[::-1])
print("eig E[f f+^T]:     ", np.linalg.eigvalsh(cross)[::-1])
print("gamma_1..k:        ", gammas[:k])
print("gamma_1..k squared:", gammas[:k] ** 2)
assert np.allclose(np.linalg.eigvalsh(auto)[::-1], gammas[:k], atol=1e-3)
assert np.allclose(np.linalg.eigvalsh(cross)[::-1], gammas[:k] ** 2, atol=1e-3)

# %%
# not sufficient: the top eigenvalues on the wrong directions (eigenvectors 2..k+1), and a
# saddle (eigenvectors 2..k+1 with their own eigenvalues) where C+ = C^2 holds all the same
_, all_vectors = graph.top_eigenpairs(W, k + 1)
f_wrong = graph.embedding_from_factor(all_vectors[:, 1:] * np.sqrt(gammas[:k]), W)
f_saddle = graph.embedding_from_factor(all_vectors[:, 1:] * np.sqrt(gammas[1 : k + 1]), W)
C_wrong = (w[:, None] * f_wrong).T @ f_wrong
C_saddle, C_plus = (w[:, None] * f_saddle).T @ f_saddle, f_saddle.T @ W @ f_saddle
loss_wrong = opt.population_loss(f_wrong, W)
print(f"top eigenvalues, wrong directions: eig E[f f^T] = {np.linalg.eigvalsh(C_wrong)[::-1]}, "
      f"L = {loss_wrong:.4f} > {optimum:.4f}")  # fmt: skip
print(f"saddle: ||C+ - C^2|| = {np.linalg.norm(C_plus - C_saddle @ C_saddle):.1e}, "
      f"L = {opt.population_loss(f_saddle, W):.4f}")  # fmt: skip
assert np.allclose(np.linalg.eigvalsh(C_wrong)[::-1], gammas[:k]) and loss_wrong > optimum + 1e-3
assert np.allclose(C_plus, C_saddle @ C_saddle)
assert opt.population_loss(f_saddle, W) > optimum + 1e-3

# %% [markdown]
# ## The mini-batch loss is unbiased
# Training sees a batch of $B$ positive pairs $(z_{1i}, z_{2i})$ at a time. The loss this
# package uses (`explorer.losses.spectral_contrastive_loss`, exactly the paper's code) is
#
# $$\hat{\mathcal L} = -\frac{2}{B}\sum_i z_{1i}^\top z_{2i}
#    + \frac{1}{B(B-1)}\sum_{i \ne j} (z_{1i}^\top z_{2j})^2$$
#
# (then divided by $\mu$, after clipping rows to the ball of radius $\sqrt\mu$; with $\mu$ large
# nothing is clipped). Row $i$ of one view and row $j \ne i$ of the other come from different
# natural images, hence are independent draws from the marginal: each term is unbiased. Check
# it by sampling pairs from $W$:

# %%
batches, batch_size, mu = (300 if FAST else 2000), 32, 1e8
f_fixed = torch.from_numpy(f)
sample_rng = np.random.default_rng(1)
estimates = np.empty(batches)
for b in range(batches):
    i, j = graph.sample_positive_pairs(W, batch_size, sample_rng)
    loss, _, _ = spectral_contrastive_loss(f_fixed[i], f_fixed[j], mu=mu)
    estimates[b] = mu * loss.item()
standard_error = estimates.std(ddof=1) / np.sqrt(batches)
z = (estimates.mean() - population) / standard_error
print(f"exact L(f) = {population:.4f}; mean of {batches} mini-batch losses = "
      f"{estimates.mean():.4f} ± {standard_error:.4f} (z = {z:.2f})")  # fmt: skip
assert abs(z) < 4

# %%
fig = go.Figure(go.Histogram(x=estimates, nbinsx=60, name="mini-batch losses"))
fig.add_vline(x=population, line_color="black", annotation_text="exact L(f)")
fig.add_vline(x=estimates.mean(), line_dash="dash", line_color="red", annotation_text="mean")
fig.update_layout(
    xaxis_title="mini-batch loss",
    width=600,
    height=360,
    title=f"{batches} mini-batches of {batch_size} positive pairs",
)
fig.show()

# %% [markdown]
# ## On the `shapes` graph
# The same gradient descent on the exact `shapes` graph with $k = 8$: the loss reaches
# $-\sum_{i \le 8}\gamma_i^2 = -(6 \cdot 1^2 + 2 \cdot 0.25^2)$ and the first six learned
# directions are the class indicators.

# %%
subgrid = {"rotation": (0, 2), "fg_color": (0, 2)} if FAST else None
shapes = shapes_graph.shapes_augmentation_graph(subgrid=subgrid)
Ws = torch.from_numpy(shapes.weights)
fs = (0.1 * torch.randn(shapes.num_nodes, 8, dtype=torch.float64)).requires_grad_()
optimizer = torch.optim.Adam([fs], lr=0.05)
for _ in range(150 if FAST else 300):
    optimizer.zero_grad()
    loss = opt.population_loss(fs, Ws)
    loss.backward()
    optimizer.step()
optimum = opt.optimal_population_loss(shapes.weights, 8)
print(f"L(f) = {loss.item():.4f}; optimum {optimum:.4f}")
assert loss.item() - optimum < 0.02 * abs(optimum)
# the learned features predict the class through a linear map: regress class indicators on f
onehot = np.eye(6)[shapes.labels]
features = fs.detach().numpy()
coef, *_ = np.linalg.lstsq(np.c_[features, np.ones(len(features))], onehot, rcond=None)
accuracy = (np.argmax(np.c_[features, np.ones(len(features))] @ coef, 1) == shapes.labels).mean()
print(f"least-squares linear head on the learned f: accuracy {accuracy:.3f}")
assert accuracy == 1.0

# %% [markdown]
# ## The ball of radius $\sqrt\mu$
# The loss as the paper's code computes it first clips every projector output $z$ to the ball
# $\|z\|^2 \le \mu$, then divides the batch loss by $\mu$. With $f = \mathrm{clip}(z)$ (not
# $\mathrm{clip}(z)/\sqrt\mu$), $\mu$ times that loss is exactly the batch estimate of
# $\mathcal L(f)$ above, so **the theory's $f$ is $\mathrm{clip}(z)$**. (The unbiasedness check
# above used $\mu = 10^8$, where nothing is clipped and $f = z$.) Check it on a batch whose rows
# mostly lie outside the ball:

# %%
mu = 10.0
z1, z2 = 3 * torch.randn(64, 16, dtype=torch.float64), 3 * torch.randn(64, 16, dtype=torch.float64)


def batch_estimate(f1: torch.Tensor, f2: torch.Tensor) -> float:
    """-2 E[f(x)^T f(x+)] + E[(f(x)^T f(x'))^2] on a batch: positive pairs i, negatives i != j."""
    gram = f1 @ f2.T  # BxB
    off_diagonal = ~torch.eye(len(f1), dtype=torch.bool)
    return (-2 * gram.diagonal().mean() + (gram[off_diagonal] ** 2).mean()).item()


loss, _, _ = spectral_contrastive_loss(z1, z2, mu=mu)
on_clip = batch_estimate(clip_to_ball(z1, mu), clip_to_ball(z2, mu))
on_scaled = batch_estimate(clip_to_ball(z1, mu) / mu**0.5, clip_to_ball(z2, mu) / mu**0.5)
print(f"mu * loss = {mu * loss.item():.6f};  L-hat(clip z) = {on_clip:.6f};  "
      f"mu * L-hat(clip z / sqrt mu) = {mu * on_scaled:.6f}")  # fmt: skip
assert np.isclose(mu * loss.item(), on_clip) and not np.isclose(mu * loss.item(), mu * on_scaled)

# %% [markdown]
# So the loss minimises $\mathcal L(f)$ over $f$ **inside the ball** $\|f(x)\|^2 \le \mu$.
# The unconstrained optimum $f^\star(x) = u_x/\sqrt{w_x}$ has
# $\mathbb E_w\|f^\star\|^2 = \sum_{i\le k}\gamma_i$, and its largest row can be much longer:
# if $\max_x \|f^\star(x)\|^2 > \mu$ the ball cuts the optimum off and the best reachable loss
# is higher. For the `shapes` graph of the previous section with $k = 128$ (the projector width
# of the `shapes` recipes):

# %%
k_ball = 128
gammas_s = graph.graph_spectrum(shapes.weights, k_ball + 1)
f_star = opt.optimal_features(shapes.weights, k_ball)  # (n, k)
w_s = graph.degrees(shapes.weights)
max_sq = opt.max_optimal_sq_norm(shapes.weights, k_ball)
unconstrained = opt.optimal_population_loss(shapes.weights, k_ball)
mean_sq = (w_s * (f_star**2).sum(1)).sum()  # E_w||f*||^2
print(f"{shapes.num_nodes} nodes, k = {k_ball}: max_x ||f*(x)||^2 = {max_sq:.2f};  "
      f"E_w||f*||^2 = {mean_sq:.2f} = sum gamma_i = {gammas_s[:k_ball].sum():.2f}")  # fmt: skip
print(f"unconstrained optimum -sum gamma_i^2 = {unconstrained:.4f};  "
      f"gamma_k = {gammas_s[k_ball - 1]:.4f}, gamma_(k+1) = {gammas_s[k_ball]:.4f}")  # fmt: skip
assert np.isclose(mean_sq, gammas_s[:k_ball].sum())

# %% [markdown]
# When $\gamma_k = \gamma_{k+1}$, $k$ cuts a degenerate eigenspace in two: then any $k$-dimensional
# choice inside it is optimal, and $\max_x\|f^\star(x)\|^2$ is that of the choice the eigensolver
# returned. It is a $\mu$ that certainly suffices, not the least one (which is at least
# $\mathbb E_w\|f^\star\|^2$).
#
# `opt.ball_constrained_optimum` solves $\min \mathcal L(f)$ s.t. $\|f(x)\|^2 \le \mu$ by
# accelerated projected gradient on the table $f$, from the clipped $f^\star$; when $f^\star$ fits,
# it returns $-\sum_{i\le k}\gamma_i^2$ without a solve. Its `lower_bound` is a Lagrangian dual
# bound, so `loss - lower_bound` certifies how far from the true constrained optimum it can be.
# The paper used $\mu = 1$ (CIFAR) and $\mu = 10$ (ImageNet); the figure marks $\mu = 10$. The
# `shapes` demo uses 30, above max‖f*‖² of this (uniform) sub-grid graph.

# %%
results = {}
for mu in (1.0, 10.0, 30.0):
    started = time.perf_counter()
    results[mu] = opt.ball_constrained_optimum(shapes.weights, k_ball, mu)
    r = results[mu]
    eigs = np.linalg.eigvalsh((w_s[:, None] * r.features).T @ r.features)[::-1]
    print(f"mu = {mu:4g}: reachable optimum {r.loss:8.4f} (certified >= {r.lower_bound:8.4f}), "
          f"cost of the ball {r.cost:.4f}, binds {r.binds}, {r.iterations} iterations, "
          f"{time.perf_counter() - started:.1f} s;  top of eig E_w[f f^T]: {eigs[:7]}")  # fmt: skip
    assert (r.features**2).sum(1).max() <= mu * (1 + 1e-9)  # every row inside the ball
    assert unconstrained - 1e-9 <= r.loss <= 0  # between the optimum and f = 0
    assert r.loss - r.lower_bound < 1e-3 * abs(r.loss)  # certified near-optimal
assert opt.population_loss(np.zeros_like(f_star), shapes.weights) == 0  # f = 0
assert results[30.0].loss == unconstrained  # mu >= max ||f*||^2: exactly -sum gamma_i^2
assert max_sq <= 30.0 and not results[30.0].binds
# mu = 1: the six classes collapse onto orthogonal points of norm 1, each of weight 1/6:
# L = -2 * 1 + 6 * (1/6)^2 * 1^2, and E_w[f f^T] has six eigenvalues 1/6
assert np.isclose(results[1.0].loss, -2 + 1 / 6, atol=1e-6)

# %% [markdown]
# At $\mu = 1$ no $f$ can show the spectrum: $\mathbb E_w[f f^\top]$ has six eigenvalues $1/6$
# instead of six 1s and the $\gamma = 0.25$ block. The reachable optimum against $\mu$:

# %%
mus = np.geomspace(0.3, 40, 6 if FAST else 14)
curve = opt.reachable_optimum_curve(shapes.weights, k_ball, mus, tol=1e-6, max_iterations=400)
assert np.all(np.diff(curve) <= 1e-6)  # a larger ball never does worse
assert np.all((curve >= unconstrained - 1e-9) & (curve < 0))
print("mu:               ", mus.round(2))
print("reachable optimum:", curve.round(4))
fig = figures.reachable_optimum_figure(mus, curve, unconstrained, mu_run=10.0, max_sq_norm=max_sq)
fig.update_layout(width=700, title=f"shapes graph, k = {k_ball}: the ball ||f(x)||² ≤ μ")
fig.show()

# %% [markdown]
# **Next:** [04_training](04_training.ipynb) replaces the table $f$ by a convolutional network
# trained on rendered `shapes` images through the package, and compares what it learns with the
# exact spectral embedding computed here.
