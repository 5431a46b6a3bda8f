"""Where training views come from: indices of training data -> two normalised views.

The trainer, the analysis and the dashboard ask one question of the data, "two views of these
training items", and :func:`explorer.builders.build_views` answers it for the run's ``augment``:

- :class:`ImageViews`: an image-space recipe (:class:`explorer.augment.TwoViewAugment`) applied to
  the stored uint8 images;
- :class:`GraphViews` (``augment=graph``, ``shapes`` datasets only): each view re-renders the
  item's factor tuple with its nuisance factors resampled by the kernel of the exact augmentation
  graph (:mod:`explorer.graphs.shapes`), so the graph the analysis compares with *is* the
  population augmentation graph of training (HaoChen et al. 2021, Section 3.1).

Both draw only from torch's global generators (the device's), so a seed plus a saved RNG state
reproduce the views exactly, as exact resume needs.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from explorer.augment import TwoViewAugment
from explorer.data.shapes import LOOKALIKE, SHAPES_GRID, ShapesGrid, ShapesKernel


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


class GraphViews(nn.Module):
    """Two views of each item drawn from the exact graph's kernel: factor tuples re-rendered.

    Each view resamples the item's nuisance factors with :class:`ShapesKernel`'s probabilities
    (the same parts, the same uniform redraws over the same kept values as
    :func:`explorer.graphs.shapes.shapes_augmentation_graph`), then renders the tuple exactly as
    :meth:`ShapesGrid.render_batch` does (alpha compositing, rounded to uint8) from a table of
    shape coverages held on the device, and normalises it with ``mean``/``std``.

    Args:
        factors: int64 (N, 6) factor tuples of the items, on the views' device.
        kernel: the augmentation kernel; every item's tuple must lie on its grid.
        mean, std: per-channel statistics (images in [0, 1]) for normalisation.
        grid: the renderer.
    """

    def __init__(
        self,
        factors: Tensor,
        kernel: ShapesKernel,
        mean: Sequence[float],
        std: Sequence[float],
        grid: ShapesGrid = SHAPES_GRID,
    ) -> None:
        super().__init__()
        kernel.tuple_positions(factors.cpu().numpy())  # raises if an item is off the grid
        self.kernel, self.grid = kernel, grid
        self.factors = factors
        # Coverage of every kept (shape, position, scale, rotation), indexed by the full grid's
        # flat index over those four factors (entries off the kernel's grid stay zero).
        sizes = grid.sizes[:4]
        alphas = torch.zeros((math.prod(sizes), grid.image_size, grid.image_size))
        for combo in itertools.product(*kernel.values[:4]):
            coverage = torch.from_numpy(grid.alpha(*combo).copy())  # the cache's is read-only
            alphas[int(np.ravel_multi_index(combo, sizes))] = coverage
        device = factors.device
        self.alphas = alphas.to(device)  # (prod(sizes), S, S) float32
        self.strides = torch.tensor([sizes[1] * sizes[2] * sizes[3], sizes[2] * sizes[3],
                                     sizes[3]], device=device)
        self.fg = torch.tensor(grid.fg_colors, dtype=torch.float32, device=device)  # (F, 3)
        self.bg = torch.tensor(grid.bg_colors, dtype=torch.float32, device=device)  # (G, 3)
        self.values = [torch.tensor(v, device=device) for v in kernel.values]
        # class changes where the view is ambiguous: q per (shape, scale, rotation) of the grid
        shape_scale_rotation = np.stack(np.meshgrid(
            np.arange(sizes[0]), np.arange(sizes[2]), np.arange(sizes[3]), indexing="ij"), -1)
        as_tuples = np.zeros((shape_scale_rotation[..., 0].size, 6), dtype=np.int64)
        as_tuples[:, [0, 2, 3]] = shape_scale_rotation.reshape(-1, 3)
        change = kernel.change_probabilities(as_tuples, grid).reshape(sizes[0], sizes[2], sizes[3])
        self.change_p = torch.tensor(change, dtype=torch.float32, device=device)  # (6, S, R)
        self.lookalike = torch.tensor(LOOKALIKE, device=device)
        self.mean = torch.tensor([float(m) for m in mean], device=device).view(1, -1, 1, 1)
        self.std = torch.tensor([float(s) for s in std], device=device).view(1, -1, 1, 1)

    def resample(self, factors: Tensor) -> Tensor:
        """One draw of A(. | x) per row: int64 (B, 6) -> (B, 6), on the factors' device: each part
        redrawn with its probability, then the class change where the view is ambiguous
        (:meth:`ShapesKernel.change_probabilities`)."""
        out = factors.clone()
        n, device = len(factors), factors.device
        names = self.grid.FACTORS
        for part, p in zip(self.kernel.PARTS, self.kernel.probabilities, strict=True):
            if p == 0:
                continue
            redraw = torch.rand(n, device=device) < p  # (B,)
            for name in part:
                column, kept = names.index(name), self.values[names.index(name)]
                new = kept[torch.randint(len(kept), (n,), device=device)]
                out[:, column] = torch.where(redraw, new, out[:, column])
        if self.kernel.class_change_p > 0:  # then a detailed shape may lose its detail
            q = self.change_p[out[:, 0], out[:, 2], out[:, 3]]  # (B,)
            changed = torch.rand(n, device=device) < q
            out[:, 0] = torch.where(changed, self.lookalike[out[:, 0]], out[:, 0])
        return out

    def render(self, factors: Tensor) -> Tensor:
        """uint8 images (B, 3, S, S) of factor tuples (B, 6), equal to ``grid.render_batch``."""
        flat = (factors[:, :3] * self.strides).sum(1) + factors[:, 3]  # (B,)
        alpha = self.alphas[flat].unsqueeze(1)  # (B, 1, S, S)
        fg = self.fg[factors[:, 4]][:, :, None, None]  # (B, 3, 1, 1)
        bg = self.bg[factors[:, 5]][:, :, None, None]
        return torch.round(bg + alpha * (fg - bg)).to(torch.uint8)

    def forward(self, indices: Tensor) -> tuple[Tensor, Tensor]:
        """Two float32 normalised views (B, 3, S, S) of the items at ``indices`` (B,)."""
        anchors = self.factors[indices]  # (B, 6)
        both = self.render(self.resample(torch.cat([anchors, anchors])))  # (2B, 3, S, S)
        views = (both.float() / 255 - self.mean) / self.std
        return views[: len(anchors)], views[len(anchors) :]
