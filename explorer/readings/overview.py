"""One summary row per run: what ``explorer runs`` prints and the dashboard's Runs table shows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from explorer.errors import UserError
from explorer.rundir.artifacts import analysed_epochs, read_record
from explorer.rundir.run import Run, list_runs


@dataclass
class RunSummary:
    """A run at a glance; fields a damaged run lacks are None and ``state`` says ``corrupt``."""

    name: str
    state: str
    dataset: str | None = None
    backbone: str | None = None
    loss: str | None = None
    mu: float | None = None
    augment: str | None = None
    lr: float | None = None
    batch_size: int | None = None
    epoch: int = 0
    total_epochs: int | None = None
    progress: float | None = None
    linear: float | None = None  # probe accuracy of the final checkpoint, in [0, 1]
    knn: float | None = None
    error: str | None = None
    activity: str | None = None  # what its trainer process does now (Run.activity), e.g. probing
    share: float | None = None  # of the provable optimum, L(f)/L*, at the latest exact analysis
    share_epoch: int | None = None  # that analysis's checkpoint

    @property
    def epochs_text(self) -> str:
        return f"{self.epoch}/{self.total_epochs if self.total_epochs is not None else '?'}"


def summarize(run: Run) -> RunSummary:
    """Read a run's config, status and probe without ever raising for a damaged run."""
    status = run.status()
    summary = RunSummary(name=run.name, state=str(status.get("state", "?")),
                         epoch=int(status.get("epoch", 0) or 0), progress=status.get("progress"),
                         error=status.get("last_error"), activity=run.activity(status))
    try:
        config = run.config()
    except (UserError, OSError) as err:
        summary.state, summary.error = "corrupt", str(err)
        return summary
    summary.dataset, summary.backbone, summary.loss = config.dataset, config.backbone, config.loss
    summary.mu = config.mu if config.loss == "spectral" else None
    summary.augment, summary.lr, summary.batch_size = config.augment, config.lr, config.batch_size
    summary.total_epochs = config.epochs
    summary.share, summary.share_epoch = optimum_share(run)
    try:
        probe = run.probe()
    except (UserError, OSError):
        probe = None
    trained: dict[str, Any] = (probe or {}).get("methods", {}).get("trained", {})
    if trained:
        summary.linear = trained.get("linear", {}).get("accuracy")
        summary.knn = trained.get("knn", {}).get("accuracy")
    return summary


def optimum_share(run: Run) -> tuple[float | None, int | None]:
    """``(L(f)/L*, epoch)`` of the latest checkpoint scored on an exact graph (``shapes`` runs
    analysed by ``explorer analyze``), from its JSON record alone; ``(None, None)`` without one.
    1 at the optimum, 0 for f = 0, negative for features worse than f = 0."""
    for epoch in reversed(analysed_epochs(run)):
        share = _share(run, epoch)
        if share is not None:
            return share, epoch
    return None, None


def _share(run: Run, epoch: int) -> float | None:
    """L(f)/L* of one checkpoint from its JSON record; None without one, or for a damaged or
    unknown artifact (an older checkpoint may still say)."""
    try:
        exact = read_record(run, epoch).exact
    except UserError:
        return None
    return None if exact is None else exact.share


def share_history(run: Run) -> list[tuple[int, float]]:
    """``(epoch, L(f)/L*)`` of every checkpoint scored on an exact graph, oldest first, from
    the JSON records alone (damaged ones are left out); empty for a run without any."""
    return [(epoch, share) for epoch in analysed_epochs(run)
            if (share := _share(run, epoch)) is not None]


def summaries(runs_dir: str | Path) -> list[RunSummary]:
    return [summarize(run) for run in list_runs(runs_dir)]


#: The shipped demo runs the Runs page's overlay opens on: the spectral loss beside SimCLR and
#: SimSiam.
DEMO_TRIO = ("shapes-spectral", "shapes-simclr", "shapes-simsiam")


def overlay_default(names: list[str], runs_dir: str | Path) -> list[str]:
    """The runs an overlay opens on: the demo trio (those of ``names`` present) and the newest
    other run (by its ``config.json``'s time); without the trio, the three newest."""
    trio = [n for n in DEMO_TRIO if n in names]

    def created(name: str) -> float:
        try:
            return (Path(runs_dir) / name / "config.json").stat().st_mtime
        except OSError:
            return 0.0

    others = sorted((n for n in names if n not in trio), key=lambda n: (created(n), n))
    return trio + others[-1:] if trio else others[-3:]
