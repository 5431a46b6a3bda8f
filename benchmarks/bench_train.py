"""End-to-end training throughput: batched on-device augmentation vs a per-sample DataLoader.

Both pipelines train the same ``cnn-small`` model with the same spectral loss, optimiser and batch
size on the ``shapes`` dataset; only the way two views reach the model differs:

* ours: the dataset lives on the device as uint8; ``TwoViewAugment`` draws per-sample parameters
  and augments the whole batch at once (what ``explorer.train`` does);
* baseline: the paper's code's approach, a ``torch.utils.data.DataLoader`` over PIL images with a
  per-sample torchvision transform applied twice per image.

Run: ``python benchmarks/bench_train.py`` (add ``--help`` for options). Prints images/s of each
and the ratio, all measured in this one run.
"""

from __future__ import annotations

import argparse
import time

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from explorer.augment import RECIPES, TwoViewAugment, torchvision_transform
from explorer.data import load_dataset
from explorer.losses import spectral_contrastive_loss
from explorer.models import ContrastiveModel


class TwoCropsDataset(Dataset):
    """Per-sample two-view dataset over PIL images, as in the paper's code."""

    def __init__(self, images: torch.Tensor, transform) -> None:  # type: ignore[no-untyped-def]
        self.pil = [Image.fromarray(img.permute(1, 2, 0).numpy()) for img in images]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.pil)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.pil[index]
        return self.transform(image), self.transform(image)


def make_model(device: torch.device) -> tuple[ContrastiveModel, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = ContrastiveModel("cnn-small", 512, 128).to(device)
    return model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)


def train_step(
    model: ContrastiveModel,
    optimizer: torch.optim.Optimizer,
    view1: torch.Tensor,
    view2: torch.Tensor,
) -> None:
    _, z1, _ = model(view1)
    _, z2, _ = model(view2)
    loss, _, _ = spectral_contrastive_loss(z1, z2, mu=1.0)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_ours(
    images: torch.Tensor,
    mean,
    std,
    batch: int,
    steps: int,  # type: ignore[no-untyped-def]
    device: torch.device,
) -> float:
    model, optimizer = make_model(device)
    augment = TwoViewAugment(RECIPES["shapes"], images.shape[-1], mean, std).to(device)
    on_device = images.to(device)
    timed = 0.0
    for step in range(steps + 2):  # two warm-up steps
        if step == 2:
            sync(device)
            start = time.perf_counter()
        index = torch.randint(len(on_device), (batch,), device=device)
        view1, view2 = augment(on_device[index])
        train_step(model, optimizer, view1, view2)
    sync(device)
    timed = time.perf_counter() - start
    return steps * batch / timed


def bench_dataloader(
    images: torch.Tensor,
    mean,
    std,
    batch: int,
    steps: int,  # type: ignore[no-untyped-def]
    device: torch.device,
    workers: int,
) -> float:
    model, optimizer = make_model(device)
    transform = torchvision_transform(RECIPES["shapes"], images.shape[-1], mean, std)
    loader = DataLoader(
        TwoCropsDataset(images, transform),
        batch_size=batch,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        persistent_workers=workers > 0,
    )
    done, start = 0, 0.0
    while done < steps + 2:
        for view1, view2 in loader:
            if done == 2:
                sync(device)
                start = time.perf_counter()
            train_step(model, optimizer, view1.to(device), view2.to(device))
            done += 1
            if done == steps + 2:
                break
    sync(device)
    return steps * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=15, help="timed steps per pipeline")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    data = load_dataset("shapes", "train")
    print(
        f"cnn-small, spectral loss, shapes {tuple(data.images.shape[1:])}, "
        f"batch {args.batch_size}, {args.steps} timed steps, device {device}, "
        f"{torch.get_num_threads()} threads"
    )
    ours = bench_ours(data.images, data.mean, data.std, args.batch_size, args.steps, device)
    print(f"{'batched on-device augmentation (ours)':<44}{ours:>9.0f} images/s")
    best = 0.0
    for workers in (0, 2):
        rate = bench_dataloader(
            data.images, data.mean, data.std, args.batch_size, args.steps, device, workers
        )
        best = max(best, rate)
        print(f"{f'per-sample DataLoader, num_workers={workers}':<44}{rate:>9.0f} images/s")
    print(f"ratio ours / best DataLoader: {ours / best:.2f}x")


if __name__ == "__main__":
    main()
