"""What a config builds before training: the device, the datasets and the model.

Shared by the trainer, the probes, the analysis and the dashboard; kept apart from the training
loop so that those need not import it (``explorer.train`` re-exports these names).
"""

from __future__ import annotations

import torch

from explorer.augment import RECIPES, TwoViewAugment, recipe_for_dataset
from explorer.config import Config
from explorer.data import ImageDataset, default_image_size, load_dataset
from explorer.errors import UserError
from explorer.models import ContrastiveModel
from explorer.views import ImageViews


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
    """The training and test sets a config names, at its image size and limits."""
    common = dict(
        data_root=config.data_root,
        download=config.download,
        image_size=config.image_size or None,
        seed=config.seed,
    )
    train = load_dataset(config.dataset, "train", limit=config.train_limit or None, **common)
    test = load_dataset(config.dataset, "test", limit=config.test_limit or None, **common)
    return train, test


def recipe_name(config: Config) -> str:
    """The augmentation recipe a config trains with (``augment="auto"``: the dataset's own)."""
    return recipe_for_dataset(config.dataset) if config.augment == "auto" else config.augment


def build_model(config: Config, in_channels: int) -> ContrastiveModel:
    """The network a config names, for images of ``in_channels`` channels (random init)."""
    return ContrastiveModel(
        config.backbone,
        projector_hidden_dim=config.projector_hidden_dim,
        projector_out_dim=config.projector_out_dim,
        projector_layers=config.projector_layers,
        predictor_hidden_dim=config.predictor_hidden_dim if config.loss == "simsiam" else None,
        in_channels=in_channels,
    )


def build_augment(config: Config, data: ImageDataset) -> TwoViewAugment:
    """The image-space two-view augmentation of a config's recipe, normalised with ``data``'s
    statistics (on the CPU; ``.to(device)`` moves it)."""
    size = config.image_size or default_image_size(config.dataset)
    return TwoViewAugment(RECIPES[recipe_name(config)], size, data.mean, data.std)


def build_views(config: Config, data: ImageDataset, device: torch.device) -> ImageViews:
    """What makes the two views of ``data``'s items at given indices, on ``device``.

    The trainer calls it on the training set; the analysis on its evaluation sample.
    """
    return ImageViews(data.images.to(device), build_augment(config, data).to(device))
