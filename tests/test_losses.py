"""Losses against independent references written as plain Python loops in float64."""

from __future__ import annotations

import math

import pytest
import torch

from explorer import losses
from explorer.errors import UserError
from explorer.losses import (
    LOSSES,
    compute_loss,
    ntxent_loss,
    simsiam_loss,
    spectral_contrastive_loss,
)

BATCH_SIZES = (2, 3, 8, 33)
DIMS = (1, 4, 64)
MUS = (0.5, 1.0, 10.0)


# --- references: lists of floats in, float out; no torch -------------------------------------


def _dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def _clip_row(row: list[float], mu: float) -> list[float]:
    norm = math.sqrt(_dot(row, row))
    if norm >= math.sqrt(mu):
        return [x * math.sqrt(mu) / norm for x in row]
    return list(row)


def reference_spectral(z1: list[list[float]], z2: list[list[float]], mu: float) -> tuple:
    z1 = [_clip_row(r, mu) for r in z1]
    z2 = [_clip_row(r, mu) for r in z2]
    b = len(z1)
    positive = -2.0 * sum(_dot(z1[i], z2[i]) for i in range(b)) / b
    negative = 0.0
    for i in range(b):
        for j in range(b):
            if i != j:
                negative += _dot(z1[i], z2[j]) ** 2
    negative /= b * (b - 1)
    return (positive + negative) / mu, positive / mu, negative / mu


def _cosine(a: list[float], b: list[float]) -> float:
    return _dot(a, b) / (math.sqrt(_dot(a, a)) * math.sqrt(_dot(b, b)))


def reference_ntxent(z1: list[list[float]], z2: list[list[float]], temperature: float) -> float:
    samples = z1 + z2
    n, b = len(samples), len(z1)
    total = 0.0
    for a in range(n):
        positive = (a + b) % n
        denominator = sum(
            math.exp(_cosine(samples[a], samples[k]) / temperature) for k in range(n) if k != a
        )
        total += -_cosine(samples[a], samples[positive]) / temperature + math.log(denominator)
    return total / n


def reference_simsiam(p1, p2, z1, z2) -> float:
    b = len(p1)
    first = sum(_cosine(p1[i], z2[i]) for i in range(b)) / b
    second = sum(_cosine(p2[i], z1[i]) for i in range(b)) / b
    return -(first + second) / 2


# --- inputs ----------------------------------------------------------------------------------


def views_around_ball(batch_size: int, dim: int, mu: float, seed: int = 0) -> tuple:
    """Two float64 views whose rows lie at 0.2-0.8 or 1.25-4 times sqrt(mu), never on the sphere.

    Row 0 is inside the ball and row 1 outside, so every batch of 2 or more has both kinds.
    """
    gen = torch.Generator().manual_seed(seed)
    views = []
    for _ in range(2):
        direction = torch.nn.functional.normalize(
            torch.randn(batch_size, dim, generator=gen, dtype=torch.float64), dim=1
        )
        inside = 0.2 + 0.6 * torch.rand(batch_size, 1, generator=gen, dtype=torch.float64)
        outside = 1.25 + 2.75 * torch.rand(batch_size, 1, generator=gen, dtype=torch.float64)
        is_outside = torch.rand(batch_size, 1, generator=gen) < 0.5
        is_outside[0], is_outside[1] = False, True
        views.append(direction * torch.where(is_outside, outside, inside) * math.sqrt(mu))
    return views[0], views[1]


def _values(result) -> list[float]:
    return [float(x) for x in result]


# --- spectral contrastive loss ---------------------------------------------------------------


@pytest.mark.parametrize("mu", MUS)
@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_spectral_matches_loop_reference(batch_size: int, dim: int, mu: float) -> None:
    z1, z2 = views_around_ball(batch_size, dim, mu, seed=batch_size * 100 + dim)
    got = _values(spectral_contrastive_loss(z1, z2, mu))
    expected = reference_spectral(z1.tolist(), z2.tolist(), mu)
    assert got == pytest.approx(expected, rel=1e-10, abs=1e-12)
    assert got[0] == pytest.approx(got[1] + got[2], rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_spectral_float32_matches_reference(batch_size: int) -> None:
    z1, z2 = views_around_ball(batch_size, 16, 1.0, seed=7)
    got = spectral_contrastive_loss(z1.float(), z2.float())
    assert got[0].dtype == torch.float32
    expected = reference_spectral(z1.tolist(), z2.tolist(), 1.0)
    assert _values(got) == pytest.approx(expected, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize(("batch_size", "dim"), [(2, 1), (8, 4), (33, 4), (33, 64), (4, 64)])
def test_both_negative_sums_agree(batch_size: int, dim: int) -> None:
    z1, z2 = views_around_ball(batch_size, dim, 1.0, seed=3)
    diagonal = (z1 * z2).sum(dim=1)
    by_features = losses._offdiagonal_squares_feature_gram(z1, z2, diagonal)
    by_samples = losses._offdiagonal_squares_sample_gram(z1, z2)
    assert float(by_features) == pytest.approx(float(by_samples), rel=1e-10, abs=1e-12)


@pytest.mark.parametrize(
    ("batch_size", "dim", "path"),
    [(33, 4, "feature"), (33, 16, "feature"), (33, 17, "sample"), (8, 64, "sample")],
)
def test_each_path_taken_by_shape_matches_reference(
    batch_size: int, dim: int, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    for name in ("feature", "sample"):
        helper = getattr(losses, f"_offdiagonal_squares_{name}_gram")
        monkeypatch.setattr(
            losses,
            f"_offdiagonal_squares_{name}_gram",
            lambda *args, name=name, helper=helper: calls.append(name) or helper(*args),
        )
    z1, z2 = views_around_ball(batch_size, dim, 1.0, seed=11)
    expected = reference_spectral(z1.tolist(), z2.tolist(), 1.0)
    assert _values(spectral_contrastive_loss(z1, z2)) == pytest.approx(expected, rel=1e-10)
    assert calls == [path]  # the dxd Grams when 2d < B, else the BxB matrix


@pytest.mark.parametrize(("batch_size", "dim"), [(9, 3), (3, 9)])  # dxd path, then BxB
def test_spectral_gradcheck(batch_size: int, dim: int) -> None:
    z1, z2 = views_around_ball(batch_size, dim, 2.0, seed=5)
    z1.requires_grad_(True)
    z2.requires_grad_(True)
    for part in range(3):
        assert torch.autograd.gradcheck(
            lambda a, b, part=part: spectral_contrastive_loss(a, b, 2.0)[part], (z1, z2)
        )


def test_spectral_symmetric_in_views_and_batch_order() -> None:
    z1, z2 = views_around_ball(8, 4, 1.0, seed=2)
    forward = _values(spectral_contrastive_loss(z1, z2))
    assert _values(spectral_contrastive_loss(z2, z1)) == pytest.approx(forward, rel=1e-12)
    order = torch.randperm(8, generator=torch.Generator().manual_seed(0))
    permuted = _values(spectral_contrastive_loss(z1[order], z2[order]))
    assert permuted == pytest.approx(forward, rel=1e-12)


def test_rows_outside_ball_can_be_scaled_freely() -> None:
    z1, z2 = views_around_ball(8, 4, 1.0, seed=4)
    assert z1[1].norm() > 1  # row 1 is outside the ball by construction
    scaled = z1.clone()
    scaled[1] *= 1000.0
    assert _values(spectral_contrastive_loss(scaled, z2)) == pytest.approx(
        _values(spectral_contrastive_loss(z1, z2)), rel=1e-12
    )
    inside = z1.clone()
    inside[0] *= 1.1  # row 0 is inside: its length counts
    assert float(spectral_contrastive_loss(inside, z2)[0]) != pytest.approx(
        float(spectral_contrastive_loss(z1, z2)[0]), rel=1e-9
    )


@pytest.mark.parametrize("mu", MUS)
def test_spectral_closed_forms(mu: float) -> None:
    # Orthogonal rows on the sphere of radius sqrt(mu): positive = -2, no negative.
    basis = torch.eye(4, dtype=torch.float64) * 5.0
    assert _values(spectral_contrastive_loss(basis, basis, mu)) == pytest.approx([-2.0, -2.0, 0.0])
    # All rows one point on that sphere: positive = -2 mu / mu, negative = mu^2 / mu.
    same = torch.full((6, 3), 10.0, dtype=torch.float64)
    expected = [-2.0 + mu, -2.0, mu]
    assert _values(spectral_contrastive_loss(same, same, mu)) == pytest.approx(expected)
    # Zero features sit inside the ball and give zero loss (and a finite gradient).
    zeros = torch.zeros(5, 3, dtype=torch.float64, requires_grad=True)
    spectral_contrastive_loss(zeros, zeros, mu)[0].backward()
    assert torch.isfinite(zeros.grad).all()


def test_spectral_half_precision_and_autocast_compute_in_float32() -> None:
    z1, z2 = views_around_ball(33, 8, 1.0, seed=6)
    b1, b2 = z1.bfloat16(), z2.bfloat16()
    expected = reference_spectral(b1.double().tolist(), b2.double().tolist(), 1.0)
    got = spectral_contrastive_loss(b1, b2)
    assert got[0].dtype == torch.float32
    assert _values(got) == pytest.approx(expected, rel=1e-5, abs=1e-6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = spectral_contrastive_loss(z1.float(), z2.float())
    assert under_autocast[0].dtype == torch.float32
    expected32 = reference_spectral(z1.tolist(), z2.tolist(), 1.0)
    assert _values(under_autocast) == pytest.approx(expected32, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize(
    ("z1", "z2", "mu"),
    [
        (torch.ones(4, 3), torch.ones(4, 2), 1.0),  # shapes differ
        (torch.ones(4, 3), torch.ones(5, 3), 1.0),
        (torch.ones(4), torch.ones(4), 1.0),  # not 2-D
        (torch.ones(2, 4, 3), torch.ones(2, 4, 3), 1.0),
        (torch.ones(1, 3), torch.ones(1, 3), 1.0),  # no negative pair
        (torch.ones(4, 3), torch.ones(4, 3), 0.0),
        (torch.ones(4, 3), torch.ones(4, 3), -1.0),
        (torch.ones(4, 3), torch.ones(4, 3), float("nan")),
    ],
)
def test_spectral_rejects_invalid_input(z1, z2, mu: float) -> None:
    with pytest.raises(ValueError):
        spectral_contrastive_loss(z1, z2, mu)


# --- NT-Xent ---------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", (0.1, 0.5))
@pytest.mark.parametrize("dim", DIMS[1:])  # cosine similarity of 1-D rows is only +-1
@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_ntxent_matches_loop_reference(batch_size: int, dim: int, temperature: float) -> None:
    z1, z2 = views_around_ball(batch_size, dim, 1.0, seed=batch_size + dim)
    expected = reference_ntxent(z1.tolist(), z2.tolist(), temperature)
    assert float(ntxent_loss(z1, z2, temperature)) == pytest.approx(expected, rel=1e-10)


def test_ntxent_gradcheck_and_symmetry() -> None:
    z1, z2 = views_around_ball(5, 3, 1.0, seed=8)
    z1.requires_grad_(True)
    z2.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: ntxent_loss(a, b, 0.5), (z1, z2))
    swapped, forward = ntxent_loss(z2, z1).item(), ntxent_loss(z1, z2).item()
    assert swapped == pytest.approx(forward, rel=1e-12)


def test_ntxent_rejects_invalid_input() -> None:
    with pytest.raises(ValueError):
        ntxent_loss(torch.ones(4, 3), torch.ones(4, 2))
    with pytest.raises(ValueError):
        ntxent_loss(torch.ones(4, 3), torch.ones(4, 3), temperature=0.0)


# --- SimSiam ---------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_simsiam_matches_loop_reference(batch_size: int) -> None:
    p1, p2 = views_around_ball(batch_size, 4, 1.0, seed=20)
    z1, z2 = views_around_ball(batch_size, 4, 1.0, seed=21)
    expected = reference_simsiam(p1.tolist(), p2.tolist(), z1.tolist(), z2.tolist())
    assert float(simsiam_loss(p1, p2, z1, z2)) == pytest.approx(expected, rel=1e-10)


def test_simsiam_stops_gradient_into_projections() -> None:
    z1, z2 = views_around_ball(6, 4, 1.0, seed=22)
    z1.requires_grad_(True)
    z2.requires_grad_(True)
    predictor = torch.randn(4, 4, dtype=torch.float64, requires_grad=True)
    p1, p2 = z1 @ predictor, z2 @ predictor
    loss = simsiam_loss(p1, p2, z1, z2)
    grad_p1, grad_z1, grad_w = torch.autograd.grad(loss, (p1, z1, predictor))
    # z1 reaches the loss as a target (stop-grad) and through p1; only the second path counts.
    assert torch.allclose(grad_z1, grad_p1 @ predictor.T)
    assert grad_w.abs().sum() > 0
    targets_only = simsiam_loss(p1.detach(), p2.detach(), z1, z2)
    assert not targets_only.requires_grad


def test_simsiam_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError):
        simsiam_loss(torch.ones(4, 3), torch.ones(4, 3), torch.ones(4, 2), torch.ones(4, 2))


# --- dispatch --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", LOSSES)
def test_compute_loss_dispatches_every_name(name: str) -> None:
    z1, z2 = views_around_ball(8, 4, 2.0, seed=30)
    p1, p2 = views_around_ball(8, 4, 2.0, seed=31)
    result = compute_loss(name, z1, z2, p1, p2, mu=2.0, temperature=0.2)
    expected = {
        "spectral": dict(
            zip(
                ("loss", "positive", "negative"),
                spectral_contrastive_loss(z1, z2, 2.0),
                strict=True,
            )
        ),
        "simclr": {"loss": ntxent_loss(z1, z2, 0.2)},
        "simsiam": {"loss": simsiam_loss(p1, p2, z1, z2)},
    }[name]
    assert result.keys() == expected.keys()
    for key, value in expected.items():
        assert float(result[key]) == pytest.approx(float(value), rel=1e-12)


def test_compute_loss_errors() -> None:
    z = torch.ones(4, 3)
    with pytest.raises(ValueError, match="p1 and p2"):
        compute_loss("simsiam", z, z)
    with pytest.raises(UserError) as err:
        compute_loss("byol", z, z)
    assert all(name in str(err.value) for name in LOSSES)
