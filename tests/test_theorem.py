"""The theorem measured: the analysis and the exact metrics against optima built from eigenvectors.

Every expected value here comes from the theory's own construction, written in the test: the
optimum table f*(x) = v(x)·√γ / √w_x of the top-k eigenvectors of Ā (HaoChen et al. 2021,
Section 3.2), its loss −Σγ², and its moments E_w[f fᵀ] = diag(γ), E[f f⁺ᵀ] = diag(γ²).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from explorer.analysis import theorem
from explorer.analysis.checkpoint import ViewOutputs, add_view_metrics
from explorer.builders import build_model, load_splits
from explorer.config import Config, build_config
from explorer.graphs import optimum as O


def _optimum_table(W: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(f* (n, k), γ (k,)) from np.linalg.eigh of D^-1/2 W D^-1/2, W normalised to sum 1."""
    W = W / W.sum()
    w = W.sum(1)
    gammas, vectors = np.linalg.eigh(W / np.sqrt(np.outer(w, w)))
    gammas, vectors = gammas[::-1][:k], vectors[:, ::-1][:, :k]
    return vectors * np.sqrt(np.clip(gammas, 0, None)) / np.sqrt(w)[:, None], gammas


def _normalized(W: np.ndarray) -> np.ndarray:
    w = W.sum(1)
    return W / np.sqrt(np.outer(w, w))


def _pair_list_graph() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A small augmentation graph whose positive pairs can be listed exactly.

    Three natural data, each with four equally likely augmentations (with repeats) out of seven
    nodes; every ordered pair of augmentations of one datum is listed once, so the 48 pairs are
    distributed exactly as w(x, x') = Σ_x̄ p(x̄) A(x|x̄) A(x'|x̄).
    """
    augmentations = [(0, 0, 1, 2), (2, 3, 3, 4), (4, 5, 6, 6)]
    first, second = [], []
    for augs in augmentations:
        for a, b in itertools.product(augs, augs):
            first.append(a)
            second.append(b)
    first_idx, second_idx = np.array(first), np.array(second)
    W = np.zeros((7, 7))
    np.add.at(W, (first_idx, second_idx), 1.0)
    return W / W.sum(), first_idx, second_idx


@pytest.mark.parametrize("k", [2, 4])
def test_the_optimum_fed_through_the_analysis_gives_the_graph_spectrum(k: int) -> None:
    W, first, second = _pair_list_graph()
    f_star, gammas = _optimum_table(W, k)
    mu = 2 * float((f_star**2).sum(1).max())  # the ball does not bind
    out = ViewOutputs(
        h1=torch.zeros(len(first), 3),
        h2=torch.zeros(len(first), 3),
        z1=torch.from_numpy(f_star[first]),
        z2=torch.from_numpy(f_star[second]),
    )
    record: dict = {}
    arrays: dict = {}
    add_view_metrics(out, Config(mu=mu, batch_size=len(first)), record, arrays)
    assert len(arrays["graph_c_eigs"]) == k
    assert arrays["graph_c_eigs"] == pytest.approx(gammas, abs=1e-6)
    assert arrays["graph_c_plus_eigs"] == pytest.approx(gammas**2, abs=1e-6)
    assert record["metrics"]["graph"]["stationarity_residual"] < 1e-6
    # f = clip(z)/√μ (the old reading) would have shown γ/μ: this test tells the two apart
    assert np.abs(gammas / mu - arrays["graph_c_eigs"]).max() > 0.1


class _TableModel(nn.Module):
    """A 'network' whose projector output for each node's image is a given table row."""

    def __init__(self, node_images: torch.Tensor, table: np.ndarray) -> None:
        super().__init__()
        self.keys = node_images.flatten(1)  # (n, P) normalised node images
        self.table = torch.from_numpy(table).float()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        node = torch.cdist(x.flatten(1).float(), self.keys).argmin(1)  # the image's node
        return torch.zeros(len(x), 1), self.table[node], None


@pytest.fixture(scope="module")
def subgrid_run() -> tuple[Config, object, theorem.RunGraph]:
    config = build_config(None, None, {"dataset": "shapes-subgrid", "projector_out_dim": 16})
    train, _ = load_splits(config)
    return config, train, theorem.run_graph(config, train)


def _table_model(scored: theorem.RunGraph, train, table: np.ndarray) -> _TableModel:
    from explorer.augment import normalize

    return _TableModel(normalize(scored.graph.images(), train.mean, train.std), table)


def test_exact_metrics_of_the_optimum_table_are_the_optimum(subgrid_run) -> None:
    config, train, scored = subgrid_run
    assert scored.own and scored.graph.num_nodes > 600
    k = config.projector_out_dim
    f_star, gammas = _optimum_table(scored.graph.weights, k)
    mu = 2 * float((f_star**2).sum(1).max())
    config = build_config(None, None, {**config.to_dict(), "mu": mu})
    record, arrays = theorem.exact_metrics(
        _table_model(scored, train, f_star), config, train, torch.device("cpu")
    )
    expected = -float((gammas**2).sum())
    assert record["optimum"] == pytest.approx(expected, abs=1e-9)
    assert record["loss"] == pytest.approx(expected, abs=1e-5)  # float32 table
    assert abs(record["gap"]) < 1e-5 and record["ball_binds"] is False
    assert arrays["exact_c_eigs"] == pytest.approx(gammas, abs=1e-5)
    assert arrays["exact_gammas"] == pytest.approx(gammas, abs=1e-9)
    assert record["blocks"][0]["size"] == 6 and record["blocks"][0]["gamma"] == pytest.approx(1)
    assert record["class_r2"] == pytest.approx(1.0, abs=1e-6)
    # the downstream guarantee, under the names scripts read: no class changes, so α = 0 and
    # the optimum table (the network here) classifies every natural datum by its vote
    guarantee = record["guarantee"]
    assert {"alpha", "error", "optimum_error", "bound", "gamma_k1"} <= set(guarantee)
    assert guarantee["alpha"] == pytest.approx(0.0, abs=1e-12)
    assert guarantee["error"] == guarantee["optimum_error"] == 0.0
    assert guarantee["gamma_k1"] == pytest.approx(float(
        np.linalg.eigvalsh(_normalized(scored.graph.weights))[::-1][k]), abs=1e-9)

    # f = 0 scores 0: the gap is 1 (none of the optimum reached)
    zero, _ = theorem.exact_metrics(
        _table_model(scored, train, np.zeros_like(f_star)), config, train, torch.device("cpu")
    )
    assert zero["loss"] == 0.0 and zero["gap"] == pytest.approx(1.0)
    assert zero["class_r2"] == 0.0
    # every eigenspace inside the top k is reported, in order, sizes summing to k
    assert sum(b["size"] for b in record["blocks"]) == k
    assert [b["first"] for b in record["blocks"]][0] == 1
    assert record["span_chance"] == pytest.approx(k / scored.graph.num_nodes)


def test_exact_metrics_inside_a_binding_ball(subgrid_run) -> None:
    config, train, scored = subgrid_run
    f_star, gammas = _optimum_table(scored.graph.weights, config.projector_out_dim)
    config = build_config(None, None, {**config.to_dict(), "mu": 1.0})  # 6 classes: it binds
    record, _ = theorem.exact_metrics(
        _table_model(scored, train, f_star), config, train, torch.device("cpu")
    )
    assert record["ball_binds"] and record["max_optimal_sq_norm"] > 1.0
    # six orthogonal class points of norm 1: -2 + 1/6 (HaoChen et al.'s clique case)
    assert record["reachable_optimum"] == pytest.approx(-2 + 1 / 6, abs=1e-6)
    assert record["optimum"] < record["reachable_optimum"] <= record["loss"] + 1e-9
    assert record["reachable_gap"] >= -1e-9
    # those six points give E_w[f fᵀ] six eigenvalues 1/6 (tr ≤ μ = 1 caps the spectrum)
    reachable = np.asarray(record["reachable_c_eigs"])
    assert reachable[:6] == pytest.approx(np.full(6, 1 / 6), abs=1e-3)
    assert reachable[6:] == pytest.approx(np.zeros(len(reachable) - 6), abs=1e-3)
    # max‖f*(x)‖² from the cached eigenpairs is the row norm of an independent eigh's f*
    k = config.projector_out_dim
    assert record["max_optimal_sq_norm"] == pytest.approx(
        float((f_star**2).sum(1).max()), rel=1e-9)
    assert theorem._max_sq_norm(scored.key, k) == pytest.approx(
        O.max_optimal_sq_norm(scored.graph.weights, k), rel=1e-12)


def test_other_losses_are_scored_on_the_direction_at_its_best_scale(subgrid_run) -> None:
    """SimCLR sees u = z/‖z‖: a positive per-node scale of z changes nothing, and the loss is
    min_c L(c·u) = −P²/N with P and N computed here as plain sums over the graph."""
    config, train, scored = subgrid_run
    f_star, _ = _optimum_table(scored.graph.weights, config.projector_out_dim)
    config = build_config(None, None, {**config.to_dict(), "loss": "simclr"})
    per_node = np.random.default_rng(0).uniform(0.1, 5.0, (len(f_star), 1))
    records = [theorem.exact_metrics(_table_model(scored, train, table), config, train,
                                     torch.device("cpu"))[0]
               for table in (f_star, f_star * per_node)]
    assert records[0]["loss"] == pytest.approx(records[1]["loss"], rel=1e-6)  # float32 tables
    W = scored.graph.weights / scored.graph.weights.sum()
    w = W.sum(1)
    u = f_star / np.linalg.norm(f_star, axis=1, keepdims=True)
    gram = u @ u.T
    positive, negative = float((W * gram).sum()), float((np.outer(w, w) * gram**2).sum())
    assert records[0]["loss"] == pytest.approx(-positive**2 / negative, rel=1e-6)
    assert records[0]["feature_scale"] == pytest.approx(np.sqrt(positive / negative), rel=1e-6)
    assert records[0]["mu"] is None


def test_image_space_runs_are_scored_on_a_model_graph() -> None:
    config = build_config(None, None, {"dataset": "shapes-subgrid", "augment": "shapes"})
    train, _ = load_splits(config)
    scored = theorem.run_graph(config, train)
    assert not scored.own and "did not train" in scored.description
    assert not theorem.applies(build_config(None, None, {"dataset": "digits"}))


def test_spectrum_blocks_group_equal_eigenvalues() -> None:
    blocks = theorem.spectrum_blocks(np.array([1.0, 1.0, 0.5, 0.5, 0.5, 0.2]))
    assert [(b.start, b.stop) for b in blocks] == [(0, 2), (2, 5), (5, 6)]


def test_span_r2_is_the_mean_squared_cosine_of_principal_angles() -> None:
    rng = np.random.default_rng(0)
    basis, _ = np.linalg.qr(rng.normal(size=(50, 3)))
    # features spanning the first two basis vectors and a direction orthogonal to all three
    other = rng.normal(size=50)
    other -= basis @ (basis.T @ other)
    factor = np.stack([basis[:, 0] + basis[:, 1], basis[:, 1], other], axis=1)
    spanned = theorem.span_basis(factor)
    assert spanned.shape == (50, 3)
    assert theorem.span_r2(spanned, basis) == pytest.approx(2 / 3)
    assert theorem.span_r2(spanned, basis[:, :2]) == pytest.approx(1.0)


@pytest.mark.parametrize("loss, expected", [("spectral", 15.0), ("simclr", 128.0)])
def test_spectral_projector_starts_inside_the_ball(loss: str, expected: float) -> None:
    config = build_config(
        None, None, {"loss": loss, "mu": 30.0, "projector_out_dim": 128,
                     "projector_hidden_dim": 256}
    )
    torch.manual_seed(0)
    model = build_model(config, 3).train()
    with torch.no_grad():
        _, z, _ = model(torch.randn(512, 3, 32, 32))
    sq_norms = (z.double() ** 2).sum(1)
    # BatchNorm makes each coordinate's batch variance the last weight squared (mean 0)
    assert float(sq_norms.mean()) == pytest.approx(expected, rel=1e-3)
    if loss == "spectral":  # the rows start inside the ball, where clipping passes gradient
        assert float((sq_norms < config.mu).double().mean()) > 0.95


def test_the_analysis_table_reports_the_share_of_the_optimum() -> None:
    from explorer.analysis.run import format_analysis_table

    probes = {"knn": {"accuracy": 0.9}, "linear": {"accuracy": 1.0}}
    projector = {"rankme": 7.0, "alpha": None, "n_above_0.9": 6}
    shapes = {"epoch": 30, "metrics": {"projector": projector}, "probes": probes,
              "exact": {"gap": 0.15, "class_r2": 0.987}}
    table = format_analysis_table([shapes, {**shapes, "epoch": 60, "exact": {"gap": 0.5,
                                                                             "class_r2": 0.5}}])
    rows = table.splitlines()
    assert "optimum" in rows[0] and rows[1].split()[-2:] == ["85.0%", "0.987"]
    assert rows[2].split()[-2:] == ["50.0%", "0.500"]
    other = format_analysis_table([{k: v for k, v in shapes.items() if k != "exact"}])
    assert "optimum" not in other
