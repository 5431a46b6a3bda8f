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
# # 4. Training a network, and what it learned
#
# Notebooks 1-3 worked with the exact augmentation graph of `shapes` and a *table* $f$, one row
# per node. Here a convolutional network is trained on rendered `shapes` images through the
# package, exactly as `explorer train --preset shapes-demo` does, with the spectral contrastive
# loss and with SimCLR beside it. Then we ask the theory's questions of the trained network:
#
# 1. Does a linear probe on its features classify well, as HaoChen et al. (2021) prove it should?
# 2. Does the spectrum of its batch Gram matrix estimate the graph's spectrum (notebook 3)?
# 3. How much of the exact top eigenvectors of the `shapes` graph do its features explain?
#
# The runs are short (20 epochs on 2,400 images) so the notebook fits about two minutes on two
# idle CPU cores; `make app` trains the full 30-epoch demo. Set `EXPLORER_FAST=1` to run every
# cell on a few hundred images.

# %%
import os
import tempfile
import time
import warnings

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import torch
from plotly.subplots import make_subplots
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.preprocessing import StandardScaler

with warnings.catch_warnings():  # tqdm warns that ipywidgets is missing: bars are off here
    warnings.simplefilter("ignore")
    from explorer import graph, shapes_graph
    from explorer.builders import build_views
    from explorer.config import build_config
    from explorer.evaluate import format_probe_table, probe_run
    from explorer.losses import clip_to_ball
    from explorer.probe import extract_features, linear_probe
    from explorer.runs import create_run
    from explorer.train import Trainer, load_splits
    from explorer.trained_model import load_trained_model

pio.renderers.default = "plotly_mimetype+notebook_connected"
FAST = os.environ.get("EXPLORER_FAST") == "1"
torch.set_num_threads(2)
np.set_printoptions(precision=3, suppress=True)

# %% [markdown]
# ## Train through the package
# The `shapes-demo` preset: a small CNN (`cnn-small`), a projector 512 → 128, $\mu = 10$,
# SGD with warm-up and cosine decay. Each run is a directory written by `explorer.runs`; the
# same runs open in the dashboard and the `explorer` command. The SimCLR run differs in one
# field, `loss=simclr`.

# %%
SIZE = (
    ["train_limit=512", "test_limit=256", "epochs=1", "batch_size=128", "warmup_epochs=0"]
    if FAST
    else ["train_limit=2400", "test_limit=1000", "epochs=20", "batch_size=128", "warmup_epochs=1"]
)
COMMON = [*SIZE, "device=cpu", "knn_every=0", "log_every=5", "checkpoint_every=100"]
runs_tmp = tempfile.TemporaryDirectory(prefix="explorer-notebook-")  # removed at kernel exit
runs_dir = runs_tmp.name
runs, seconds = {}, {}
for loss in ("spectral", "simclr"):
    config = build_config("shapes-demo", overrides=[*COMMON, f"loss={loss}"])
    run = create_run(runs_dir, config, name=f"shapes-{loss}")
    started = time.perf_counter()
    state = Trainer(config, progress=False).fit(run)
    seconds[loss] = time.perf_counter() - started
    assert state == "finished", run.status()
    runs[loss] = run
    print(f"{loss}: {config.epochs} epochs on {config.train_limit} images, {seconds[loss]:.0f} s")

# %%
fig = go.Figure()
for loss, run in runs.items():
    metrics = run.metrics()
    fig.add_scatter(
        x=[m["step"] for m in metrics], y=[m["loss"] for m in metrics], name=loss, mode="lines"
    )
fig.update_layout(
    xaxis_title="step",
    yaxis_title="loss",
    width=600,
    height=340,
    title="Training loss (each loss on its own scale)",
)
fig.show()

# %% [markdown]
# ## Linear and kNN probes
# `explorer.evaluate.probe_run` probes the frozen backbone's pooled features (before the
# projector, as in the paper) beside two baselines: raw pixels and the same backbone at its
# random initialisation. Chance is 1/6 ≈ 16.7%.

# %%
probes = {}
for loss, run in runs.items():
    probes[loss] = probe_run(run, baselines=(loss == "spectral"), progress=False)
    print(f"== {loss}\n{format_probe_table(probes[loss])}\n")
spectral_linear = probes["spectral"]["methods"]["trained"]["linear"]["accuracy"]
pixels_linear = probes["spectral"]["methods"]["raw_pixels"]["linear"]["accuracy"]
if not FAST:  # even a short run beats raw pixels
    assert spectral_linear > pixels_linear

# %% [markdown]
# ## UMAP of the learned features
# Test images embedded in 2-D by UMAP (McInnes et al. 2018) from each backbone's features.
# Colour is the class, which the networks never saw.

# %%
with warnings.catch_warnings():  # imported here: it takes a few seconds (and uses tqdm)
    warnings.simplefilter("ignore")
    import umap

config = runs["spectral"].config()
train, test = load_splits(config)
models, test_features = {}, {}
for loss, run in runs.items():
    models[loss], _ = load_trained_model(run, run.config(), in_channels=3)
    test_features[loss] = extract_features(models[loss].backbone, test.images, test.mean, test.std)
fig = make_subplots(rows=1, cols=2, subplot_titles=list(runs))
for col, features in enumerate(test_features.values(), start=1):
    xy = umap.UMAP(n_neighbors=15, random_state=0, n_jobs=1).fit_transform(features.numpy())
    for c, name in enumerate(test.classes):
        mask = test.labels.numpy() == c
        fig.add_scatter(
            x=xy[mask, 0],
            y=xy[mask, 1],
            mode="markers",
            name=name,
            marker={"size": 4, "color": c, "colorscale": "Turbo", "cmin": 0, "cmax": 5},
            legendgroup=name,
            showlegend=col == 1,
            row=1,
            col=col,
        )
fig.update_xaxes(showticklabels=False).update_yaxes(showticklabels=False)
fig.update_layout(width=900, height=440, title="UMAP of test features, coloured by class")
fig.show()

# %% [markdown]
# ## The spectrum, estimated from a batch
# Notebook 3 showed that at the optimum $\mathbb E_x[f f^\top]$ has eigenvalues
# $\gamma_1..\gamma_k$ and $\mathbb E_{x,x^+}[f(x) f(x^+)^\top]$ has eigenvalues $\gamma_i^2$. The
# network's $f$ is its projection, clipped to the ball of radius $\sqrt\mu$ as in the loss. On
# one batch of two augmented views:
#
# $$\hat\Sigma = \tfrac{1}{2B}\big(Z_1^\top Z_1 + Z_2^\top Z_2\big), \qquad
#   \hat C = \tfrac{1}{2B}\big(Z_1^\top Z_2 + Z_2^\top Z_1\big).$$
#
# Beside them, the exact $\gamma_i$ of the discrete `shapes` graph of notebooks 1-2. The two
# graphs differ (the network's augmentations are continuous crops, rotations and colour
# jitter, not moves on a grid), so only the shared structure should agree: **six eigenvalues
# near 1, one per shape**, then a drop.

# %%
model = models["spectral"].eval()
B = 256 if FAST else 2048
with torch.no_grad():
    torch.manual_seed(0)
    view1, view2 = build_views(config, train, torch.device("cpu"))(torch.arange(B))
    z1 = clip_to_ball(model(view1)[1], config.mu)  # (B, d)
    z2 = clip_to_ball(model(view2)[1], config.mu)
auto = ((z1.T @ z1 + z2.T @ z2) / (2 * B)).double()
cross = ((z1.T @ z2 + z2.T @ z1) / (2 * B)).double()
estimate = torch.linalg.eigvalsh(auto).flip(0).numpy()
estimate_sq = torch.linalg.eigvalsh(cross).flip(0).clamp_min(0).sqrt().numpy()
subgrid = {"rotation": (0, 2), "fg_color": (0, 2)} if FAST else None
shapes = shapes_graph.shapes_augmentation_graph(subgrid=subgrid)
exact = graph.graph_spectrum(shapes.weights, 20)
print("exact gamma (shapes graph):       ", exact[:10])
print("eig E[f f^T] (network, batch):    ", estimate[:10])
print("sqrt eig E[f f+^T] (network):     ", estimate_sq[:10])

# %%
fig = go.Figure()
index = np.arange(1, 21)
fig.add_scatter(x=index, y=exact, mode="markers+lines", name="exact γ, discrete shapes graph")
fig.add_scatter(x=index, y=estimate[:20], mode="markers+lines", name="eig E[f fᵀ], network")
fig.add_scatter(x=index, y=estimate_sq[:20], mode="markers+lines", name="√eig E[f f⁺ᵀ], network")
fig.update_layout(
    xaxis_title="i",
    yaxis_title="eigenvalue",
    width=700,
    height=380,
    title="Top of the spectrum: exact graph vs a trained network's batch Gram",
)
fig.show()

# %% [markdown]
# ## The network against the exact spectral embedding
# The nodes of the exact `shapes` graph are images, so the trained backbones can embed them
# too. Compare on those images:
#
# - **linear probe accuracy** (`explorer.probe.linear_probe`, half the nodes to train, half to
#   test) of
#   the exact spectral embedding $f^\star$ (top 6 and top 16 eigenvectors, as features
#   $f^\star(x) = u_x/\sqrt{w_x}$) and of each network's backbone features;
# - **how much of each eigenspace the network's features explain**: cross-validated ridge
#   regression from features to the eigenvectors; $R^2$ over the whole eigenspace (so the
#   arbitrary rotation inside a repeated eigenvalue does not matter).

# %%
node_images = shapes.images()
labels = shapes.labels
gammas, vectors = graph.top_eigenpairs(shapes.weights, shapes.num_nodes)  # every eigenpair
exact_f = graph.embedding_from_factor(vectors * np.sqrt(gammas.clip(0)), shapes.weights)
feature_sets = {
    "exact f*, top 6": exact_f[:, :6],
    "exact f*, top 16": exact_f[:, :16],
    **{
        f"{loss} backbone": extract_features(m.backbone, node_images, train.mean, train.std).numpy()
        for loss, m in models.items()
    },
    "raw pixels": node_images.flatten(1).float().numpy() / 255,
}
order = torch.from_numpy(np.random.default_rng(0).permutation(len(labels)))
half_train, half_test = order[: len(order) // 2], order[len(order) // 2 :]
node_labels = torch.from_numpy(labels)
accuracy = {}
for name, features in feature_sets.items():
    x = torch.as_tensor(StandardScaler().fit_transform(features), dtype=torch.float32)
    result = linear_probe(
        x[half_train], node_labels[half_train], x[half_test], node_labels[half_test], 6
    )
    accuracy[name] = result.accuracy
    print(f"{name:<20} linear probe on graph nodes: {100 * accuracy[name]:5.1f}%")
assert accuracy["exact f*, top 6"] == 1.0


# %%
def eigenspace_r2(features: np.ndarray, target: np.ndarray) -> float:
    """Cross-validated R^2 of predicting ``target`` (n, m) from ``features`` (n, d), pooled."""
    x = StandardScaler().fit_transform(features)
    folds = KFold(5, shuffle=True, random_state=0)  # nodes are sorted by class: shuffle
    predicted = cross_val_predict(RidgeCV(alphas=np.logspace(-3, 3, 7)), x, target, cv=folds)
    residual = ((target - predicted) ** 2).sum()
    return float(1 - residual / ((target - target.mean(0)) ** 2).sum())


blocks = {
    "γ = 1 (the six classes)": np.isclose(gammas, 1.0),
    "γ = 0.25 (crop, rotation)": np.isclose(gammas, 0.25),
    "γ = 0.04 (colours)": np.isclose(gammas, 0.04),
}
r2 = {}
for name in ("spectral backbone", "simclr backbone", "raw pixels"):
    r2[name] = {b: eigenspace_r2(feature_sets[name], exact_f[:, m]) for b, m in blocks.items()}
    print(f"{name:<18}", {b: round(v, 3) for b, v in r2[name].items()})

# %%
fig = go.Figure()
for name, values in r2.items():
    fig.add_bar(x=list(values), y=list(values.values()), name=name)
fig.update_layout(
    yaxis_title="cross-validated R²",
    yaxis_range=[0, 1],
    width=700,
    height=380,
    title="How much of each exact eigenspace the features explain",
)
fig.show()

# %% [markdown]
# ## What to take away
# The numbers of this run, gathered in one place (a short CPU run: they vary with the seed and
# the budget and the machine's load; `make app` trains the full 30-epoch demo on all 6,000
# images):

# %%
methods = probes["spectral"]["methods"]
summary = {
    "linear probe, test images": {
        "spectral": methods["trained"]["linear"]["accuracy"],
        "simclr": probes["simclr"]["methods"]["trained"]["linear"]["accuracy"],
        "raw pixels": methods["raw_pixels"]["linear"]["accuracy"],
        "random init": methods["random_init"]["linear"]["accuracy"],
    },
    "linear probe, graph nodes": {k: accuracy[k] for k in ("spectral backbone", "simclr backbone")},
}
for title, values in summary.items():
    print(f"{title:<28}" + "  ".join(f"{k} {100 * v:.1f}%" for k, v in values.items()))
print(f"{'top of E[f f^T], network':<28}{estimate[:8]}")
print(f"{'exact gamma, shapes graph':<28}{exact[:8]}")
print(f"{'R^2 of the class eigenspace':<28}" + "  ".join(
    f"{k} {v['γ = 1 (the six classes)']:.2f}" for k, v in r2.items()))  # fmt: skip
print(f"training time: {seconds['spectral']:.0f} s (spectral), {seconds['simclr']:.0f} s (SimCLR)")

# %% [markdown]
# How to read them:
# - **Probes.** Training with the spectral contrastive loss on positive pairs alone lifts the
#   linear probe far above raw pixels and the random backbone: the classes become much more
#   linearly separable, as the theory promises when classes are nearly disconnected components
#   of the augmentation graph. SimCLR, with the same short budget and its default temperature,
#   gains less in this run (see the summary above for the numbers).
# - **Spectrum.** $\gamma_1 = 1$ holds for every graph, and the network's top Gram eigenvalue
#   sits near 1. At the optimum six eigenvalues would be near 1 (one per shape) before a drop;
#   how gradually the network's estimate decays instead measures how far a short run still is
#   from that optimum. The estimate needs one batch and no graph: the dashboard plots it live.
# - **Eigenspaces.** The exact spectral embedding classifies the graph's nodes perfectly; the
#   network recovers part of the class eigenspace and least of the colour eigenspace, the
#   factor its augmentations change most: features keep what augmentation keeps.
