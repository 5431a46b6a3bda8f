"""Images/s of batched two-view augmentation against the paper's per-image torchvision pipeline.

The paper's code (HaoChen et al. 2021, following SimSiam) decodes each image to PIL and runs a
torchvision Compose on it twice inside a DataLoader; ``explorer.augment.TwoViewAugment`` runs the
same recipe on a whole uint8 batch already on the device. Both are timed in the same run, on the
same images, after a warm-up; a rate counts source images, each turned into two views.

    .venv/bin/python benchmarks/bench_augment.py
    .venv/bin/python benchmarks/bench_augment.py --workers 0 2 --repeats 5 --device cuda

On CPU about half the batched time can go to page faults: glibc hands freed multi-megabyte
tensors back to the OS, so each call touches fresh pages. Running with
``MALLOC_MMAP_THRESHOLD_=2000000000 MALLOC_TRIM_THRESHOLD_=2000000000`` keeps that memory and
roughly doubles the batched rate (and speeds up model training on CPU too).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from explorer.augment import RECIPES, TwoViewAugment, torchvision_transform

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)  # CIFAR-10's


class PilTwoViews(Dataset):
    """CIFAR-style dataset: uint8 HWC arrays, decoded to PIL per item, two views per image."""

    def __init__(self, images: np.ndarray, transform: Callable[[Image.Image], torch.Tensor]):
        self.images, self.transform = images, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = Image.fromarray(self.images[index])
        return self.transform(image), self.transform(image)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rate(augment: Callable[[torch.Tensor], object], images: torch.Tensor, batch_size: int,
          repeats: int) -> float:  # fmt: skip
    """Median images/s of ``augment`` over shuffled batches of ``images`` (uint8, on the device)."""
    n = len(images)

    def one_pass() -> None:
        order = torch.randperm(n, device=images.device)
        for start in range(0, n - batch_size + 1, batch_size):
            augment(images[order[start : start + batch_size]])

    one_pass()  # warm-up: kernel selection, caches, CUDA context
    seconds = []
    for _ in range(repeats):
        _synchronize(images.device)
        start = time.perf_counter()
        one_pass()
        _synchronize(images.device)
        seconds.append(time.perf_counter() - start)
    return (n // batch_size * batch_size) / statistics.median(seconds)


def batched_rate(recipe: str, images: torch.Tensor, batch_size: int, repeats: int) -> float:
    """Median images/s of TwoViewAugment (two (B, 3, S, S) views per batch)."""
    augment = TwoViewAugment(RECIPES[recipe], images.shape[-1], MEAN, STD).to(images.device)
    return _rate(augment, images, batch_size, repeats)


def kornia_modules_rate(images: torch.Tensor, batch_size: int, repeats: int) -> float:
    """The natural recipe from ``kornia.augmentation`` modules (for comparison with our path)."""
    import kornia.augmentation as K

    size = images.shape[-1]
    pipeline = torch.nn.Sequential(
        K.RandomResizedCrop((size, size), scale=(0.2, 1.0)),
        K.RandomHorizontalFlip(),
        K.ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8),
        K.RandomGrayscale(p=0.2),
        K.Normalize(torch.tensor(MEAN), torch.tensor(STD)),
    ).to(images.device)

    def augment(batch: torch.Tensor) -> None:
        pipeline(torch.cat([batch, batch]).float().div_(255))  # both views in one call

    return _rate(augment, images, batch_size, repeats)


def torchvision_rate(
    recipe: str, images: np.ndarray, batch_size: int, repeats: int, workers: int
) -> float:
    """Median images/s of the per-image PIL pipeline through a shuffling DataLoader."""
    transform = torchvision_transform(RECIPES[recipe], images.shape[1], MEAN, STD)
    loader = DataLoader(
        PilTwoViews(images, transform), batch_size=batch_size, shuffle=True, drop_last=True,
        num_workers=workers, persistent_workers=workers > 0,
    )  # fmt: skip
    for _ in loader:  # warm-up: starts the workers, which persist across the timed passes
        break
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _views in loader:
            pass
        seconds.append(time.perf_counter() - start)
    return (len(images) // batch_size * batch_size) / statistics.median(seconds)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipes", nargs="+", default=["natural", "shapes", "digits"],
                        choices=sorted(RECIPES), help="recipes to time (default: all)")  # fmt: skip
    parser.add_argument("--image-size", type=int, default=32, help="image side (default 32)")
    parser.add_argument("--batch-size", type=int, default=512, help="batch size (default 512)")
    parser.add_argument("--num-images", type=int, default=2048,
                        help="images per timed pass (default 2048)")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=3, help="timed passes; the median is kept")
    parser.add_argument("--workers", type=int, nargs="+", default=[0],
                        help="DataLoader worker counts for the torchvision baseline (default 0; "
                             "the paper's code path); e.g. --workers 0 2")  # fmt: skip
    parser.add_argument("--device", default="auto", help="auto (cuda if present), cpu or cuda")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--kornia-modules", action="store_true",
                        help="also time the natural recipe built from kornia.augmentation "
                             "modules (the design alternative)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.num_images < args.batch_size:
        parser.error("--num-images must be at least --batch-size")

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )
    generator = torch.Generator().manual_seed(0)
    size = args.image_size
    images = torch.randint(0, 256, (args.num_images, 3, size, size), dtype=torch.uint8,
                           generator=generator)  # fmt: skip
    images_hwc = images.permute(0, 2, 3, 1).contiguous().numpy()  # what CIFAR datasets hold
    on_device = images.to(device)
    torch.manual_seed(0)

    print(f"device {device} ({torch.get_num_threads()} CPU threads), {size}x{size} RGB, "
          f"batch {args.batch_size}, {args.num_images} images per pass, median of "
          f"{args.repeats} passes; rates count source images (two views each)")  # fmt: skip
    header = f"{'recipe':<9} {'batched':>12}" + "".join(
        f" {f'torchvision w={w}':>18} {'ratio':>7}" for w in args.workers
    )
    print(header)
    for recipe in args.recipes:
        fast = batched_rate(recipe, on_device, args.batch_size, args.repeats)
        row = f"{recipe:<9} {fast:>8.0f} im/s"
        for workers in args.workers:
            slow = torchvision_rate(recipe, images_hwc, args.batch_size, args.repeats, workers)
            row += f" {slow:>13.0f} im/s {fast / slow:>6.1f}x"
        print(row, flush=True)
    if args.kornia_modules:
        rate = kornia_modules_rate(on_device, args.batch_size, args.repeats)
        print(f"kornia.augmentation modules, natural recipe: {rate:.0f} im/s")


if __name__ == "__main__":
    main()
