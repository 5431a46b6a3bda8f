"""Data-parallel training across processes started by ``torchrun``.

``torchrun`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` in each process; :func:`init`
joins them into one process group (NCCL on CUDA, Gloo on the CPU). Without those variables every
function here is a no-op for one process, so the trainer has one code path.

How the maths stays that of one process on the global batch: each rank embeds its slice of the
batch, then :func:`gather_with_grad` concatenates every rank's projections, so the loss (and its
negatives) spans the global batch and every rank computes the same global loss ``L``. The
backward of ``torch.distributed.nn.functional.all_gather`` *sums* the gradients that the ``W``
ranks send to each slice, so rank ``r`` receives ``W * dL/dz_r`` for its own rows; averaging the
parameter gradients over ranks (:func:`average_gradients`) then gives exactly ``dL/dtheta``.
No ``DistributedDataParallel`` wrapper is used: its own averaging would be applied on top.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn
from torch import Tensor


def launched_by_torchrun() -> bool:
    """True when the environment names this process's place in a group (``torchrun`` does)."""
    return all(key in os.environ for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


def init(device: torch.device) -> torch.device:
    """Join the process group when started by ``torchrun``; return the device this rank uses.

    On CUDA each rank takes ``cuda:LOCAL_RANK``. Idempotent; a single process is left alone.
    """
    if not launched_by_torchrun():
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return device


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main() -> bool:
    """Rank 0 is the only process that writes the run directory."""
    return rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


@contextlib.contextmanager
def local_main_first() -> Iterator[None]:
    """Local rank 0 runs the block first (a download), then the other ranks on its machine."""
    first = int(os.environ.get("LOCAL_RANK", "0")) == 0
    if not first:
        barrier()
    yield
    if first:
        barrier()


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (picklable objects only)."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not is_distributed():
        return [obj]
    boxes: list[Any] = [None] * world_size()
    dist.all_gather_object(boxes, obj)
    return boxes


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank if ``flag`` is true on any: a collective decision (e.g. to stop)."""
    if not is_distributed():
        return flag
    value = torch.tensor([float(flag)], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def gather_with_grad(x: Tensor) -> Tensor:
    """Concatenate every rank's ``x`` (shape (b, d)) into (W*b, d), rows in rank order.

    Gradients flow back to each rank's own rows, summed over the ranks' losses (see module doc).
    """
    if not is_distributed():
        return x
    with warnings.catch_warnings():  # deprecated for a private API, but public and autograd-aware
        warnings.simplefilter("ignore", FutureWarning)
        return torch.cat(dist_fn.all_gather(x), dim=0)


def broadcast_parameters(module: torch.nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank, so all start identical."""
    if not is_distributed():
        return
    for tensor in [*module.parameters(), *module.buffers()]:
        dist.broadcast(tensor.data, src=0)


def average_gradients(parameters: Iterable[torch.nn.Parameter]) -> None:
    """Average the parameters' gradients over ranks, in one flat all-reduce."""
    if not is_distributed():
        return
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world_size()
    offset = 0
    for grad in grads:
        grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
        offset += grad.numel()


_RUN_WRITES = frozenset(
    {
        "update_status",
        "set_phase",
        "append_metrics",
        "rollback_metrics",
        "save_weights",
        "save_resume_state",
        "save_probe",
        "clear_stop",
        "request_stop",
        "record_config_change",
        "lock",
        "unlock",
    }
)


class FollowerRun:
    """A run as ranks other than 0 see it: reads pass through, writes do nothing."""

    def __init__(self, run: Any) -> None:
        self._run = run

    def __getattr__(self, name: str) -> Any:
        if name in _RUN_WRITES:
            return lambda *args, **kwargs: None
        return getattr(self._run, name)
