"""The ball's cap on the spectrum and what the Spectrum page expects of a run, against
constructions where the answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.readings.spectrum import NEAR_ONE, eigenvalue_cap, expectation


@pytest.mark.parametrize("mu", [0.5, 1.0, 2.7, 30.0])
def test_no_table_in_the_ball_has_more_eigenvalues_above_t_than_the_cap(mu: float) -> None:
    rng = np.random.default_rng(int(mu * 10))
    for threshold in (0.25, 0.5, NEAR_ONE):
        cap = eigenvalue_cap(mu, threshold)
        for _ in range(20):  # random tables with every row on the sphere ‖f‖² = μ
            f = rng.normal(size=(200, 40)) * rng.uniform(0.1, 3.0, 40)
            f *= np.sqrt(mu) / np.linalg.norm(f, axis=1, keepdims=True)
            eigs = np.linalg.eigvalsh(f.T @ f / len(f))
            assert np.sum(eigs >= threshold) <= cap
        if cap:  # and the cap is reached: rows √μ·e_i, i uniform over `cap` axes
            rows = np.sqrt(mu) * np.eye(cap)[np.arange(4 * cap) % cap]
            eigs = np.linalg.eigvalsh(rows.T @ rows / len(rows))
            assert np.sum(eigs >= threshold - 1e-12) == cap


def test_at_mu_one_the_classes_cannot_show_as_eigenvalues_near_one() -> None:
    artifact = {"mu": 1.0, "metrics": {"features": {"loss": "spectral", "mu": 1.0}}}
    reading = expectation(artifact, num_classes=10)
    assert reading.cap == 1 and reading.ball_binds
    assert "at most 1 eigenvalue reach" in reading.text and "out of reach" in reading.text


def test_a_free_optimum_expects_the_graphs_eigenvalues_and_a_bound_one_the_reachable() -> None:
    gammas = np.array([1, 1, 1, 0.95, 0.5, 0.2])
    free = {"mu": 30.0, "metrics": {"features": {"loss": "spectral", "mu": 30.0}},
            "exact": {"ball_binds": False, "max_optimal_sq_norm": 12.0},
            "arrays": {"exact_gammas": gammas}}
    assert expectation(free, 3).near_one == 4  # the graph's γᵢ ≥ 0.9, not the class count
    bound = {"mu": 1.0, "metrics": {"features": {"loss": "spectral", "mu": 1.0}},
             "exact": {"ball_binds": True, "max_optimal_sq_norm": 12.0, "mu": 1.0,
                       "reachable_c_eigs": [1 / 3, 1 / 3, 1 / 3, 0.0]},
             "arrays": {"exact_gammas": gammas}}
    reading = expectation(bound, 3)
    assert reading.near_one == 0 and reading.ball_binds and "reachable optimum" in reading.text


def test_losses_without_mu_are_read_without_a_ball() -> None:
    artifact = {"mu": 30.0, "metrics": {"features": {"loss": "simclr", "mu": None}}}
    reading = expectation(artifact, 6)
    assert reading.cap is None and "z/‖z‖" in reading.text


def test_the_guarantee_says_when_a_network_is_outside_theorem_4_2() -> None:
    from explorer.readings.spectrum import guarantee_reading

    exact = {"class_r2": 0.86, "span_chance": 0.15, "guarantee": {
        "k": 128, "alpha": 0.05, "error": 0.02, "optimum_error": 0.0, "bound": 0.6,
        "gamma_k1": 0.06, "theorem_4_2": {"epsilon": 0.95, "gamma_k_sq": 0.003,
                                          "in_regime": False}}}
    metrics, text = guarantee_reading(exact, "simclr")
    assert dict((label, value) for label, value, _ in metrics)["α (Assumption 3.5)"] == "5.0%"
    assert "outside Theorem 4.2" in text and "measured here, not guaranteed" in text
    assert "Lemma 3.1" in text and "0.860" in text  # SimCLR: read the span, not the count
    exact["guarantee"]["theorem_4_2"] = {"epsilon": 0.001, "gamma_k_sq": 0.003,
                                         "in_regime": True}
    assert "carries the guarantee over" in guarantee_reading(exact, "spectral")[1]
