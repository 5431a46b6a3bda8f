"""Where training views come from: indices of training data -> two normalised views.

The trainer, the analysis and the dashboard ask one question of the data, "two views of these
training items", and :func:`explorer.builders.build_views` answers it for the run's ``augment``:

- :class:`ImageViews`: an image-space recipe (:class:`explorer.augment.TwoViewAugment`) applied to
  the stored uint8 images;
- :class:`GraphViews` (``augment=graph``, ``shapes`` datasets only): each view re-renders the
  item's factor tuple with its nuisance factors resampled by the kernel of the exact augmentation
  graph (:mod:`explorer.shapes_graph`), so the graph the analysis compares with *is* the
  population augmentation graph of training (HaoChen et al. 2021, Section 3.1).

Both draw only from torch's global generators (the device's), so a seed plus a saved RNG state
reproduce the views exactly, as exact resume needs.
"""

from __future__ import annotations

from torch import Tensor, nn

from explorer.augment import TwoViewAugment


class ImageViews(nn.Module):
    """Two augmented views of stored images.

    Args:
        images: uint8 (N, C, H, W), on the device the views are made on.
        augment: the two-view augmentation of the run's recipe.
    """

    def __init__(self, images: Tensor, augment: TwoViewAugment) -> None:
        super().__init__()
        self.images, self.augment = images, augment

    def forward(self, indices: Tensor) -> tuple[Tensor, Tensor]:
        """Two float32 normalised views (B, C, S, S) of the images at ``indices`` (B,)."""
        return self.augment(self.images[indices])
