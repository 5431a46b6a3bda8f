"""Randomness that leaves the caller's stream alone: :func:`fork_rng`.

The analysis, the gallery and model building draw from torch's global generators; when they run
inside a trainer (or a page), forking keeps the trainer's stream, and hence exact resume, intact.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def fork_rng(device: torch.device | str = "cpu") -> Iterator[None]:
    """Restore torch's CPU generator (and ``device``'s, when it is a GPU) on exit.

    Args:
        device: where the code inside draws random numbers; only a CUDA device's generator is
            forked beside the CPU's (forking every visible GPU would touch devices not in use).
    """
    device = torch.device(device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        yield
