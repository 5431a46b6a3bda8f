"""Batched augmentation: shapes, ranges, seeding, and agreement with torchvision and NumPy."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torchvision.transforms as T
import torchvision.transforms.v2.functional as TF
from PIL import Image

from explorer.augment import (
    RECIPES,
    AugmentRecipe,
    TwoViewAugment,
    adjust_hue,
    normalize,
    recipe_for_dataset,
    resized_crop,
    sample_crop_boxes,
    torchvision_transform,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
MEAN3, STD3 = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)


def _images(n: int = 8, channels: int = 3, size: int = 32, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=generator)


def _stats(channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    return (MEAN3, STD3) if channels == 3 else (MEAN3[:1], STD3[:1])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("recipe", sorted(RECIPES))
@pytest.mark.parametrize("size", [24, 40])
def test_views_have_the_right_shape_dtype_device_and_range(
    recipe: str, channels: int, device: str, size: int
) -> None:
    mean, std = _stats(channels)
    augment = TwoViewAugment(RECIPES[recipe], size, mean, std).to(device)
    images = _images(channels=channels).to(device)
    view1, view2 = augment(images)
    for view in (view1, view2):
        assert view.shape == (8, channels, size, size)
        assert view.dtype == torch.float32 and view.device.type == device
        # Undo the normalisation by hand: every pixel must be back in [0, 1].
        pixels = view.cpu().numpy() * np.array(std).reshape(1, -1, 1, 1)
        pixels += np.array(mean).reshape(1, -1, 1, 1)
        assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5
    assert not torch.equal(view1, view2)  # independent parameters per view


def test_blur_runs_above_32_pixels_only() -> None:
    recipe = RECIPES["natural"]
    assert not recipe.blurs_at(32) and recipe.blurs_at(64)
    images = _images(n=4, size=64)
    for channels in (1, 3):
        mean, std = _stats(channels)
        view1, _ = TwoViewAugment(recipe, 64, mean, std)(images[:, :channels])
        assert view1.shape == (4, channels, 64, 64)


@pytest.mark.parametrize("device", DEVICES)
def test_same_seed_gives_identical_views_and_another_seed_different(device: str) -> None:
    augment = TwoViewAugment(RECIPES["natural"], 32, MEAN3, STD3).to(device)
    images = _images().to(device)

    def views(seed: int) -> torch.Tensor:
        torch.manual_seed(seed)
        return torch.cat(augment(images))

    first = views(1)
    assert torch.equal(first, views(1))
    assert not torch.equal(first, views(2))


def test_saved_rng_state_replays_the_views() -> None:
    augment = TwoViewAugment(RECIPES["shapes"], 32, MEAN3, STD3)
    images = _images()
    torch.manual_seed(3)
    augment(images)  # advance the generator as a training step would
    state = torch.get_rng_state()
    expected = torch.cat(augment(images))
    torch.set_rng_state(state)
    assert torch.equal(torch.cat(augment(images)), expected)


def _identity_geometry(recipe: AugmentRecipe) -> AugmentRecipe:
    """The recipe with whole-image crops, no rotation and no colour: only flips remain."""
    return dataclasses.replace(
        recipe, crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), rotation_degrees=0.0,
        jitter_p=0.0, grayscale_p=0.0, blur_p=0.0,
    )  # fmt: skip


def test_digits_never_flips_while_natural_does() -> None:
    # A left-to-right ramp: a flip reverses it, any other geometry here is the identity.
    ramp = torch.arange(32, dtype=torch.uint8).mul(8).expand(64, 3, 32, 32).contiguous()
    torch.manual_seed(0)
    for name, expect_flips in (("digits", False), ("natural", True)):
        recipe = _identity_geometry(RECIPES[name])
        views = TwoViewAugment(recipe, 32, (0.0,) * 3, (1.0,) * 3).augment(ramp.float() / 255)
        original = torch.isclose(views, ramp.float() / 255, atol=1e-5).flatten(1).all(1)
        flipped = torch.isclose(views, ramp.flip(-1).float() / 255, atol=1e-5).flatten(1).all(1)
        assert bool((original | flipped).all())
        assert bool(flipped.any()) == expect_flips
        assert bool(original.any())


def test_recipes_follow_the_paper_and_the_datasets() -> None:
    natural = RECIPES["natural"]  # HaoChen et al. 2021, App. C (SimSiam's recipe)
    assert natural.crop_scale == (0.2, 1.0) and natural.flip_p == 0.5
    assert natural.jitter == (0.4, 0.4, 0.4, 0.1) and natural.jitter_p == 0.8
    assert natural.grayscale_p == 0.2 and natural.rotation_degrees == 0
    assert natural.blur_sigma == (0.1, 2.0) and natural.blur_p == 0.5 and natural.blur_above == 32
    digits = RECIPES["digits"]
    assert digits.flip_p == 0 and digits.jitter[3] == 0 and digits.crop_scale[0] >= 0.5
    assert RECIPES["shapes"].rotation_degrees > 0 and RECIPES["shapes"].jitter[3] > 0
    assert recipe_for_dataset("shapes") == "shapes" and recipe_for_dataset("digits") == "digits"
    assert recipe_for_dataset("cifar10") == "natural" and recipe_for_dataset("stl10") == "natural"
    assert recipe_for_dataset("mnist") == recipe_for_dataset("kmnist") == "digits"
    fashion = RECIPES[recipe_for_dataset("fashion-mnist")]  # grey clothes: flips, no colour
    assert fashion.flip_p > 0 and fashion.jitter[2:] == (0.0, 0.0) and fashion.grayscale_p == 0
    with pytest.raises(ValueError, match="crop_scale"):
        AugmentRecipe(crop_scale=(0.5, 0.2))


def test_crop_boxes_match_torchvision_get_params() -> None:
    n, height, width, scale, ratio = 4000, 32, 40, (0.2, 1.0), (3 / 4, 4 / 3)
    torch.manual_seed(0)
    boxes = sample_crop_boxes(n, height, width, scale, ratio, torch.device("cpu")).numpy()
    top, left, h, w = boxes.T
    assert np.array_equal(boxes, np.round(boxes))  # integer boxes, like torchvision's
    assert (top >= 0).all() and (left >= 0).all()
    assert (top + h <= height).all() and (left + w <= width).all()
    reference = np.array(
        [T.RandomResizedCrop.get_params(torch.zeros(1, height, width), list(scale), list(ratio))
         for _ in range(n)], dtype=np.float64,
    )  # fmt: skip
    # Same distribution: compare means of area, aspect and position (standard errors ~0.005).
    for ours, theirs in (
        (h * w / (height * width), reference[:, 2] * reference[:, 3] / (height * width)),
        (np.log(w / h), np.log(reference[:, 3] / reference[:, 2])),
        ((top + h / 2) / height, (reference[:, 0] + reference[:, 2] / 2) / height),
        ((left + w / 2) / width, (reference[:, 1] + reference[:, 3] / 2) / width),
    ):
        assert abs(ours.mean() - theirs.mean()) < 0.03


def test_crop_falls_back_to_a_centre_crop_like_torchvision() -> None:
    # No box of area 0.9 with aspect 3 fits in 10x10: torchvision falls back to a centred crop.
    boxes = sample_crop_boxes(5, 10, 10, (0.9, 0.9), (3.0, 3.0), torch.device("cpu"))
    assert boxes.tolist() == [[3.0, 0.0, 3.0, 10.0]] * 5  # h = round(10 / 3), centred


def test_resized_crop_matches_torchvision_inside_the_box() -> None:
    images = _images(n=4).float() / 255
    boxes = torch.tensor([[0, 0, 32, 32], [3, 5, 10, 20], [10, 2, 22, 17], [6, 4, 20, 20]])
    flip = torch.tensor([False, True, False, True])
    size = 24
    out = resized_crop(images, boxes.float(), size, flip=flip)
    for i, (top, left, h, w) in enumerate(boxes.tolist()):
        expected = TF.resized_crop(images[i], top, left, h, w, [size, size], antialias=False)
        if flip[i]:
            expected = TF.horizontal_flip(expected)
        # torchvision clamps to the crop at its edge; compare rows and columns whose sample
        # points fall at least half a pixel inside the box (all of them for the whole image).
        rows = (torch.arange(size) + 0.5) * h / size - 0.5
        cols = (torch.arange(size) + 0.5) * w / size - 0.5
        cols = cols.flip(0) if flip[i] else cols
        inside = ((rows >= 0) & (rows <= h - 1))[:, None] & ((cols >= 0) & (cols <= w - 1))[None]
        torch.testing.assert_close(out[i][:, inside], expected[:, inside], atol=1e-5, rtol=0)


def test_rotation_by_a_quarter_turn_matches_rot90() -> None:
    images = (_images(n=1).float() / 255).expand(2, -1, -1, -1)  # one image, turned both ways
    boxes = torch.tensor([[0.0, 0.0, 32.0, 32.0]] * 2)
    out = resized_crop(images, boxes, 32, angle=torch.tensor([90.0, -90.0]))
    turned = [torch.rot90(images[0], k, dims=(1, 2)) for k in (1, 3)]
    assert any(torch.allclose(out[0], t, atol=1e-5) for t in turned)
    assert torch.allclose(out[0], torch.rot90(out[1], 2, dims=(1, 2)), atol=1e-5)


def test_adjust_hue_matches_torchvision() -> None:
    images = _images(n=6).float() / 255
    images[0] = images[0, :1]  # a grey image: hue is undefined and must stay grey
    shift = torch.tensor([0.3, -0.5, 0.5, -0.1, 0.0, 0.25])
    expected = torch.stack([TF.adjust_hue(images[i], float(shift[i])) for i in range(6)])
    torch.testing.assert_close(adjust_hue(images, shift), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("channels", [1, 3])
def test_normalize_matches_numpy(channels: int) -> None:
    mean, std = _stats(channels)
    images = _images(n=3, channels=channels)
    expected = (images.numpy() / 255.0 - np.reshape(mean, (1, -1, 1, 1))) / np.reshape(
        std, (1, -1, 1, 1)
    )
    out = normalize(images, mean, std)
    assert out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-5)


def test_bad_inputs_raise_value_error() -> None:
    augment = TwoViewAugment(RECIPES["natural"], 32, MEAN3, STD3)
    with pytest.raises(ValueError, match="uint8"):
        augment(_images().float())
    with pytest.raises(ValueError, match="channel"):
        augment(_images(channels=1))
    with pytest.raises(ValueError, match="mean"):
        normalize(_images(), (0.5,), (0.5,))


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_torchvision_baseline_gives_the_same_shapes(recipe: str, channels: int) -> None:
    mean, std = _stats(channels)
    size = 64  # above 32, so the natural recipe's blur is in the pipeline
    transform = torchvision_transform(RECIPES[recipe], size, mean, std)
    batched = TwoViewAugment(RECIPES[recipe], size, mean, std)(_images(n=2, channels=channels))
    array = _images(n=1, channels=channels, size=48)[0].permute(1, 2, 0).numpy()
    image = Image.fromarray(array[..., 0] if channels == 1 else array)
    view = transform(image)
    assert view.shape == batched[0].shape[1:] == (channels, size, size)
    assert view.dtype == batched[0].dtype
    has_blur = any(isinstance(t, T.RandomApply) and isinstance(t.transforms[0], T.GaussianBlur)
                   for t in transform.transforms)  # fmt: skip
    assert has_blur == RECIPES[recipe].blurs_at(size)
    assert math.isfinite(float(view.sum()))


def test_the_recipe_names_a_grey_images_jitter_by_what_it_changes() -> None:
    """The digits recipe has no saturation or hue: its jitter is not called a colour jitter."""
    steps = dict(RECIPES["digits"].describe(28))
    assert "colour jitter" not in steps
    assert steps["brightness and contrast jitter"].startswith("brightness 0.4, contrast 0.4")
    assert dict(RECIPES["shapes"].describe(32))["colour jitter"].endswith("hue 0.5, with "
                                                                           "probability 0.8")
