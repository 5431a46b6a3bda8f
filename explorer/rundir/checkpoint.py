"""What a checkpoint holds, when its weights may be written, and what a resume may change.

The resume state is a plain dict (``checkpoints/resume.pt``, read with ``weights_only=True``):
the model's and optimiser's ``state_dict``, the RNG states, and the loop's position, which is
:class:`TrainState`. Weights are written only when :func:`unusable_weights` finds nothing wrong,
so a run that diverges keeps checkpoints whose forward pass is finite.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import torch
from torch import Tensor, nn

from explorer.config import Config, validate
from explorer.errors import UserError

# Fields a resume may change: they change the optimisation from here on, not what the saved
# tensors mean (a new batch size, model or dataset would make the checkpoint another run's).
RESUMABLE = ("lr", "weight_decay", "epochs", "warmup_epochs")


class Diverged(RuntimeError):
    """The loss or the weights stopped being finite; the run fails and keeps its earlier
    checkpoints, which were vetted before they were written."""


@dataclass
class TrainState:
    """Where the loop is: what, beside the tensors, an exact resume restores."""

    epoch: int = 0  # completed epochs
    batch_in_epoch: int = 0  # batches of epoch ``epoch`` already trained
    step: int = 0  # optimiser steps so far
    epoch_loss_sum: float = 0.0  # for the current epoch's mean loss
    epoch_steps: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainState:
        """The counters of a resume dict; ``KeyError``/``ValueError``/``TypeError`` if damaged."""
        return cls(**{f.name: type(getattr(cls(), f.name))(data[f.name]) for f in fields(cls)})


def resume_config(saved: Config, changes: dict[str, Any], epochs_done: int) -> Config:
    """``saved`` with the optimisation fields in ``changes`` replaced, checked.

    Raises a one-line :class:`UserError` for any other field, or for ``epochs`` below the
    epochs already trained.
    """
    other = sorted(set(changes) - set(RESUMABLE))
    if other:
        raise UserError(
            f"--resume can change only {', '.join(RESUMABLE)}; '{other[0]}' would change what "
            "the checkpoint means, so start a new run for it"
        )
    config = replace(saved, **changes)
    validate(config)
    if config.epochs < epochs_done:
        raise UserError(
            f"epochs={config.epochs} is below the {epochs_done} epochs this run has trained"
        )
    return config


def resume_plan(
    name: str, state: str | None, saved: Config, changes: dict[str, Any], epochs_done: int
) -> Config:
    """The one resume policy, for ``explorer train --resume`` and the dashboard alike: the
    config a resume would train, or a one-line :class:`UserError`.

    A running run does not resume (stop it first); a stopped, died or failed run resumes where
    it stopped; a finished run continues only with more ``epochs`` than it has trained. Only the
    fields in :data:`RESUMABLE` may change (:func:`resume_config`).

    Args:
        name: the run, as the message should name it.
        state: its status's ``state``.
        saved: its config; ``changes``: the fields to change; ``epochs_done``: its resume
            state's completed epochs.
    """
    if state == "running":
        raise UserError(f"run {name} is still running; stop it first")
    config = resume_config(saved, changes, epochs_done)
    if state == "finished" and config.epochs <= epochs_done:
        raise UserError(
            f"run {name} already finished all {epochs_done} epochs; resume it with a larger "
            "epochs= to train on"
        )
    return config


def config_changes(old: Config, new: Config) -> dict[str, list[Any]]:
    """``{field: [old, new]}`` for every field that differs."""
    before, after = old.to_dict(), new.to_dict()
    return {k: [before[k], after[k]] for k in after if before.get(k) != after[k]}


def _non_finite(tensors: dict[str, Tensor]) -> str | None:
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            return name
    return None


def unusable_weights(
    model: nn.Module, optimizer: torch.optim.Optimizer, batch: Tensor
) -> str | None:
    """Why ``model`` must not be saved, or ``None`` when it may.

    Checks every parameter and buffer and the optimiser's state for NaN or infinity, then runs
    one forward pass on ``batch`` (normalised images, (B, C, H, W)) in eval mode, as a probe
    would: weights can be finite yet so large (1e28 after a step at a huge learning rate) that
    the next forward pass is NaN. The model's mode and state are left as they were.
    """
    bad = _non_finite(model.state_dict())
    if bad:
        return f"weight {bad} is not finite"
    for index, state in enumerate(optimizer.state.values()):
        bad = _non_finite({k: v for k, v in state.items() if isinstance(v, Tensor)})
        if bad:
            return f"optimiser state {bad} of parameter {index} is not finite"
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            outputs = model(batch)
    finally:
        model.train(was_training)
    for output in outputs if isinstance(outputs, tuple) else (outputs,):
        if output is not None and not bool(torch.isfinite(output).all()):
            return "the forward pass gives NaN or infinity"
    return None
