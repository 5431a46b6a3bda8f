"""A ``shapes`` run with graph views scored on its own graph over the whole grid (issue 20).

The whole grid's graph has 46,800 nodes: W is never formed. The reference here is written
plainly from the kernel instead: each training tuple's row A(·|x̄) over the 64,800 tuples is the
Kronecker product of its parts' rows, then the class change and the merge of tuples rendering to
one image; with m training tuples, A is (m, 46,800) and the nonzero spectrum of Ā is that of the
(m, m) matrix diag(√p) A D⁻¹ Aᵀ diag(√p) (W = Aᵀ diag(p) A, HaoChen et al. 2021, Section 3.1).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from explorer.analysis import theorem
from explorer.builders import graph_kernel, load_splits
from explorer.config import build_config
from explorer.data.shapes import LOOKALIKE, SHAPES_GRID
from explorer.graphs import guarantee as GU
from explorer.graphs.kronecker import image_nodes

K = 8  # the projector's output dimension


class _NodeTableModel(nn.Module):
    """A 'network' whose projector output for a node's image is that node's table row: the
    image is looked up by its bytes (un-normalised back to uint8)."""

    def __init__(self, rows: dict[bytes, int], table: np.ndarray, mean, std) -> None:
        super().__init__()
        self.rows, self.table = rows, torch.from_numpy(table)
        self.mean = torch.tensor(mean).view(1, -1, 1, 1)
        self.std = torch.tensor(std).view(1, -1, 1, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        pixels = torch.round((x * self.std + self.mean) * 255).to(torch.uint8)
        nodes = [self.rows[image.numpy().tobytes()] for image in pixels]
        return torch.zeros(len(x), 1), self.table[nodes], None


@pytest.fixture(scope="module")
def grid_run():
    config = build_config(None, None, {
        "dataset": "shapes", "augment": "graph", "projector_out_dim": K, "train_limit": 60,
        "class_change_p": 0.6})
    train, _ = load_splits(config)
    kernel = graph_kernel(config)
    tuples = kernel.tuples()
    node, first = image_nodes(SHAPES_GRID, kernel.values)
    natural, counts = np.unique(train.factors.numpy(), axis=0, return_counts=True)
    # A (m, n): the Kronecker product of the parts' rows, the class change, then the merge
    positions = kernel.tuple_positions(natural)
    coords = np.unravel_index(positions, [len(v) for v in kernel.values])
    parts = kernel.part_kernels()
    axes = [[0], [1, 2], [3], [4, 5]]  # shape | crop (position, scale) | rotation | colours
    rows = np.zeros((len(natural), len(tuples)))
    for i in range(len(natural)):
        row = np.ones(1)
        for part, factor_axes in zip(parts, axes, strict=True):
            index = np.ravel_multi_index([[coords[a][i]] for a in factor_axes],
                                         [len(kernel.values[a]) for a in factor_axes])[0]
            row = np.kron(row, part[index])
        rows[i] = row
    # the class change: a view swaps its shape for the look-alike with q (at most 2 entries)
    q = kernel.change_probabilities(tuples, SHAPES_GRID)
    swapped = tuples.copy()
    swapped[:, 0] = np.asarray(LOOKALIKE)[tuples[:, 0]]
    moved = np.flatnonzero(q > 0)
    changed = rows * (1 - q)
    np.add.at(changed.T, kernel.tuple_positions(swapped[moved]), (rows[:, moved] * q[moved]).T)
    A = np.zeros((len(natural), len(first)))
    np.add.at(A.T, node, changed.T)
    p = counts / counts.sum()
    return config, train, A, p, natural[:, 0], first


def _reference_spectrum(A: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(γ descending, unit eigenvectors (n, m)) of Ā via the (m, m) Gram matrix."""
    w = A.T @ p
    phi = np.sqrt(p)[:, None] * A / np.sqrt(w)[None, :]  # (m, n): Ā = Φᵀ Φ
    gammas, U = np.linalg.eigh(phi @ phi.T)
    gammas, U = gammas[::-1], U[:, ::-1]
    return gammas, (phi.T @ U) / np.sqrt(np.clip(gammas, 1e-300, None))


def _model(grid_run, table: np.ndarray) -> _NodeTableModel:
    config, train, A, p, y, first = grid_run
    images = SHAPES_GRID.render_batch(graph_kernel(config).tuples()[first]).numpy()
    rows = {image.tobytes(): i for i, image in enumerate(images)}
    assert len(rows) == len(first) == 46_800
    return _NodeTableModel(rows, table, train.mean, train.std)


def _loss(table: np.ndarray, A: np.ndarray, p: np.ndarray) -> float:
    """L(f) = −2 E[f(x)ᵀf(x⁺)] + E[(f(x)ᵀf(x'))²], from A: Σ p ‖A f‖² and E_w[f fᵀ]."""
    w = A.T @ p
    positive = float((p[:, None] * (A @ table) ** 2).sum())
    return -2 * positive + float(np.sum(((table.T * w) @ table) ** 2))


def test_the_whole_grid_run_is_scored_on_its_own_graph(grid_run) -> None:
    config, train, A, p, y, first = grid_run
    gammas, vectors = _reference_spectrum(A, p)
    w = A.T @ p
    f_star = vectors[:, :K] * np.sqrt(gammas[:K]) / np.sqrt(w)[:, None]
    max_sq = float((f_star**2).sum(1).max())
    # the optimum table, with a ball that leaves it free: the record is the optimum's
    config = build_config(None, None, {**config.to_dict(), "mu": 2 * max_sq})
    record, arrays = theorem.exact_metrics(_model(grid_run, f_star), config, train,
                                           torch.device("cpu"))
    optimum = -float((gammas[:K] ** 2).sum())
    assert record["graph"]["own"] and record["graph"]["nodes"] == 46_800
    assert "whole grid" in record["graph"]["description"]
    assert record["optimum"] == pytest.approx(optimum, rel=1e-9)
    assert record["loss"] == pytest.approx(_loss(f_star, A, p), rel=1e-9)
    assert record["loss"] == pytest.approx(optimum, rel=1e-9)
    assert arrays["exact_gammas"] == pytest.approx(gammas[:K], abs=1e-9)
    assert arrays["exact_c_eigs"] == pytest.approx(gammas[:K], abs=1e-9)  # E_w[f* f*ᵀ] = diag γ
    assert record["max_optimal_sq_norm"] == pytest.approx(max_sq, rel=1e-6)
    assert not record["ball_binds"] and record["reachable_certified"]
    guarantee = record["guarantee"]
    assert guarantee["alpha"] == pytest.approx(GU.alpha(A, p, y, 6), abs=1e-12)
    assert guarantee["alpha"] > 0  # class changes: some views are ambiguous
    # the least-squares head under its own name, against A formed densely; the best head
    # tried is never worse; no labelling bound on a graph this large
    least = GU.downstream_error(f_star, A, p, y, 6)
    assert guarantee["error_least_squares"] == pytest.approx(least)
    assert guarantee["error"] <= least + 1e-12 and guarantee["error_lower"] >= 0
    assert guarantee["gamma_k1"] == pytest.approx(gammas[K], abs=1e-9)


def test_a_random_table_and_a_binding_ball_on_the_whole_grid(grid_run) -> None:
    config, train, A, p, y, _ = grid_run
    gammas, vectors = _reference_spectrum(A, p)
    table = np.random.default_rng(0).standard_normal((A.shape[1], K))
    mu = 4.0  # ‖row‖² ≈ 8: most rows are clipped, and the optimum leaves this ball
    config = build_config(None, None, {**config.to_dict(), "mu": mu})
    record, _ = theorem.exact_metrics(_model(grid_run, table), config, train, torch.device("cpu"))
    f = theorem.clip_to_ball(table, mu)
    assert record["loss"] == pytest.approx(_loss(f, A, p), rel=1e-9)
    least = GU.downstream_error(f, A, p, y, 6)
    assert record["guarantee"]["error_least_squares"] == pytest.approx(least)
    assert record["guarantee"]["error"] <= least + 1e-12
    # the ball binds: the reachable optimum is bracketed, not certified
    optimum = -float((gammas[:K] ** 2).sum())
    assert record["ball_binds"] and not record["reachable_certified"]
    w = A.T @ p
    clipped_star = theorem.clip_to_ball(
        vectors[:, :K] * np.sqrt(gammas[:K]) / np.sqrt(w)[:, None], mu)
    assert optimum < record["reachable_optimum"] <= _loss(clipped_star, A, p) + 1e-3


def test_a_trained_whole_grid_run_reads_on_the_spectrum_page(tmp_path, monkeypatch) -> None:
    """The real commands: train a tiny ``shapes`` run with graph views, analyse it, open the
    Spectrum page: it is scored on its own 46,800-node graph, and the page labels the ball's
    optimum as bracketed where the ball binds."""
    from streamlit.testing.v1 import AppTest

    from explorer.rundir.artifacts import load_analysis
    from explorer.rundir.run import open_run
    from tests.conftest import DASHBOARD, TINY, explorer

    overrides = [o for o in TINY if not o.startswith("projector_out_dim")]
    explorer("train", "--runs-dir", "runs", "--name", "grid", "--no-progress", "--no-probe",
             *overrides, "augment=graph", "projector_out_dim=16", "epochs=1", "mu=2",
             cwd=tmp_path, check=True)
    explorer("analyze", "runs/grid", "--no-progress", "--projection", "pca", cwd=tmp_path,
             check=True)
    exact = load_analysis(open_run(tmp_path / "runs" / "grid"), 1)["exact"]
    assert exact["graph"]["own"] and exact["graph"]["nodes"] == 46_800
    assert exact["ball_binds"] and not exact["reachable_certified"]  # μ = 2 < max‖f*‖²
    assert exact["optimum"] <= exact["reachable_optimum"]
    monkeypatch.setenv("EXPLORER_RUNS_DIR", str(tmp_path / "runs"))
    app = AppTest.from_file(str(DASHBOARD / "spectrum_page.py"), default_timeout=120)
    app.session_state["selected_run"] = "grid"
    app.run()
    assert not app.exception
    shown = {m.label: m.value for m in app.metric}
    assert shown["of the provable optimum"] == f"{100 * (1 - exact['gap']):.1f}%"
    assert shown["of the reachable optimum, at most"] == (
        f"≤ {100 * (1 - exact['reachable_gap']):.1f}%")
    assert any("46,800 nodes" in c.value and "whole grid" in c.value for c in app.caption)
    assert any("bracketed" in i.value and f"{exact['reachable_optimum']:.3f}" in i.value
               for i in app.info)
    names = [t.get("name", "") for chart in app.get("plotly_chart")
             for t in json.loads(chart.proto.spec)["data"]]
    assert "of the reachable optimum (ball; at most: bracketed)" in names
