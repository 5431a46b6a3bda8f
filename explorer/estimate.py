"""How long a config's training takes on its device, measured before launching it.

The estimate times a few real training steps (:meth:`explorer.train.Trainer.train_step`: the
views, the forward and backward passes, the optimiser) of the config's model, batch and data on
its device, after warm-up steps that absorb one-off costs (allocation, cuDNN's search,
``torch.compile``). Training takes ``epochs × steps_per_epoch`` such steps; checkpoints, the kNN
monitor, the probe and the analysis come on top and are not counted.

The time per step does not depend on the fields in :data:`SCHEDULE_FIELDS`, so a caller may keep
one measurement per :func:`timing_key` and rescale it as ``epochs`` changes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from explorer.config import Config

#: Fields that change how many steps run or the numbers in them, never a step's cost.
SCHEDULE_FIELDS = frozenset({
    "epochs", "lr", "momentum", "weight_decay", "warmup_epochs", "seed", "mu", "temperature",
    "log_every", "checkpoint_every", "knn_every", "knn_k", "knn_temperature", "probe",
    "probe_epochs", "analyze", "analysis_samples", "analysis_projection", "download",
})  # fmt: skip


@dataclass(frozen=True)
class StepTiming:
    """A measurement of one config's training steps on one device."""

    device: str  # the device the steps ran on, e.g. "cpu" or "cuda"
    steps_per_epoch: int  # len(training set) // batch_size (the last partial batch is dropped)
    seconds_per_step: float  # mean over the timed steps
    timed_steps: int  # steps timed (after the warm-up steps)

    def total_steps(self, epochs: int) -> int:
        return epochs * self.steps_per_epoch

    def training_seconds(self, epochs: int) -> float:
        return self.total_steps(epochs) * self.seconds_per_step

    def describe(self, epochs: int) -> str:
        """One line, e.g. ``about 3.2 min on cpu (1,350 steps at 7.0 steps/s, measured)``."""
        seconds = self.training_seconds(epochs)
        amount = f"{seconds:.0f} s" if seconds < 90 else (
            f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h")
        rate = 1 / self.seconds_per_step
        rate_text = f"{rate:.1f} steps/s" if rate >= 1 else f"{self.seconds_per_step:.2f} s/step"
        return (f"about {amount} on {self.device} ({self.total_steps(epochs):,} steps at "
                f"{rate_text}, measured)")


def timing_key(config: Config) -> tuple[tuple[str, Any], ...]:
    """The fields a step's cost depends on: equal keys, equal :class:`StepTiming`."""
    return tuple((k, v) for k, v in sorted(config.to_dict().items()) if k not in SCHEDULE_FIELDS)


def measure_steps(
    config: Config, *, warmup_steps: int = 1, min_steps: int = 3, budget_s: float = 3.0
) -> StepTiming:
    """Time real training steps of ``config``: ``warmup_steps`` untimed, then at least
    ``min_steps`` timed and more while the timed ones took under ``budget_s`` seconds (at most
    50). Loads the config's training data (a :class:`~explorer.errors.UserError` says what is
    missing) and leaves torch's random streams as they were."""
    import torch

    from explorer.reporting import LossWindow
    from explorer.rng import fork_rng
    from explorer.train import Trainer

    with fork_rng(config.device if config.device in ("cpu", "cuda") else "cpu"):
        trainer = Trainer(config, progress=False)
        device = trainer.device
        per_step = config.batch_size
        generator = torch.Generator().manual_seed(0)
        order = torch.randperm(len(trainer.train_set), generator=generator).to(device)

        def step(index: int) -> None:
            start = (index % trainer.steps_per_epoch) * per_step
            view1, view2 = trainer.views(order[start : start + per_step])
            trainer.train_step(view1, view2, LossWindow(sums={}))
            trainer.step += 1

        def sync() -> None:
            if device.type == "cuda":
                torch.cuda.synchronize(device)

        for index in range(warmup_steps):
            step(index)
        sync()
        started = time.perf_counter()
        timed = 0
        while timed < min_steps or (time.perf_counter() - started < budget_s and timed < 50):
            step(warmup_steps + timed)
            timed += 1
            sync()  # each step waits for the device, so the clock sees its real cost
        seconds = (time.perf_counter() - started) / timed
    return StepTiming(device.type, trainer.steps_per_epoch, seconds, timed)


#: The fields that make one run's analysis and probe cost what another's does.
FINISHING_FIELDS = ("dataset", "backbone", "analysis_samples", "analysis_projection",
                    "projector_out_dim", "train_limit", "test_limit", "probe")


def analysed_checkpoints(config: Config) -> int:
    """How many checkpoints a run of ``config`` analyses: every one it keeps (each
    ``checkpoint_every`` epochs and the last), none with ``analyze=off``."""
    if config.analyze == "off":
        return 0
    return config.epochs // config.checkpoint_every + (config.epochs % config.checkpoint_every > 0)


@dataclass(frozen=True)
class FinishingTime:
    """What comes after training (the probe, then the analysis of each checkpoint), read from
    the records of the newest comparable run already analysed (:data:`FINISHING_FIELDS` equal).

    The first checkpoint of a process pays one-off costs (imports, JIT compilation, the exact
    graph), so it is counted apart from the others.
    """

    source: str  # the run whose records are read
    first_s: float  # its first analysed checkpoint
    next_s: float | None  # the median of its other checkpoints (None: it analysed one)
    probe_s: float | None  # its probe, when recorded
    checkpoints: int  # how many the new config analyses

    def analysis_seconds(self) -> float:
        if self.checkpoints == 0:
            return 0.0
        return self.first_s + (self.checkpoints - 1) * (self.next_s or self.first_s)

    def describe(self) -> str:
        """One line, e.g. ``the probe about 20 s, the analysis of 6 checkpoints about 1.5 min
        (as measured on run shapes-spectral)``."""
        parts = []
        if self.probe_s is not None:
            parts.append(f"the probe {_amount(self.probe_s)}")
        parts.append(f"the analysis of {self.checkpoints} checkpoint"
                     f"{'s' if self.checkpoints != 1 else ''} {_amount(self.analysis_seconds())}"
                     if self.checkpoints else "no analysis (analyze=off)")
        return f"{', '.join(parts)} (as measured on run {self.source})"


def _amount(seconds: float) -> str:
    return f"about {seconds:.0f} s" if seconds < 90 else f"about {seconds / 60:.1f} min"


def finishing_time(runs: list[Any], config: Config) -> FinishingTime | None:
    """The :class:`FinishingTime` of ``config`` from the newest of ``runs``
    (:class:`explorer.rundir.run.Run`) analysed with the same :data:`FINISHING_FIELDS`, or None
    when none was."""
    import statistics

    from explorer.errors import UserError
    from explorer.rundir.artifacts import analysed_epochs, load_record

    wanted = {name: getattr(config, name) for name in FINISHING_FIELDS}
    candidates = []
    for run in runs:
        try:
            theirs = run.config()
        except (UserError, OSError):
            continue
        if all(getattr(theirs, name) == value for name, value in wanted.items()):
            epochs = analysed_epochs(run)
            if epochs:
                candidates.append((run.path.stat().st_mtime, run, epochs))
    for _, run, epochs in sorted(candidates, key=lambda c: c[0], reverse=True):
        seconds = []
        for epoch in epochs:
            try:
                value = load_record(run, epoch).get("seconds")
            except UserError:
                continue
            if isinstance(value, (int, float)):
                seconds.append(float(value))
        if seconds:
            probe = _probe_seconds(run.path / "probe.json")
            later = statistics.median(seconds[1:]) if len(seconds) > 1 else None
            return FinishingTime(run.name, seconds[0], later, probe, analysed_checkpoints(config))
    return None


def _probe_seconds(path: Any) -> float | None:
    """The probe record's ``seconds``, or None (missing, unreadable, or written before it was
    kept)."""
    import json

    try:
        value = json.loads(path.read_text()).get("seconds")
    except (OSError, ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, (int, float)) else None
