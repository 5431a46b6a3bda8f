"""explorer.graphs.spectral and explorer.graphs.optimum against independent references: loops,
NumPy eigh, scikit-learn, closed forms."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.linalg
import scipy.optimize
import scipy.sparse as sp
import torch
from sklearn.cluster import SpectralClustering
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import adjusted_rand_score

from explorer.graphs import optimum
from explorer.graphs import shapes as shapes_graph
from explorer.graphs import spectral as graph
from explorer.losses import spectral_contrastive_loss


def random_augmentation_graph(n_natural: int, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    p = rng.random(n_natural)
    A = rng.random((n_natural, n)) ** 3  # skewed rows, like real augmentations
    return graph.augmentation_graph(p / p.sum(), A / A.sum(1, keepdims=True))


def projector(vectors: np.ndarray) -> np.ndarray:
    q, _ = np.linalg.qr(vectors)
    return q @ q.T


@pytest.mark.parametrize(("m", "n"), [(1, 1), (3, 5), (6, 4)])
def test_augmentation_graph_matches_loops(m: int, n: int) -> None:
    rng = np.random.default_rng(m * 10 + n)
    p = rng.dirichlet(np.ones(m))
    A = rng.dirichlet(np.ones(n), size=m)  # (m, n), rows are distributions
    expected = np.zeros((n, n))
    for x, x2, xbar in itertools.product(range(n), range(n), range(m)):
        expected[x, x2] += p[xbar] * A[xbar, x] * A[xbar, x2]
    W = graph.augmentation_graph(p, A)
    np.testing.assert_allclose(W, expected, atol=1e-12)
    assert W.sum() == pytest.approx(1.0)
    W_torch = graph.augmentation_graph(torch.from_numpy(p), torch.from_numpy(A))
    assert isinstance(W_torch, torch.Tensor)
    np.testing.assert_allclose(W_torch.numpy(), expected, atol=1e-12)


def test_normalized_adjacency_and_laplacian_match_loops() -> None:
    W = random_augmentation_graph(4, 6, seed=0)
    d = W.sum(1)
    expected = np.array([[W[i, j] / np.sqrt(d[i] * d[j]) for j in range(6)] for i in range(6)])
    np.testing.assert_allclose(graph.normalized_adjacency(W), expected, atol=1e-12)
    np.testing.assert_allclose(graph.normalized_adjacency(7.0 * W), expected, atol=1e-12)
    np.testing.assert_allclose(graph.laplacian(W), np.eye(6) - expected, atol=1e-12)
    as_torch = graph.laplacian(torch.from_numpy(W))
    assert isinstance(as_torch, torch.Tensor)
    np.testing.assert_allclose(as_torch.numpy(), np.eye(6) - expected, atol=1e-12)
    sparse = graph.normalized_adjacency(sp.csr_matrix(W))
    np.testing.assert_allclose(sparse.toarray(), expected, atol=1e-12)
    # an augmentation graph's Abar is PSD with top eigenvalue 1 (eigenvector sqrt(d))
    values = np.linalg.eigvalsh(expected)
    assert values.min() > -1e-12 and values.max() == pytest.approx(1.0)


def test_spectral_embedding_matches_numpy_eigh() -> None:
    W = random_augmentation_graph(5, 9, seed=1)
    values, vectors = np.linalg.eigh(graph.normalized_adjacency(W))
    top_values, top_vectors = values[::-1][:3], vectors[:, ::-1][:, :3]
    gammas, embedding = graph.top_eigenpairs(W, 3)
    np.testing.assert_allclose(gammas, top_values, atol=1e-10)
    np.testing.assert_allclose(projector(embedding), projector(top_vectors), atol=1e-8)
    np.testing.assert_allclose(graph.graph_spectrum(W), values[::-1], atol=1e-10)
    scaled = graph.spectral_embedding(W, 3, scale=True)
    np.testing.assert_allclose(
        scaled @ scaled.T, top_vectors * top_values @ top_vectors.T, atol=1e-10
    )
    as_torch = graph.spectral_embedding(torch.from_numpy(W), 3)
    assert isinstance(as_torch, torch.Tensor)
    np.testing.assert_allclose(projector(as_torch.numpy()), projector(top_vectors), atol=1e-8)


def test_sparse_input_uses_eigsh_and_agrees(monkeypatch: pytest.MonkeyPatch) -> None:
    W = graph.block_graph((20, 20, 20), between=0.01)
    monkeypatch.setattr(graph, "DENSE_LIMIT", 10)  # force the eigsh path on a small graph
    gammas, vectors = graph.top_eigenpairs(sp.csr_matrix(W), 3)
    dense_gammas, dense_vectors = graph.top_eigenpairs(W, 3)
    np.testing.assert_allclose(gammas, dense_gammas, atol=1e-8)
    np.testing.assert_allclose(projector(vectors), projector(dense_vectors), atol=1e-6)


def test_spectral_clustering_agrees_with_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    sizes = (12, 9, 15, 10)
    W = graph.block_graph(sizes, within=1.0, between=0.02)
    W = W * rng.uniform(0.5, 1.5, W.shape)
    W = (W + W.T) / 2  # still a clear block graph, no longer exactly constant blocks
    truth = np.repeat(np.arange(len(sizes)), sizes)
    ours = graph.spectral_clustering(W, 4)
    theirs = SpectralClustering(4, affinity="precomputed", random_state=0).fit_predict(W)
    assert adjusted_rand_score(ours, theirs) == 1.0
    assert adjusted_rand_score(ours, truth) == 1.0


def test_identity_matrix_factorization_equals_population_loss_plus_constant() -> None:
    W = 3.0 * random_augmentation_graph(6, 10, seed=2)  # any scale: Abar does not see it
    constant = (graph.normalized_adjacency(W) ** 2).sum()
    rng = np.random.default_rng(3)
    for k in (1, 4, 12):
        f = rng.normal(size=(10, k))
        lhs = graph.matrix_factorization_loss(graph.factor_from_embedding(f, W), W)
        assert lhs == pytest.approx(optimum.population_loss(f, W) + constant, rel=1e-10)
        back = graph.embedding_from_factor(graph.factor_from_embedding(f, W), W)
        np.testing.assert_allclose(back, f, atol=1e-10)


def test_population_loss_matches_loops() -> None:
    W = random_augmentation_graph(3, 5, seed=4)
    f = np.random.default_rng(5).normal(size=(5, 2))
    w = W.sum(1)
    expected = sum(
        -2 * W[i, j] * f[i] @ f[j] + w[i] * w[j] * (f[i] @ f[j]) ** 2
        for i, j in itertools.product(range(5), range(5))
    )
    assert optimum.population_loss(f, W) == pytest.approx(expected, rel=1e-12)


def test_gradient_descent_reaches_eckart_young_optimum() -> None:
    W = graph.block_graph((4, 4, 4), between=0.05) + 0.02 * random_augmentation_graph(8, 12, 6)
    k = 3
    torch.manual_seed(0)
    W_t = torch.from_numpy(W)
    f = (0.1 * torch.randn(12, k, dtype=torch.float64)).requires_grad_()
    optimizer = torch.optim.SGD([f], lr=0.5)
    for _ in range(1500):
        optimizer.zero_grad()
        loss = optimum.population_loss(f, W_t)
        loss.backward()
        optimizer.step()
    gammas, vectors = np.linalg.eigh(graph.normalized_adjacency(W))
    gammas, vectors = gammas[::-1], vectors[:, ::-1]
    assert gammas[k - 1] - gammas[k] > 0.3  # a spectral gap, so the subspace is unique
    assert loss.item() == pytest.approx(-(gammas[:k] ** 2).sum(), abs=1e-6)
    assert optimum.optimal_population_loss(W, k) == pytest.approx(-(gammas[:k] ** 2).sum())
    factor = graph.factor_from_embedding(f.detach().numpy(), W)
    angles = scipy.linalg.subspace_angles(factor, vectors[:, :k])
    assert angles.max() < 1e-3
    # and F F^T is the best rank-k approximation: F^T F has eigenvalues gamma_1..gamma_k
    np.testing.assert_allclose(np.linalg.eigvalsh(factor.T @ factor)[::-1], gammas[:k], atol=1e-5)


def test_mini_batch_loss_is_unbiased() -> None:
    W = random_augmentation_graph(6, 10, seed=7)
    f = np.random.default_rng(8).normal(size=(10, 3))
    exact = optimum.population_loss(f, W)
    rng = np.random.default_rng(9)
    mu = 1e8  # nothing is clipped: sqrt(mu) exceeds every norm
    f_t = torch.from_numpy(f)
    estimates = []
    for _ in range(3000):
        i, j = graph.sample_positive_pairs(W, 16, rng)
        loss, _, _ = spectral_contrastive_loss(f_t[i], f_t[j], mu=mu)
        estimates.append(mu * loss.item())
    estimates = np.asarray(estimates)
    standard_error = estimates.std(ddof=1) / np.sqrt(len(estimates))
    assert abs(estimates.mean() - exact) < 4 * standard_error


def test_three_component_example() -> None:
    W = graph.block_graph((3, 3, 3))
    labels = np.repeat([0, 1, 2], 3)
    gammas, vectors = graph.top_eigenpairs(W, 4)
    np.testing.assert_allclose(gammas[:3], 1.0, atol=1e-12)
    assert gammas[3] < 1e-12  # each block is rank one: nothing else
    # rows of the eigenvector matrix are component indicators up to a rotation and scale
    indicators = np.eye(3)[labels] / np.sqrt(3)
    np.testing.assert_allclose(projector(vectors[:, :3]), indicators @ indicators.T, atol=1e-10)
    rows = vectors[:, :3]
    for a, b in itertools.combinations(range(9), 2):
        assert np.allclose(rows[a], rows[b]) == (labels[a] == labels[b])
    head = LogisticRegression(C=100.0).fit(rows, labels == 0)  # {x1, x2, x3} against the rest
    assert head.score(rows, labels == 0) == 1.0
    # weak edges between the components: eigenvalues near 1 still count them
    weak = graph.graph_spectrum(graph.block_graph((3, 3, 3), between=0.02), 4)
    assert weak[0] == pytest.approx(1.0) and weak[2] > 0.9 and weak[3] < 0.1


def test_shapes_graph_components_are_classes() -> None:
    g = shapes_graph.shapes_augmentation_graph()
    assert g.weights.shape == (g.num_nodes, g.num_nodes)
    assert g.weights.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(g.weights, g.weights.T, atol=1e-15)
    # circles and rings look the same at every rotation: 3 tuples per node; the rest 1
    rotation_invariant = np.isin(g.labels, [0, 4])
    assert np.all(g.multiplicity[rotation_invariant] == 3)
    assert np.all(g.multiplicity[~rotation_invariant] == 1)
    assert g.num_nodes == 4 * 5 * 2 * 3 * 3 * 2 + 2 * 5 * 2 * 3 * 2
    # no edge between classes, and each class is connected: the components are the classes
    across = g.labels[:, None] != g.labels[None, :]
    assert np.all(g.weights[across] == 0)
    # closed form: eigenvalue 1 once per class, then max over factors of (1 - p)^2 = 0.25
    gammas = graph.graph_spectrum(g.weights, 7)
    np.testing.assert_allclose(gammas[:6], 1.0, atol=1e-10)
    assert gammas[6] == pytest.approx(0.25)
    images = g.images(np.arange(4))
    assert images.shape == (4, 3, 32, 32) and images.dtype == torch.uint8
    assert len({bytes(image.numpy()) for image in g.images()}) == g.num_nodes  # distinct images


def test_shapes_graph_nearly_disconnected_and_errors() -> None:
    subgrid = {"position": (12,), "scale": (1,), "rotation": (0, 3), "bg_color": (0,)}
    g = shapes_graph.shapes_augmentation_graph(subgrid=subgrid, color_p=0.5, shape_p=0.1)
    gammas = graph.graph_spectrum(g.weights, 7)
    assert gammas[0] == pytest.approx(1.0)
    assert np.all(gammas[1:6] > 0.8) and gammas[6] <= 0.25 + 1e-9  # (1 - 0.1)^2 vs (1 - 0.5)^2
    assert graph.spectral_clustering(g.weights, 6).shape == (g.num_nodes,)
    with pytest.raises(ValueError, match="max_nodes"):
        shapes_graph.shapes_augmentation_graph(max_nodes=100)
    with pytest.raises(ValueError, match="position"):
        shapes_graph.shapes_augmentation_graph(subgrid={"position": (25,)})
    with pytest.raises(ValueError, match="unknown factors"):
        shapes_graph.shapes_augmentation_graph(subgrid={"colour": (0,)})


# --- the ball ||f(x)||^2 <= mu ----------------------------------------------------------------


def optimum_table_from_eigh(W: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(gammas (k,), f* (n, k)) from np.linalg.eigh: f*(x) = sqrt(gamma) v(x) / sqrt(w_x)."""
    joint = W / W.sum()
    w = joint.sum(1)
    values, vectors = np.linalg.eigh(joint / np.sqrt(np.outer(w, w)))
    gammas, vectors = values[::-1][:k], vectors[:, ::-1][:, :k]
    return gammas, vectors * np.sqrt(np.clip(gammas, 0, None)) / np.sqrt(w)[:, None]


@pytest.mark.parametrize(("k", "seed"), [(1, 0), (3, 1), (6, 2)])
def test_max_optimal_sq_norm_matches_eigh(k: int, seed: int) -> None:
    W = random_augmentation_graph(8, 12, seed=seed)
    gammas, table = optimum_table_from_eigh(W, k)
    assert optimum.max_optimal_sq_norm(W, k) == pytest.approx((table**2).sum(1).max(), rel=1e-10)
    ours = optimum.optimal_features(W, k)
    np.testing.assert_allclose((ours**2).sum(1), (table**2).sum(1), atol=1e-10)
    rotation, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(k, k)))
    np.testing.assert_allclose(((table @ rotation) ** 2).sum(1), (table**2).sum(1), atol=1e-10)
    w = W.sum(1) / W.sum()
    assert (w * (table**2).sum(1)).sum() == pytest.approx(gammas.sum())  # E_w||f*||^2
    assert optimum.population_loss(ours, W) == pytest.approx(-(gammas**2).sum())


@pytest.mark.parametrize("k", [2, 5])
def test_ball_that_holds_the_optimum_returns_it_exactly(k: int) -> None:
    W = 2.0 * random_augmentation_graph(6, 10, seed=3)
    gammas, table = optimum_table_from_eigh(W, k)
    max_sq = (table**2).sum(1).max()
    for mu in (max_sq, 1.5 * max_sq):
        result = optimum.ball_constrained_optimum(W, k, mu)
        assert result.loss == pytest.approx(-(gammas**2).sum(), abs=1e-9)
        assert result.unconstrained_loss == pytest.approx(-(gammas**2).sum(), abs=1e-9)
        assert not result.binds and result.iterations == 0 and result.cost == 0
        assert (result.features**2).sum(1).max() <= mu * (1 + 1e-12)
        np.testing.assert_allclose(result.features @ result.features.T, table @ table.T,
                                   atol=1e-9)


# Closed form, m disconnected cliques of s nodes (w_x = 1/n, w(x, x') = 1/(m s^2) inside a
# clique), k features. Let a_c be the mean of f over clique c and M = E_w[f f^T]. Then
#   E_{x,x+}[f(x)^T f(x+)] = (1/m) sum_c ||a_c||^2 = tr(M_a),   M_a = (1/m) sum_c a_c a_c^T,
# and M = M_a + (within-clique covariance) >= M_a >= 0, so ||M||_F >= ||M_a||_F and
#   L(f) >= -2 tr(M_a) + ||M_a||_F^2 = sum_i (lambda_i^2 - 2 lambda_i)
# over the eigenvalues lambda of M_a: at most r = min(m, k) of them are non-zero, and their sum
# is at most mu (||a_c||^2 <= mu, the ball is convex). The sum of the convex lambda^2 - 2 lambda
# is smallest at r equal values min(mu, r)/r, so L >= -2 min(mu, r) + min(mu, r)^2 / r.
# Reached by constant f on each clique at points of norm^2 mu forming a tight frame
# ((1/m) sum_c a_c a_c^T = (mu/r) I_r): orthogonal points when k >= m, e.g. m = 4 unit vectors
# 45 degrees apart in the plane when k = 2. So that is the constrained optimum.
def cliques_optimum(m: int, k: int, mu: float) -> float:
    r = min(m, k)
    return -2 * min(mu, r) + min(mu, r) ** 2 / r


@pytest.mark.parametrize(("m", "k", "mu"), [(3, 3, 0.5), (3, 5, 2.0), (6, 8, 1.0), (4, 2, 1.0)])
def test_ball_on_disconnected_cliques_matches_closed_form(m: int, k: int, mu: float) -> None:
    W = graph.block_graph((4,) * m)
    result = optimum.ball_constrained_optimum(W, k, mu)
    assert result.binds and result.converged
    assert result.loss == pytest.approx(cliques_optimum(m, k, mu), abs=1e-7)
    assert result.lower_bound == pytest.approx(cliques_optimum(m, k, mu), abs=1e-7)
    assert (result.features**2).sum(1).max() <= mu * (1 + 1e-12)
    assert result.loss >= result.unconstrained_loss == pytest.approx(-min(m, k))
    if k >= m:  # the cliques sit at orthogonal points of norm^2 mu
        labels = np.repeat(np.arange(m), 4)
        means = np.array([result.features[labels == c].mean(0) for c in range(m)])
        np.testing.assert_allclose(means @ means.T, mu * np.eye(m), atol=1e-5)


def test_k_splitting_a_degenerate_eigenspace_still_reaches_the_optimum() -> None:
    # four cliques, k = 2: eigenvalue 1 four times, so f* is one of many optimal tables, and
    # the one eigh returns need not fit the ball mu = k = 2 that a tight frame fits (see above)
    W = graph.block_graph((4, 4, 4, 4))
    assert optimum.max_optimal_sq_norm(W, 2) >= 2  # E_w||f*||^2 = 2: the maximum is no smaller
    result = optimum.ball_constrained_optimum(W, 2, 2.0)
    assert result.loss == pytest.approx(-2.0, abs=1e-7)


def brute_force_ball_optimum(W: np.ndarray, k: int, mu: float, starts: int) -> float:
    """min L(f) s.t. ||f(x)||^2 <= mu by SLSQP from many random starts (plain-loop loss)."""
    joint = W / W.sum()
    w = joint.sum(1)
    n = len(W)

    def loss(flat: np.ndarray) -> float:
        f = flat.reshape(n, k)
        return sum(-2 * joint[i, j] * f[i] @ f[j] + w[i] * w[j] * (f[i] @ f[j]) ** 2
                   for i in range(n) for j in range(n))

    constraints = [{"type": "ineq", "fun": lambda flat, i=i: mu - flat.reshape(n, k)[i] @
                    flat.reshape(n, k)[i]} for i in range(n)]
    rng = np.random.default_rng(0)
    best = np.inf
    for _ in range(starts):
        start = rng.normal(size=n * k) * np.sqrt(mu / k)
        solution = scipy.optimize.minimize(loss, start, method="SLSQP", constraints=constraints,
                                           options={"ftol": 1e-12, "maxiter": 500})
        f = solution.x.reshape(n, k)
        if (f**2).sum(1).max() <= mu * (1 + 1e-6):
            best = min(best, solution.fun)
    return best


@pytest.mark.parametrize(("k", "fraction"), [(1, 0.5), (2, 0.3), (2, 0.7)])
def test_ball_optimum_matches_brute_force_on_a_tiny_graph(k: int, fraction: float) -> None:
    W = random_augmentation_graph(4, 5, seed=10 + k)
    mu = fraction * optimum.max_optimal_sq_norm(W, k)
    brute = brute_force_ball_optimum(W, k, mu, starts=20)
    result = optimum.ball_constrained_optimum(W, k, mu)
    assert result.binds and result.converged
    assert result.loss == pytest.approx(brute, abs=1e-6)
    assert result.lower_bound <= brute + 1e-9  # weak duality: a bound, whatever the solver did
    assert result.unconstrained_loss < result.loss < 0  # f = 0 scores 0; the ball costs
    assert (result.features**2).sum(1).max() <= mu * (1 + 1e-12)
    assert optimum.population_loss(result.features, W) == pytest.approx(result.loss)


def test_reachable_optimum_curve_is_monotone_and_bounded() -> None:
    W = graph.block_graph((5, 4, 6), between=0.05)
    k = 4
    mus = np.array([0.2, 1.0, 3.0, 0.5, 100.0])
    curve = optimum.reachable_optimum_curve(W, k, mus)
    order = np.argsort(mus)
    assert np.all(np.diff(curve[order]) <= 1e-9)  # a larger ball never does worse
    unconstrained = optimum.optimal_population_loss(W, k)
    assert np.all(curve >= unconstrained - 1e-12) and np.all(curve < 0)
    assert curve[-1] == pytest.approx(unconstrained, abs=1e-12)
    single = optimum.ball_constrained_optimum(W, k, 1.0).loss
    assert curve[1] == pytest.approx(single, abs=1e-6)
    with pytest.raises(ValueError, match="mu"):
        optimum.ball_constrained_optimum(W, k, 0.0)
