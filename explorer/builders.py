"""What a config builds before training: the device, the datasets and the model.

Shared by the trainer, the probes, the analysis and the dashboard; kept apart from the training
loop so that those need not import it (``explorer.train`` re-exports these names).
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import torch

from explorer.augment import RECIPES, TwoViewAugment, recipe_for_dataset
from explorer.config import GRAPH_AUGMENT, Config
from explorer.data import DatasetRequest, ImageDataset, default_image_size, load_request
from explorer.data.shapes import SHAPES_GRID, SUBGRID, ShapesKernel, grid_values
from explorer.errors import UserError
from explorer.models import ContrastiveModel
from explorer.views import GraphViews, ImageViews


def resolve_device(name: str) -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; asking for a missing device is a user error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("device=cuda but no CUDA GPU is visible; use device=auto or device=cpu")
    if name == "mps" and not torch.backends.mps.is_available():
        raise UserError("device=mps but Apple's MPS is not available; use device=auto or cpu")
    return torch.device(name)


def load_splits(config: Config) -> tuple[ImageDataset, ImageDataset]:
    """The training and test sets a config names, at its image size and limits (0: none)."""
    train = DatasetRequest(
        config.dataset,
        "train",
        data_root=Path(config.data_root),
        download=config.download,
        image_size=config.image_size or None,
        seed=config.seed,
        limit=config.train_limit or None,
    )
    test = replace(train, split="test", limit=config.test_limit or None)
    return load_request(train), load_request(test)


def recipe_name(config: Config) -> str:
    """The augmentation a config trains with (``augment="auto"``: the dataset's own): a key of
    :data:`explorer.augment.RECIPES`, or ``"graph"`` for views drawn from the exact graph."""
    if config.augment == "auto":
        return GRAPH_AUGMENT if config.dataset == "shapes-subgrid" else recipe_for_dataset(
            config.dataset)
    return config.augment


def projector_out_scale(config: Config) -> float:
    """Initial weight of the projector's last BatchNorm: √(μ / (2d)) for the spectral loss with
    ``init_in_ball`` (else 1, PyTorch's default).

    The spectral loss clips z to the ball ‖z‖² ≤ μ, and a clipped row passes no gradient along
    its radius. With the default weight every output starts at ‖z‖² ≈ d (BN makes each of the
    d coordinates unit-variance), far outside the ball for d = 128 and μ = 30: every row is
    clipped and training stalls. This weight starts the batch mean of ‖z‖² at μ/2 (BN in train
    mode makes it exact), so nearly every row starts inside the ball and the loss can shape the
    norms it must learn (tests/test_theorem.py checks that 95% of the rows start inside).
    """
    if config.loss == "spectral" and config.init_in_ball:
        return math.sqrt(config.mu / (2 * config.projector_out_dim))
    return 1.0


def build_model(config: Config, in_channels: int, projector_spec: str = "") -> ContrastiveModel:
    """The network a config names, for images of ``in_channels`` channels (random init);
    ``projector_spec``: an imported run's projector (:func:`explorer.models.projector_from_spec`,
    recorded in its ``config.json``'s ``imported``), else the config's."""
    return ContrastiveModel(
        config.backbone,
        projector_hidden_dim=config.projector_hidden_dim,
        projector_out_dim=config.projector_out_dim,
        projector_layers=config.projector_layers,
        predictor_hidden_dim=config.predictor_hidden_dim if config.loss == "simsiam" else None,
        in_channels=in_channels,
        projector_out_scale=projector_out_scale(config),
        projector_spec=projector_spec,
    )


def build_augment(config: Config, data: ImageDataset) -> TwoViewAugment:
    """The image-space two-view augmentation of a config's recipe, normalised with ``data``'s
    statistics (on the CPU; ``.to(device)`` moves it)."""
    size = config.image_size or default_image_size(config.dataset)
    return TwoViewAugment(RECIPES[recipe_name(config)], size, data.mean, data.std)


def build_views(
    config: Config, data: ImageDataset, device: torch.device
) -> ImageViews | GraphViews:
    """What makes the two views of ``data``'s items at given indices, on ``device``.

    The trainer calls it on the training set; the analysis on its evaluation sample. With
    ``augment=graph`` the views come from the exact graph's kernel (``data`` must carry the
    factor tuples of a ``shapes`` dataset); otherwise from the image-space recipe.
    """
    if recipe_name(config) == GRAPH_AUGMENT:
        if data.factors is None:
            raise UserError(f"augment=graph needs factor tuples; dataset {data.name} has none")
        return GraphViews(data.factors.to(device), graph_kernel(config), data.mean, data.std)
    return ImageViews(data.images.to(device), build_augment(config, data).to(device))


def graph_kernel(config: Config) -> ShapesKernel:
    """The exact-graph kernel of a ``shapes`` config: over :data:`SUBGRID` for ``shapes-subgrid``,
    over the whole factor grid for ``shapes``, with the config's probabilities (``crop_p``,
    ``rotate_p``, ``color_p``, ``class_change_p``)."""
    subgrid = SUBGRID if config.dataset == "shapes-subgrid" else None
    return ShapesKernel(grid_values(SHAPES_GRID, subgrid), crop_p=config.crop_p,
                        rotate_p=config.rotate_p, color_p=config.color_p,
                        class_change_p=config.class_change_p)
