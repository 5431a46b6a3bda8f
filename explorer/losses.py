"""Self-supervised losses on two views of a batch: spectral contrastive, NT-Xent, SimSiam.

Each loss is a pure function of the projections (and predictions, for SimSiam) of two augmented
views of the same ``B`` images; row ``i`` of one view and row ``i`` of the other are a positive
pair.

References:
    [0] HaoChen, Wei, Gaidon, Ma, "Provable Guarantees for Self-Supervised Deep Learning with
        Spectral Contrastive Loss", NeurIPS 2021, https://arxiv.org/abs/2106.04156
    [1] Chen, Kornblith, Norouzi, Hinton, "A Simple Framework for Contrastive Learning of Visual
        Representations" (SimCLR), ICML 2020, https://arxiv.org/abs/2002.05709
    [2] Chen, He, "Exploring Simple Siamese Representation Learning" (SimSiam), CVPR 2021,
        https://arxiv.org/abs/2011.10566
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from explorer.errors import UserError

#: A NumPy table or a torch tensor: :func:`clip_to_ball` returns the kind it is given.
ArrayOrTensor = TypeVar("ArrayOrTensor", np.ndarray, Tensor)

LOSSES = ("spectral", "simclr", "simsiam")


@contextlib.contextmanager
def _full_precision(device: torch.device) -> Iterator[None]:
    """Turn autocast off, so matmuls inside a loss run in the dtype of their inputs."""
    if device.type in ("cpu", "cuda"):
        with torch.autocast(device_type=device.type, enabled=False):
            yield
    else:  # autocast on other backends is opt-in and varies by torch version
        yield


def _loss_dtype(x: Tensor) -> Tensor:
    """Return ``x`` in at least float32: sums of B^2 squared products are too coarse in 16 bits."""
    if x.dtype in (torch.float16, torch.bfloat16):
        return x.float()
    return x


def _check_pair(a: Tensor, b: Tensor, names: str, min_batch: int = 1) -> None:
    """Raise ``ValueError`` unless ``a`` and ``b`` are 2-D of one shape with ``min_batch`` rows."""
    if a.dim() != 2 or b.dim() != 2:
        raise ValueError(
            f"{names} must be 2-D tensors of shape (batch_size, dim); "
            f"got shapes {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if a.shape != b.shape:
        raise ValueError(
            f"{names} must have the same shape (batch_size, dim); "
            f"got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if a.shape[0] < min_batch:
        raise ValueError(f"{names} need a batch size of at least {min_batch}; got {a.shape[0]}")


def clip_to_ball(z: ArrayOrTensor, mu: float) -> ArrayOrTensor:
    """Rescale every row with norm >= sqrt(mu) to norm sqrt(mu); rows inside the ball are unchanged.

    This is the projection the paper's code applies before the loss [0]; the gradient flows
    through the rescaling, as it does there. The one implementation of the clip: the exact
    scores (:mod:`explorer.analysis.theorem`) and the ball's solver
    (:mod:`explorer.graphs.spectral`) call it on
    NumPy tables, which are clipped in float64 the same way and returned as NumPy.

    Args:
        z: Tensor (or NumPy array) of shape (batch_size, dim).
        mu: Squared radius of the ball, > 0.

    Returns:
        The same kind and shape as ``z``.
    """
    if isinstance(z, np.ndarray):
        return clip_to_ball(torch.from_numpy(np.asarray(z, dtype=np.float64)), mu).numpy()
    radius = math.sqrt(mu)
    norms = torch.linalg.vector_norm(z, dim=1, keepdim=True)  # Bx1
    # clamp_min makes the factor exactly 1 (with zero gradient) inside the ball and avoids 0/0.
    return z * (radius / norms.clamp_min(radius))


def _offdiagonal_squares_feature_gram(z1: Tensor, z2: Tensor, diagonal: Tensor) -> Tensor:
    """Sum over i != j of (z1_i . z2_j)^2 in O(B d^2), from the two dxd feature Gram matrices.

    sum_{i,j} (z1_i . z2_j)^2 = ||Z1 Z2^T||_F^2 = <Z1^T Z1, Z2^T Z2>_F; the i = j terms are then
    subtracted. (Note ||Z1^T Z2||_F^2 is a different quantity: it pairs z1_i . z1_j with
    z2_i . z2_j.)

    Args:
        z1, z2: Tensors of shape (batch_size, dim).
        diagonal: Tensor of shape (batch_size,), the products z1_i . z2_i.
    """
    gram1 = z1.T @ z1  # dxd
    gram2 = z2.T @ z2  # dxd
    return (gram1 * gram2).sum() - diagonal.square().sum()


def _offdiagonal_squares_sample_gram(z1: Tensor, z2: Tensor) -> Tensor:
    """Sum over i != j of (z1_i . z2_j)^2 in O(B^2 d), masking the diagonal of the BxB matrix.

    Args:
        z1, z2: Tensors of shape (batch_size, dim).
    """
    squares = (z1 @ z2.T).square()  # BxB
    self_pairs = torch.eye(z1.shape[0], dtype=torch.bool, device=z1.device)
    return squares.masked_fill(self_pairs, 0.0).sum()


def spectral_contrastive_loss(
    z1: Tensor, z2: Tensor, mu: float = 1.0
) -> tuple[Tensor, Tensor, Tensor]:
    """Spectral contrastive loss on a batch of positive pairs, as the paper's code computes it [0].

    Rows are first clipped to the ball of radius sqrt(mu) (see ``clip_to_ball``). Then, with B the
    batch size,

        positive = -2/B * sum_i z1_i . z2_i
        negative = 1/(B(B-1)) * sum_{i != j} (z1_i . z2_j)^2     (cross-view pairs only)
        loss = (positive + negative) / mu

    The negative sum is computed as <Z1^T Z1, Z2^T Z2>_F - sum_i (z1_i . z2_i)^2 in O(B d^2)
    when 2d < B (two dxd Gram matrices cost 2Bd^2), and from the masked BxB matrix Z1 Z2^T in
    O(B^2 d) otherwise. Inputs in 16-bit floats (or under autocast) are computed in float32;
    float32 and float64 inputs keep their dtype.

    Args:
        z1: Tensor of shape (batch_size, dim), projections of the first view.
        z2: Tensor of shape (batch_size, dim), projections of the second view.
        mu: Scale of the loss and squared radius of the clipping ball, > 0 (1 on CIFAR,
            10 on ImageNet in [0]).

    Returns:
        (loss, positive, negative): scalar tensors, the last two each divided by mu, so that
        loss == positive + negative.

    Raises:
        ValueError: if z1 and z2 are not 2-D of one shape, batch_size < 2, or mu <= 0.
    """
    _check_pair(z1, z2, "z1 and z2", min_batch=2)
    if not mu > 0:
        raise ValueError(f"mu must be a number > 0; got {mu}")
    with _full_precision(z1.device):
        z1 = clip_to_ball(_loss_dtype(z1), mu)
        z2 = clip_to_ball(_loss_dtype(z2), mu)
        batch_size, dim = z1.shape
        diagonal = (z1 * z2).sum(dim=1)  # B
        positive = -2.0 * diagonal.mean()
        if 2 * dim < batch_size:  # 2Bd^2 < B^2 d multiply-adds
            offdiagonal = _offdiagonal_squares_feature_gram(z1, z2, diagonal)
        else:
            offdiagonal = _offdiagonal_squares_sample_gram(z1, z2)
        negative = offdiagonal / (batch_size * (batch_size - 1))
        return (positive + negative) / mu, positive / mu, negative / mu


def ntxent_loss(z1: Tensor, z2: Tensor, temperature: float = 0.5) -> Tensor:
    """NT-Xent (normalised temperature-scaled cross entropy), the SimCLR loss [1].

    The 2B rows of both views are L2-normalised; each row is an anchor whose positive is the same
    image's other view and whose negatives are the other 2B - 2 rows (itself excluded):

        l_a = -log( exp(s(a, a+) / t) / sum_{k != a} exp(s(a, k) / t) ),   loss = mean_a l_a

    with s the cosine similarity and t the temperature.

    Args:
        z1: Tensor of shape (batch_size, dim), projections of the first view.
        z2: Tensor of shape (batch_size, dim), projections of the second view.
        temperature: t > 0.

    Returns:
        Scalar tensor, the mean over the 2B anchors.

    Raises:
        ValueError: if z1 and z2 are not 2-D of one shape, or temperature <= 0.
    """
    _check_pair(z1, z2, "z1 and z2")
    if not temperature > 0:
        raise ValueError(f"temperature must be a number > 0; got {temperature}")
    with _full_precision(z1.device):
        batch_size = z1.shape[0]
        z = F.normalize(_loss_dtype(torch.cat([z1, z2])), dim=1)  # 2BxD
        logits = (z @ z.T) / temperature  # 2Bx2B
        self_pairs = torch.eye(2 * batch_size, dtype=torch.bool, device=z.device)
        logits = logits.masked_fill(self_pairs, float("-inf"))
        rows = torch.arange(batch_size, device=z.device)
        positives = torch.cat([rows + batch_size, rows])  # anchor i <-> i + B
        return F.cross_entropy(logits, positives)


def simsiam_loss(p1: Tensor, p2: Tensor, z1: Tensor, z2: Tensor) -> Tensor:
    """Symmetrised negative cosine similarity with stop-gradient, the SimSiam loss [2] (Eq. 2, 3).

        loss = -(mean_i cos(p1_i, sg(z2_i)) + mean_i cos(p2_i, sg(z1_i))) / 2

    Args:
        p1: Tensor of shape (batch_size, dim), predictions from the first view.
        p2: Tensor of shape (batch_size, dim), predictions from the second view.
        z1: Tensor of shape (batch_size, dim), projections of the first view (no gradient).
        z2: Tensor of shape (batch_size, dim), projections of the second view (no gradient).

    Returns:
        Scalar tensor in [-1, 1].

    Raises:
        ValueError: if the four tensors are not 2-D of one shape.
    """
    _check_pair(p1, p2, "p1 and p2")
    _check_pair(z1, z2, "z1 and z2")
    _check_pair(p1, z1, "p1 and z1")
    with _full_precision(p1.device):
        p1, p2 = _loss_dtype(p1), _loss_dtype(p2)
        z1, z2 = _loss_dtype(z1.detach()), _loss_dtype(z2.detach())
        return -(F.cosine_similarity(p1, z2).mean() + F.cosine_similarity(p2, z1).mean()) / 2


def compute_loss(
    name: str,
    z1: Tensor,
    z2: Tensor,
    p1: Tensor | None = None,
    p2: Tensor | None = None,
    *,
    mu: float = 1.0,
    temperature: float = 0.5,
) -> dict[str, Tensor]:
    """Compute the loss called ``name`` (one of ``LOSSES``) on two views.

    Args:
        name: "spectral", "simclr" or "simsiam".
        z1, z2: Tensors of shape (batch_size, dim), projections of the two views.
        p1, p2: Tensors of shape (batch_size, dim), predictions; required for "simsiam" only.
        mu: For "spectral" (see ``spectral_contrastive_loss``).
        temperature: For "simclr" (see ``ntxent_loss``).

    Returns:
        ``{"loss": ...}`` scalar tensors; "spectral" adds "positive" and "negative".

    Raises:
        UserError: if ``name`` is not in ``LOSSES``.
        ValueError: if "simsiam" is asked for without p1 and p2, or the inputs are invalid.
    """
    if name == "spectral":
        loss, positive, negative = spectral_contrastive_loss(z1, z2, mu)
        return {"loss": loss, "positive": positive, "negative": negative}
    if name == "simclr":
        return {"loss": ntxent_loss(z1, z2, temperature)}
    if name == "simsiam":
        if p1 is None or p2 is None:
            raise ValueError(
                "the simsiam loss needs the predictions p1 and p2 (the model's predictor)"
            )
        return {"loss": simsiam_loss(p1, p2, z1, z2)}
    raise UserError(f"unknown loss {name!r}; valid losses: {', '.join(LOSSES)}")
