"""Batched two-view augmentation on the training device.

The paper [0, Appendix C] augments as SimSiam [1] and SimCLR [2] do: RandomResizedCrop (scale
0.2-1), horizontal flip, ColorJitter(0.4, 0.4, 0.4, 0.1) with p=0.8, grayscale with p=0.2,
Gaussian blur (sigma 0.1-2, p=0.5, not on 32x32 images) and mean/std normalisation. Their code
applies it to one PIL image at a time in DataLoader workers; :func:`torchvision_transform` is that
pipeline, kept here as the baseline and reference. :class:`TwoViewAugment` applies the same recipe
to a whole uint8 batch on its device, every sample with its own random parameters:

- geometry (crop, flip, rotation) is one affine ``grid_sample`` per batch, so a rotated crop is
  interpolated once (at 32x32 a second bilinear pass visibly blurs), and the crop boxes follow
  torchvision's ``RandomResizedCrop.get_params`` (integer boxes, 10 tries, centre-crop fallback);
- colour uses ``kornia.enhance`` (torchvision's brightness/contrast/saturation formulas),
  ``kornia.color`` and ``kornia.filters``; the hue shift is written out below because kornia's
  goes through a full RGB->HSV->RGB round trip and takes about three times as long (it would be
  the slowest step of the recipe).
  As in kornia's ``ColorJitter``, the order of the four jitter steps is drawn once per call, not
  per image.

Randomness comes only from torch's global generators (the device's for every per-sample
parameter but the blur's sigma, the CPU's for that and the jitter order), so
``torch.manual_seed`` plus a saved RNG state reproduces the views exactly.

References:
    [0] HaoChen, Wei, Gaidon, Ma, "Provable Guarantees for Self-Supervised Deep Learning with
        Spectral Contrastive Loss", NeurIPS 2021, https://arxiv.org/abs/2106.04156
    [1] Chen, He, "Exploring Simple Siamese Representation Learning" (SimSiam), CVPR 2021,
        https://arxiv.org/abs/2011.10566
    [2] Chen, Kornblith, Norouzi, Hinton, "A Simple Framework for Contrastive Learning of Visual
        Representations" (SimCLR), ICML 2020, https://arxiv.org/abs/2002.05709
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from kornia.color import rgb_to_grayscale
from kornia.enhance import (
    adjust_brightness_accumulative,
    adjust_contrast_with_mean_subtraction,
    adjust_saturation_with_gray_subtraction,
)
from kornia.filters import gaussian_blur2d
from torch import Tensor, nn

_CROP_TRIES = 10  # torchvision's RandomResizedCrop.get_params tries 10 boxes before falling back


@dataclass(frozen=True)
class AugmentRecipe:
    """One augmentation distribution, applied independently to each view of each image.

    Attributes:
        crop_scale: Range of the crop's area as a fraction of the image's (RandomResizedCrop).
        crop_ratio: Range of the crop's aspect ratio w/h (drawn log-uniformly).
        flip_p: Probability of a horizontal flip.
        rotation_degrees: Rotation angle drawn uniformly from [-d, d] (0: no rotation).
        jitter: ColorJitter strengths (brightness, contrast, saturation, hue), torchvision's
            semantics: factors uniform in [1-s, 1+s] (hue: shift in [-s, s] turns).
        jitter_p: Probability of applying the colour jitter.
        grayscale_p: Probability of converting to grayscale (3-channel images only).
        blur_sigma: Range of the Gaussian blur's sigma, in pixels.
        blur_p: Probability of blurring; blurring happens only when the output size exceeds
            ``blur_above`` (the paper does not blur 32x32 CIFAR images).
        blur_above: Output size (pixels) at or below which blur is skipped.
    """

    crop_scale: tuple[float, float] = (0.2, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    rotation_degrees: float = 0.0
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1)
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    blur_p: float = 0.5
    blur_above: int = 32

    def __post_init__(self) -> None:
        lo, hi = self.crop_scale
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"crop_scale must satisfy 0 < lo <= hi <= 1, got {self.crop_scale}")
        if not 0 < self.crop_ratio[0] <= self.crop_ratio[1]:
            raise ValueError(f"crop_ratio must satisfy 0 < lo <= hi, got {self.crop_ratio}")
        for name in ("flip_p", "jitter_p", "grayscale_p", "blur_p"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be a probability, got {getattr(self, name)}")
        if any(s < 0 for s in self.jitter) or self.jitter[3] > 0.5:
            raise ValueError(f"jitter strengths must be >= 0 (hue <= 0.5), got {self.jitter}")
        if not 0 < self.blur_sigma[0] <= self.blur_sigma[1]:
            raise ValueError(f"blur_sigma must satisfy 0 < lo <= hi, got {self.blur_sigma}")

    def blurs_at(self, image_size: int) -> bool:
        """Whether this recipe blurs views of side ``image_size``."""
        return self.blur_p > 0 and image_size > self.blur_above

    def describe(self, image_size: int) -> list[tuple[str, str]]:
        """The recipe in words, one ``(step, what it does)`` per step in the order applied, for
        views of side ``image_size`` (the dashboard's Augmentations page shows it)."""
        lo, hi = self.crop_scale
        ratio = f"{self.crop_ratio[0]:.3g} to {self.crop_ratio[1]:.3g}"
        strengths = ", ".join(f"{name} {value:g}" for name, value in zip(
            ("brightness", "contrast", "saturation", "hue"), self.jitter, strict=True) if value)
        if not self.blurs_at(image_size):
            why = "p = 0" if self.blur_p == 0 else f"views of {image_size} px ≤ {self.blur_above}"
            blur = f"none ({why})"
        else:
            blur = (f"Gaussian, σ from {self.blur_sigma[0]:g} to {self.blur_sigma[1]:g} px, "
                    f"with probability {self.blur_p:g}")
        return [
            ("crop", f"{100 * lo:g}–{100 * hi:g}% of the image's area, aspect ratio (w/h) "
                     f"{ratio}, resized to {image_size} px"),
            ("flip", f"horizontal, with probability {self.flip_p:g}" if self.flip_p else "none"),
            ("rotation", f"uniform in ±{self.rotation_degrees:g}°" if self.rotation_degrees
             else "none"),
            # on grey images (no saturation or hue) the jitter is of brightness and contrast
            ("colour jitter" if any(self.jitter[2:]) else "brightness and contrast jitter",
             f"{strengths}, with probability {self.jitter_p:g}"
             if strengths and self.jitter_p else "none"),
            ("grayscale", f"with probability {self.grayscale_p:g}" if self.grayscale_p
             else "none"),
            ("blur", blur),
        ]


RECIPES: dict[str, AugmentRecipe] = {
    # The paper's (Appendix C), i.e. SimSiam's/SimCLR's.
    "natural": AugmentRecipe(),
    # Synthetic shapes: the class is the shape; position, scale, rotation and both colours are
    # nuisances, so views vary all of them. Crops stay moderate so the shape survives, and the
    # hue range is the full circle (the colours carry no class information).
    "shapes": AugmentRecipe(
        crop_scale=(0.4, 1.0),
        rotation_degrees=30.0,
        jitter=(0.4, 0.4, 0.6, 0.5),
        grayscale_p=0.2,
        blur_p=0.0,
    ),
    # Handwritten digits: a flip or a large rotation changes the digit (2 vs 5, 6 vs 9), and the
    # images are grey, so no hue, saturation or grayscale; crops keep most of the stroke.
    "digits": AugmentRecipe(
        crop_scale=(0.6, 1.0),
        crop_ratio=(0.8, 1.25),
        flip_p=0.0,
        rotation_degrees=15.0,
        jitter=(0.4, 0.4, 0.0, 0.0),
        jitter_p=0.8,
        grayscale_p=0.0,
        blur_p=0.0,
    ),
    # Fashion-MNIST's grey clothes: a mirrored shirt or shoe is still one, so flips stay; the
    # images are grey and centred, so brightness and contrast only, and crops a little deeper
    # than the digits' (a sleeve or a sole still names the class). A garment's brightness and
    # contrast say little of its class but make two views of one image easy to match, so they
    # are jittered strongly and always: on 3-epoch pilots, no jitter probed 3 points lower
    # (84.9% linear) than (0.4, 0.4) with p 0.8 (87.8%), and (0.8, 0.8) always 0.3 higher
    # (88.1%); crop scales of 0.2-1 and 0.7-1 moved it by at most 0.5 (README, "Fashion-MNIST").
    "fashion": AugmentRecipe(
        crop_scale=(0.4, 1.0),
        crop_ratio=(0.8, 1.25),
        flip_p=0.5,
        jitter=(0.8, 0.8, 0.0, 0.0),
        jitter_p=1.0,
        grayscale_p=0.0,
        blur_p=0.0,
    ),
}

# The recipe of each dataset that has its own; every other dataset gets ``natural``. MNIST and
# KMNIST are handwriting like ``digits``: a flip or a large rotation changes the character.
_DATASET_RECIPES = {"shapes": "shapes", "digits": "digits", "mnist": "digits",
                    "kmnist": "digits", "fashion-mnist": "fashion"}  # fmt: skip


def recipe_for_dataset(dataset: str) -> str:
    """The recipe name for a dataset: a key of :data:`RECIPES` (``natural`` for photographs)."""
    return _DATASET_RECIPES.get(dataset, "natural")


def _channel_stats(values: Sequence[float], channels: int, name: str) -> Tensor:
    if len(values) != channels:
        raise ValueError(f"{name} has {len(values)} entries for {channels}-channel images")
    return torch.tensor([float(v) for v in values]).view(1, channels, 1, 1)


def normalize(images: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """Evaluation-time preprocessing: ``(images / 255 - mean) / std`` per channel, no augmentation.

    Args:
        images: uint8 tensor of shape (B, C, H, W) (floats are taken to be in [0, 1] already).
        mean, std: C per-channel statistics of images scaled to [0, 1].

    Returns:
        float32 tensor of shape (B, C, H, W) on the images' device.
    """
    if images.ndim != 4:
        raise ValueError(f"expected (B, C, H, W) images, got shape {tuple(images.shape)}")
    x = images.float().div_(255) if images.dtype == torch.uint8 else images.float()
    channels = images.shape[1]
    mean_t = _channel_stats(mean, channels, "mean").to(x.device)
    std_t = _channel_stats(std, channels, "std").to(x.device)
    return (x - mean_t) / std_t


def sample_crop_boxes(
    n: int, height: int, width: int, scale: tuple[float, float], ratio: tuple[float, float],
    device: torch.device,
) -> Tensor:  # fmt: skip
    """``n`` RandomResizedCrop boxes, vectorised ``torchvision``'s ``get_params``.

    Each box tries ``_CROP_TRIES`` (area fraction, log-aspect) draws and keeps the first whose
    rounded size fits; rows with no fit fall back to the largest centred crop within ``ratio``.

    Returns:
        float tensor (n, 4) of integer-valued boxes ``(top, left, h, w)`` in pixels.
    """
    area = height * width
    tries = (n, _CROP_TRIES)
    target = area * torch.empty(tries, device=device).uniform_(*scale)
    log_ratio = torch.empty(tries, device=device).uniform_(math.log(ratio[0]), math.log(ratio[1]))
    aspect = torch.exp(log_ratio)
    w = torch.round(torch.sqrt(target * aspect))  # (n, tries)
    h = torch.round(torch.sqrt(target / aspect))
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = fits.int().argmax(dim=1, keepdim=True)  # the first fitting try (0 when none fits)
    w, h = w.gather(1, first).squeeze(1), h.gather(1, first).squeeze(1)  # (n,)

    # torchvision's fallback: a centred crop with the aspect ratio clamped into `ratio`.
    in_ratio = width / height
    if in_ratio < ratio[0]:
        fallback_w, fallback_h = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        fallback_w, fallback_h = round(height * ratio[1]), height
    else:
        fallback_w, fallback_h = width, height
    any_fit = fits.any(dim=1)
    w = torch.where(any_fit, w, torch.full_like(w, fallback_w))
    h = torch.where(any_fit, h, torch.full_like(h, fallback_h))
    # Uniform integer offsets in [0, H - h] and [0, W - w], as torch.randint would give.
    u = torch.rand(2, n, device=device)
    top = torch.floor(u[0] * (height - h + 1)).clamp_max(height - h)
    left = torch.floor(u[1] * (width - w + 1)).clamp_max(width - w)
    top = torch.where(any_fit, top, (height - h).div(2, rounding_mode="floor"))
    left = torch.where(any_fit, left, (width - w).div(2, rounding_mode="floor"))
    return torch.stack([top, left, h, w], dim=1)


def resized_crop(
    x: Tensor, boxes: Tensor, size: int, *, flip: Tensor | None = None, angle: Tensor | None = None
) -> Tensor:
    """Resample each crop box to ``size x size``, optionally rotated and flipped, in one pass.

    The crop window is rotated about its centre and read with bilinear interpolation (no
    antialiasing, which matters only when shrinking); samples outside the image repeat its border.
    Without rotation this equals torchvision's tensor ``resized_crop`` (bilinear) then ``hflip``,
    except within half a pixel of the crop's edge, where torchvision clamps to the crop and this
    reads the neighbouring image pixels (the window is a view of the image, not a cut-out).

    Args:
        x: float tensor of shape (N, C, H, W).
        boxes: (N, 4) ``(top, left, h, w)`` in pixels, as from :func:`sample_crop_boxes`.
        size: Side S of the output.
        flip: (N,) bool, mirror the view left-right where True.
        angle: (N,) rotation of the window in degrees.

    Returns:
        float tensor of shape (N, C, S, S).
    """
    n, channels, height, width = x.shape
    top, left, h, w = boxes.to(x.dtype).unbind(1)  # (N,) each
    sx = w if flip is None else torch.where(flip, -w, w)  # a flip mirrors the window's x axis
    if angle is None:
        cos, sin = torch.ones_like(w), torch.zeros_like(w)
    else:
        radians = torch.deg2rad(angle.to(x.dtype))
        cos, sin = torch.cos(radians), torch.sin(radians)
    # An output pixel at offset o from the view centre reads the input at
    # crop_centre + R(angle) diag(sx, h) o / S (pixels). In grid_sample's [-1, 1] coordinates
    # (align_corners=False) that is input = A @ output + t with A = diag(1/W, 1/H) R diag(sx, h).
    # Built by broadcasting: affine_grid's batched (S*S x 3) @ (3 x 2) matmul is slower on CPU.
    pixels = (torch.arange(size, device=x.device, dtype=x.dtype) * 2 + 1) / size - 1  # (S,)
    out_x, out_y = pixels.view(1, 1, size), pixels.view(1, size, 1)

    def coordinate(a: Tensor, b: Tensor, t: Tensor) -> Tensor:  # a * out_x + b * out_y + t
        return a.view(n, 1, 1) * out_x + (b.view(n, 1, 1) * out_y + t.view(n, 1, 1))

    grid = torch.stack([
        coordinate(cos * sx / width, -sin * h / width, (2 * left + w) / width - 1),
        coordinate(sin * sx / height, cos * h / height, (2 * top + h) / height - 1),
    ], dim=-1)  # (N, S, S, 2) as (x, y)  # fmt: skip
    # Border padding: a rotated window that leaves the image repeats the edge (no black wedges).
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def adjust_hue(images: Tensor, shift: Tensor) -> Tensor:
    """Rotate the hue of RGB images by ``shift`` turns (torchvision's ``adjust_hue`` semantics).

    Saturation and value are unchanged, so HSV->RGB reduces to the closed form
    ``c_n = V - (V - min) * clamp(min(k, 4 - k), 0, 1)`` with ``k = (n + 6 H) mod 6`` and
    n = 5, 3, 1 for R, G, B, where H is the shifted hue in turns. Only H is computed from RGB,
    which makes this about three times faster on CPU than kornia's RGB->HSV->RGB round trip.

    Args:
        images: float tensor of shape (B, 3, H, W) in [0, 1].
        shift: float tensor of shape (B,) in [-0.5, 0.5].

    Returns:
        float tensor of shape (B, 3, H, W) in [0, 1].
    """
    r, g, b = images.unbind(dim=1)  # (B, H, W) views
    value = torch.maximum(torch.maximum(r, g), b)  # (B, H, W)
    chroma = value - torch.minimum(torch.minimum(r, g), b)
    # Masks as floats (not torch.where, which is several times slower on CPU); ties go to red,
    # then green, as in torchvision.
    red = (r == value).to(images.dtype)
    green = (g == value).to(images.dtype).mul_(1 - red)
    blue = 1 - red - green
    # Hue in sextants: (G - B) / c for red, 2 + (B - R) / c for green, 4 + (R - G) / c for blue;
    # grey pixels have all differences 0, so any positive divisor gives hue 0.
    sextant = red * (g - b) + green * (b - r) + blue * (r - g)
    sextant.div_(chroma.clamp_min(1e-12)).add_(green * 2 + blue * 4)
    sextant.add_(6 * shift.view(-1, 1, 1))  # (B, H, W)
    # 5, 3, 1 made on the device: torch.tensor(..., device=cuda) would copy from the host and wait
    # for every queued kernel (a host-device sync in each training step).
    offsets = torch.arange(5.0, 0.0, -2.0, device=images.device).view(1, 3, 1, 1)
    k = sextant.unsqueeze(1) + offsets  # (B, 3, H, W)
    k.sub_(torch.floor(k / 6).mul_(6))  # mod 6 (torch.remainder is slower)
    weight = k.sub_(2).abs_().neg_().add_(2).clamp_(0, 1)  # clamp(min(k, 4 - k), 0, 1)
    return weight.mul_(chroma.unsqueeze(1)).neg_().add_(value.unsqueeze(1))


def _uniform(n: int, low: float, high: float, device: torch.device) -> Tensor:
    return torch.empty(n, device=device).uniform_(low, high)


def _bernoulli(n: int, p: float, device: torch.device) -> Tensor:
    return (torch.rand(n, device=device) < p).view(n, 1, 1, 1)  # (n, 1, 1, 1) bool


class TwoViewAugment(nn.Module):
    """Two independently augmented, normalised views of a uint8 batch (HaoChen et al. 2021, App. C).

    Args:
        recipe: The augmentation distribution (see :data:`RECIPES`).
        image_size: Side S of the square output views.
        mean, std: Per-channel statistics (images scaled to [0, 1]) for normalisation.
    """

    def __init__(
        self, recipe: AugmentRecipe, image_size: int, mean: Sequence[float], std: Sequence[float]
    ) -> None:
        super().__init__()
        if image_size < 1:
            raise ValueError(f"image_size must be positive, got {image_size}")
        if len(mean) != len(std):
            raise ValueError(f"mean and std differ in length: {len(mean)} vs {len(std)}")
        self.recipe, self.image_size = recipe, image_size
        self.register_buffer("mean", _channel_stats(mean, len(mean), "mean"), persistent=False)
        self.register_buffer("std", _channel_stats(std, len(std), "std"), persistent=False)
        self.mean: Tensor
        self.std: Tensor

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Map uint8 (B, C, H, W) on any device to two float32 normalised views (B, C, S, S)."""
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(
                f"expected uint8 (B, C, H, W) images, got {images.dtype} {tuple(images.shape)}"
            )
        if images.shape[1] != self.mean.shape[1]:
            raise ValueError(f"{images.shape[1]}-channel images but {self.mean.shape[1]} means")
        both = torch.cat([images, images]).float().div_(255)  # (2B, C, H, W) in [0, 1]
        views = self.augment(both)  # (2B, C, S, S): both views in one batched pass
        views = views.sub_(self.mean.to(views.device)).div_(self.std.to(views.device))
        view1, view2 = views.chunk(2)  # (B, C, S, S) each
        return view1, view2

    def augment(self, x: Tensor) -> Tensor:
        """One random view of each image: float (N, C, H, W) in [0, 1] -> (N, C, S, S) in [0, 1]."""
        recipe, device = self.recipe, x.device
        x = self._geometry(x)  # (N, C, S, S)
        n, channels = x.shape[:2]
        if recipe.jitter_p > 0 and any(s > 0 for s in recipe.jitter):
            x = torch.where(_bernoulli(n, recipe.jitter_p, device), self._jitter(x), x)
        if recipe.grayscale_p > 0 and channels == 3:
            grey = rgb_to_grayscale(x).expand_as(x)
            x = torch.where(_bernoulli(n, recipe.grayscale_p, device), grey, x)
        if recipe.blurs_at(self.image_size):
            # Drawn on the CPU: kornia checks sigma > 0 on the host, which for a GPU tensor
            # would wait for every queued kernel; a CPU tensor is copied over asynchronously.
            sigma = _uniform(n, *recipe.blur_sigma, torch.device("cpu")).unsqueeze(1).expand(n, 2)
            blurred = gaussian_blur2d(x, blur_kernel_size(recipe.blur_sigma[1]), sigma)
            x = torch.where(_bernoulli(n, recipe.blur_p, device), blurred, x)
        return x

    def _geometry(self, x: Tensor) -> Tensor:
        """Random crop, rotation and flip: (N, C, H, W) -> (N, C, S, S)."""
        recipe, device = self.recipe, x.device
        n, _, height, width = x.shape
        boxes = sample_crop_boxes(n, height, width, recipe.crop_scale, recipe.crop_ratio, device)
        flip = _bernoulli(n, recipe.flip_p, device).view(n)
        angle = None
        if recipe.rotation_degrees > 0:
            angle = _uniform(n, -recipe.rotation_degrees, recipe.rotation_degrees, device)
        return resized_crop(x, boxes, self.image_size, flip=flip, angle=angle)

    def _jitter(self, x: Tensor) -> Tensor:
        """torchvision's ColorJitter with per-sample factors, steps in a random order."""
        n, device = x.shape[0], x.device
        brightness, contrast, saturation, hue = self.recipe.jitter
        colour = x.shape[1] == 3  # saturation and hue are defined for RGB only
        steps: list[Callable[[Tensor], Tensor]] = []
        if brightness > 0:
            factor = _uniform(n, max(0.0, 1 - brightness), 1 + brightness, device)
            steps.append(lambda y, f=factor: adjust_brightness_accumulative(y, f))
        if contrast > 0:
            factor = _uniform(n, max(0.0, 1 - contrast), 1 + contrast, device)
            steps.append(lambda y, f=factor: adjust_contrast_with_mean_subtraction(y, f))
        if saturation > 0 and colour:
            factor = _uniform(n, max(0.0, 1 - saturation), 1 + saturation, device)
            steps.append(lambda y, f=factor: adjust_saturation_with_gray_subtraction(y, f))
        if hue > 0 and colour:
            shift = _uniform(n, -hue, hue, device)
            steps.append(lambda y, s=shift: adjust_hue(y, s))
        # One order per call from the CPU generator: a Python decision needs no device sync.
        for index in torch.randperm(len(steps)).tolist():
            x = steps[index](x)
        return x


def blur_kernel_size(max_sigma: float) -> int:
    """An odd Gaussian kernel reaching 3 sigma: like PIL's blur in the paper's code, size-free."""
    return 2 * math.ceil(3 * max_sigma) + 1


def torchvision_transform(
    recipe: AugmentRecipe, image_size: int, mean: Sequence[float], std: Sequence[float]
) -> nn.Module:
    """The same recipe as a per-image ``torchvision`` pipeline on PIL images (the paper's code).

    ``len(mean)`` sets the channel count: with one channel, saturation, hue and grayscale are
    dropped, as in :class:`TwoViewAugment`. One deliberate difference: the rotation is applied
    to the whole image before the crop and PIL fills its corners with black, where the batched
    version rotates the crop window and repeats the border.

    Returns:
        A ``torchvision.transforms.Compose`` mapping a PIL image to a float (C, S, S) tensor.
    """
    import torchvision.transforms as T  # lazily: only benchmarks and tests need the baseline

    colour = len(mean) == 3
    brightness, contrast, saturation, hue = recipe.jitter
    if not colour:
        saturation, hue = 0.0, 0.0
    ops: list[nn.Module] = []
    if recipe.rotation_degrees > 0:
        ops.append(T.RandomRotation(recipe.rotation_degrees, T.InterpolationMode.BILINEAR))
    ops.append(T.RandomResizedCrop(image_size, scale=recipe.crop_scale, ratio=recipe.crop_ratio))
    if recipe.flip_p > 0:
        ops.append(T.RandomHorizontalFlip(recipe.flip_p))
    if recipe.jitter_p > 0 and any(s > 0 for s in (brightness, contrast, saturation, hue)):
        jitter = T.ColorJitter(brightness, contrast, saturation, hue)
        ops.append(T.RandomApply([jitter], p=recipe.jitter_p))
    if recipe.grayscale_p > 0 and colour:
        ops.append(T.RandomGrayscale(recipe.grayscale_p))
    if recipe.blurs_at(image_size):
        blur = T.GaussianBlur(blur_kernel_size(recipe.blur_sigma[1]), sigma=recipe.blur_sigma)
        ops.append(T.RandomApply([blur], p=recipe.blur_p))
    ops += [T.ToTensor(), T.Normalize(list(mean), list(std))]
    return T.Compose(ops)
