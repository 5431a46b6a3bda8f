"""The fast training path for ``resnet18-cifar`` at batch 512, beside a per-sample DataLoader.

Both pipelines run ``explorer.train.Trainer``'s own step (``Trainer.train_step``: channels_last
and bf16 autocast on CUDA, ``torch.compile`` with ``--compile``, the spectral loss, SGD) on the
same model; only the way two views reach it differs:

* ours, what ``explorer train`` does: the dataset is a uint8 tensor on the device
  (``Trainer.views.images``) and ``Trainer.views`` (a ``TwoViewAugment`` inside) makes both
  views of a whole batch there;
* baseline, the paper's code's way: a ``DataLoader`` over PIL images applying the per-sample
  torchvision pipeline twice per image (``explorer.augment.torchvision_transform``), then a copy
  to the device.

The data are synthetic CIFAR-10-shaped uint8 images (no download; neither augmentation nor
model cost depends on the pixels). For each pipeline it prints images/s (wall clock over the
timed steps, one synchronisation at each end), the peak memory, and the shares of step time spent
on data (augmentation, or waiting for the loader and the copy) and on the model (forward,
backward, optimiser), timed with CUDA events on a GPU (no host synchronisation inside the loop)
and with the wall clock on a CPU, where every operation runs synchronously.

    .venv/bin/python benchmarks/bench_gpu.py                     # a GPU: batch 512, 20 steps
    .venv/bin/python benchmarks/bench_gpu.py --batch-size 64 --steps 3   # a CPU: ~2 minutes
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from bench_train import TwoCropsDataset  # the per-sample two-view dataset of the paper's code
from torch.utils.data import DataLoader

from explorer.augment import RECIPES, torchvision_transform
from explorer.config import build_config
from explorer.data import ImageDataset
from explorer.train import LossWindow, Trainer

CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
Views = Iterator[tuple[torch.Tensor, torch.Tensor]]  # two (B, 3, 32, 32) float views per step


def synthetic_cifar10(n: int, seed: int = 0) -> ImageDataset:
    """``n`` random uint8 images of shape (3, 32, 32) with CIFAR-10's classes and statistics."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 10, (n,), generator=generator)
    classes = [f"class {i}" for i in range(10)]
    return ImageDataset(images, labels, classes, CIFAR10_MEAN, CIFAR10_STD, "synthetic-cifar10")


class Clock:
    """Marks on the device's timeline: CUDA events on a GPU, the wall clock on a CPU."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def mark(self) -> torch.cuda.Event | float:
        if not self.cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()  # queued on the stream: the host does not wait
        return event

    def seconds(self, start: torch.cuda.Event | float, end: torch.cuda.Event | float) -> float:
        """Time between two marks; on CUDA call after a synchronisation."""
        if self.cuda:
            return start.elapsed_time(end) / 1000  # type: ignore[union-attr]
        return end - start  # type: ignore[operator]


@dataclass
class Result:
    images_per_s: float
    data_s: float  # summed over the timed steps
    model_s: float
    peak: str


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _start_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _peak(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB allocated"
    # Linux reports KiB; the process's peak so far, Python and torch included.
    return f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB RSS"


def time_steps(trainer: Trainer, batches: Views, steps: int, warmup: int) -> Result:
    """Run ``warmup + steps`` training steps on views from ``batches``; time the last ``steps``."""
    device, clock, window = trainer.device, Clock(trainer.device), LossWindow(sums={})
    marks = []
    for step in range(warmup + steps):
        if step == warmup:  # compilation, cuDNN's algorithm search, workers' start are done
            _sync(device)
            _start_peak(device)
            started = time.perf_counter()
        before = clock.mark()
        view1, view2 = next(batches)
        between = clock.mark()
        trainer.train_step(view1, view2, window)
        trainer.step += 1
        if step >= warmup:
            marks.append((before, between, clock.mark()))
    _sync(device)
    wall = time.perf_counter() - started
    if not torch.isfinite(window.sums["loss"]).item():  # read back once, after timing
        raise RuntimeError("the loss became non-finite; the timing is meaningless")
    data = sum(clock.seconds(a, b) for a, b, _ in marks)
    model = sum(clock.seconds(b, c) for _, b, c in marks)
    return Result(steps * trainer.config.batch_size / wall, data, model, _peak(device))


def ours(trainer: Trainer) -> Views:
    """Batches as ``Trainer._loop`` makes them: uint8 rows of the on-device tensor, augmented."""
    size = trainer.config.batch_size
    while True:
        index = torch.randint(len(trainer.train_set), (size,), device=trainer.device)
        yield trainer.views(index)


def dataloader(trainer: Trainer, workers: int) -> Views:
    """Batches of the per-sample torchvision pipeline, copied to the device."""
    data = trainer.train_set
    transform = torchvision_transform(RECIPES["natural"], 32, data.mean, data.std)
    cuda = trainer.device.type == "cuda"
    loader = DataLoader(
        TwoCropsDataset(data.images, transform), batch_size=trainer.config.batch_size,
        shuffle=True, drop_last=True, num_workers=workers, persistent_workers=workers > 0,
        pin_memory=cuda,
    )  # fmt: skip
    while True:
        for view1, view2 in loader:  # pinned memory on CUDA: the copies are asynchronous
            yield view1.to(trainer.device, non_blocking=cuda), view2.to(trainer.device, non_blocking=cuda)  # fmt: skip  # noqa: E501


def report(name: str, result: Result) -> None:
    total = result.data_s + result.model_s
    print(
        f"{name:<42}{result.images_per_s:>9.0f}{100 * result.data_s / total:>8.0f}%"
        f"{100 * result.model_s / total:>8.0f}%   {result.peak}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> None:
    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=512, help="global batch (default 512)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per pipeline")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    parser.add_argument("--images", type=int, default=10_000, help="synthetic training images")
    parser.add_argument(
        "--workers", type=int, nargs="+",
        default=[0, min(8, os.cpu_count() or 1)] if cuda else [0, 2],
        help="DataLoader worker counts of the baseline; the best is compared",
    )  # fmt: skip
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--device", default="auto", help="auto (cuda if present), cuda or cpu")
    args = parser.parse_args(argv)
    if args.images < args.batch_size:
        parser.error("--images must be at least --batch-size")

    config = build_config(
        "cifar10-paper",
        overrides={"batch_size": args.batch_size, "device": args.device, "compile": args.compile,
                   "knn_every": 0, "analyze": "off"},
    )  # fmt: skip
    trainer = Trainer(
        config, progress=False, splits=(synthetic_cifar10(args.images), synthetic_cifar10(16, 1))
    )
    device = trainer.device
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    amp = config.amp and device.type == "cuda"
    print(
        f"{config.backbone}, {config.loss} loss, batch {config.batch_size}, synthetic uint8 "
        f"CIFAR-10 ({args.images} images), {device} ({name}, {torch.get_num_threads()} CPU "
        f"threads), bf16 autocast {'on' if amp else 'off'}, channels_last "
        f"{'on' if device.type == 'cuda' else 'off'}, compile {'on' if args.compile else 'off'}, "
        f"{args.warmup} warm-up + {args.steps} timed steps"
    )
    if device.type != "cuda":
        print("note: CPU figures; this path's goal is a GPU (bf16 and channels_last are off)")
    print(f"{'pipeline':<42}{'images/s':>9}{'data':>9}{'model':>9}   peak memory")
    fast = time_steps(trainer, ours(trainer), args.steps, args.warmup)
    report("batched on-device augmentation (ours)", fast)
    best = 0.0
    for workers in args.workers:
        slow = time_steps(trainer, dataloader(trainer, workers), args.steps, args.warmup)
        report(f"per-sample DataLoader, num_workers={workers}", slow)
        best = max(best, slow.images_per_s)
    print(f"ratio ours / best DataLoader: {fast.images_per_s / best:.2f}x")


if __name__ == "__main__":
    main()
