"""``digits``: scikit-learn's 8x8 handwritten digits (1797 images, shipped with scikit-learn)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from explorer.data.base import (
    HOLDOUT_SEED,
    DatasetRequest,
    ImageDataset,
    channel_stats,
    fit_to_request,
    register_dataset,
    stratified_holdout,
)

TEST_FRACTION = 0.2


def _all_digits(size: int) -> tuple[torch.Tensor, np.ndarray]:
    """Every digit as uint8 (1797, 3, size, size) and its label (1797,) int64."""
    from sklearn.datasets import load_digits  # scikit-learn is slow to import: only when needed

    bunch = load_digits()
    pixels = torch.from_numpy(bunch.images.astype(np.float32) * (255.0 / 16.0))  # 0..16 -> 0..255
    # Bilinear upsampling from 8x8 gives smooth strokes that crops and blur can act on.
    grey = F.interpolate(pixels[:, None], size=(size, size), mode="bilinear", align_corners=False)
    grey = grey.round().clamp(0, 255).to(torch.uint8)
    # Three identical channels: every backbone (and pretrained stems) expects RGB, and the shared
    # colour augmentations (jitter, grayscale) then work unchanged; the cost is 3x memory of 5 MB.
    return grey.expand(-1, 3, -1, -1).contiguous(), bunch.target.astype(np.int64)


@register_dataset("digits", image_size=32, description="scikit-learn 8x8 digits, upsampled")
def load_digits_dataset(request: DatasetRequest) -> ImageDataset:
    """A fixed stratified 80/20 train/test split of the 1797 digits, upsampled to ``image_size``.

    The split uses ``HOLDOUT_SEED``, not ``request.seed``, so every run is probed on the same test
    digits (the seed only picks a ``limit``). mean/std come from the training split (both splits
    report the same values).
    """
    images, labels = _all_digits(request.image_size)
    held = stratified_holdout(labels, TEST_FRACTION, HOLDOUT_SEED)
    mean, std = channel_stats(images[torch.from_numpy(~held)])
    keep = torch.from_numpy(held if request.split == "test" else ~held)
    dataset = ImageDataset(
        images=images[keep],
        labels=torch.from_numpy(labels)[keep],
        classes=[str(d) for d in range(10)],
        mean=mean,
        std=std,
        name="digits",
    )
    return fit_to_request(dataset, request)  # embedded and small: limit after building it all
