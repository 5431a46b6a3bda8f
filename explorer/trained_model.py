"""A trained model back from a run's checkpoint: the network a config builds, with its weights."""

from __future__ import annotations

from pathlib import Path

from explorer.builders import build_model
from explorer.config import Config
from explorer.errors import UserError, first_line
from explorer.models import ContrastiveModel
from explorer.rundir.run import Run


def load_trained_model(
    run: Run, config: Config, in_channels: int, checkpoint: Path | None = None
) -> tuple[ContrastiveModel, int]:
    """The model at ``checkpoint`` (default: the latest); returns it with its epoch. An imported
    run's projector is the one its ``config.json`` records (``imported.projector_spec``).

    Building the model draws a random initialisation from torch's global RNG before the weights
    replace it: callers that must keep their random stream wrap this in
    :func:`explorer.rng.fork_rng`.
    """
    checkpoints = run.weight_checkpoints()
    if checkpoint is None:
        if not checkpoints:
            raise UserError(f"run {run.path} has no model checkpoint yet; train it first")
        epoch, checkpoint = checkpoints[-1]
    else:
        epoch = next((e for e, p in checkpoints if p == checkpoint), -1)
    imported = run.imported() or {}
    model = build_model(config, in_channels, imported.get("projector_spec") or "")
    try:
        model.load_state_dict(run.load_weights(checkpoint))
    except RuntimeError as err:
        raise UserError(
            f"checkpoint {checkpoint} does not fit backbone {config.backbone}: {first_line(err)}"
        ) from None
    return model, epoch
