"""Time forward+backward of ``spectral_contrastive_loss`` against the literal O(B^2 d) formula.

The literal version builds the full BxB matrix of (z1_i . z2_j)^2 and masks its diagonal, as the
paper's code does; ``explorer.losses`` uses two dxd Gram matrices instead when 2d < B.

    .venv/bin/python benchmarks/bench_loss.py
    .venv/bin/python benchmarks/bench_loss.py --sizes 512x128 4096x128 --repeats 20
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable

import torch
from torch import Tensor

from explorer.losses import spectral_contrastive_loss

DEFAULT_SIZES = ("512x64", "512x128", "512x512", "512x1000", "512x2048", "256x128", "1024x128")


def literal_spectral_loss(z1: Tensor, z2: Tensor, mu: float = 1.0) -> Tensor:
    """The loss written out literally: clip to the ball, then every cross-view pair i != j."""
    radius = math.sqrt(mu)
    z1 = z1 * (radius / z1.norm(dim=1, keepdim=True).clamp_min(radius))
    z2 = z2 * (radius / z2.norm(dim=1, keepdim=True).clamp_min(radius))
    batch_size = z1.shape[0]
    positive = -2.0 * (z1 * z2).sum(dim=1).mean()
    squares = (z1 @ z2.T) ** 2  # BxB
    off_diagonal = ~torch.eye(batch_size, dtype=torch.bool, device=z1.device)
    negative = squares[off_diagonal].sum() / (batch_size * (batch_size - 1))
    return (positive + negative) / mu


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _forward_backward_seconds(
    loss_fn: Callable[[Tensor, Tensor], Tensor], z1: Tensor, z2: Tensor
) -> tuple[float, float]:
    """Seconds of one forward+backward, and the loss value."""
    z1.grad = z2.grad = None
    _synchronize(z1.device)
    start = time.perf_counter()
    loss = loss_fn(z1, z2)
    loss.backward()
    _synchronize(z1.device)
    return time.perf_counter() - start, loss.item()


def time_pair(
    loss_fns: tuple[Callable[[Tensor, Tensor], Tensor], ...],
    z1: Tensor,
    z2: Tensor,
    warmup: int,
    repeats: int,
) -> list[tuple[float, float]]:
    """Median seconds of forward+backward for each loss, and its value.

    The losses take turns within every repeat, so a busy machine slows them alike.
    """
    z1 = z1.detach().requires_grad_(True)
    z2 = z2.detach().requires_grad_(True)
    times: list[list[float]] = [[] for _ in loss_fns]
    values = [float("nan")] * len(loss_fns)
    for step in range(warmup + repeats):
        for index, loss_fn in enumerate(loss_fns):
            seconds, values[index] = _forward_backward_seconds(loss_fn, z1, z2)
            if step >= warmup:
                times[index].append(seconds)
    return [(statistics.median(t), v) for t, v in zip(times, values, strict=True)]


def parse_size(text: str) -> tuple[int, int]:
    batch, _, dim = text.lower().partition("x")
    try:
        return int(batch), int(dim)
    except ValueError:
        message = f"size must look like BxD (e.g. 512x128); got {text!r}"
        raise argparse.ArgumentTypeError(message) from None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        nargs="+",
        type=parse_size,
        default=[parse_size(s) for s in DEFAULT_SIZES],
        help="batch x dim pairs, e.g. 512x128 (default: %(default)s)",
    )
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--mu", type=float, default=1.0)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = getattr(torch, args.dtype)
    torch.manual_seed(args.seed)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"device {where}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{args.dtype}, mu={args.mu}, median of {args.repeats} forward+backward "
        f"after {args.warmup} warm-up"
    )
    header = ("B", "d", "path", "literal ms", "ours ms", "ratio", "rel diff")
    print("{:>6} {:>6} {:>6} {:>11} {:>9} {:>7} {:>9}".format(*header))
    for batch_size, dim in args.sizes:
        z1 = torch.randn(batch_size, dim, device=device, dtype=dtype) / math.sqrt(dim)
        z2 = z1 + 0.3 * torch.randn_like(z1) / math.sqrt(dim)  # correlated, like two views
        (literal_s, literal_value), (ours_s, ours_value) = time_pair(
            (
                lambda a, b: literal_spectral_loss(a, b, args.mu),
                lambda a, b: spectral_contrastive_loss(a, b, args.mu)[0],
            ),
            z1,
            z2,
            args.warmup,
            args.repeats,
        )
        path = "dxd" if 2 * dim < batch_size else "BxB"
        rel_diff = abs(ours_value - literal_value) / max(abs(literal_value), 1e-30)
        print(
            f"{batch_size:>6} {dim:>6} {path:>6} {literal_s * 1e3:>11.3f} {ours_s * 1e3:>9.3f} "
            f"{literal_s / ours_s:>7.2f} {rel_diff:>9.1e}"
        )
    print("ratio = literal time / our time; rel diff = |ours - literal| / |literal| of the loss")


if __name__ == "__main__":
    main()
