"""The training loop: schedule, AMP, checkpoints, stop and exact resume.

One plain PyTorch loop (HaoChen et al. 2021, Appendix C recipe): SGD with momentum, the learning
rate scaled by batch/256, linear warm-up then cosine decay to zero, evaluated per step. The dataset
lives on the training device as uint8 and is augmented there in batches, so no DataLoader is needed.

Read :meth:`Trainer._loop` first: it is the whole loop. Around it, each concern has one home:
:class:`StopRequests` here (signals, the ``STOP`` file, the ranks' joint decision);
:mod:`explorer.reporting` (metrics lines, status record and log; the kNN monitor);
:mod:`explorer.rundir.checkpoint` (the loop's position as a typed ``TrainState``, the guard that
vets
weights before they are written, what a resume may change); :mod:`explorer.rundir.lock` (one writer
per run).

Exact resume: the batch order of epoch ``e`` is a permutation drawn from its own generator seeded
by ``(seed, e)``, and the global RNG (which drives augmentation) is saved with the model and
optimiser. Restoring those and skipping the batches already seen replays the same computation.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch
from tqdm import tqdm

from explorer import distributed
from explorer.builders import build_model, build_views, load_splits, resolve_device
from explorer.config import Config
from explorer.data import ImageDataset
from explorer.errors import UserError, first_line
from explorer.losses import compute_loss
from explorer.reporting import KnnMonitor, LossWindow, Reporter, Schedule
from explorer.rundir.checkpoint import (
    Diverged,
    TrainState,
    config_changes,
    resume_config,
    unusable_weights,
)
from explorer.rundir.run import Run

if TYPE_CHECKING:
    from explorer.rundir.background import BackgroundAnalysis

__all__ = ["Diverged", "LossWindow", "Trainer", "analysis_mode", "learning_rate", "load_splits"]

# Images of the forward pass that vets the weights before each checkpoint.
CHECK_IMAGES = 16
# Under torchrun, steps between the ranks' joint stop decisions (each one a host-device sync);
# a stop request waits at most this many steps. One process checks every step at no cost.
STOP_CHECK_EVERY = 10


def learning_rate(step: int, total_steps: int, warmup_steps: int, peak_lr: float) -> float:
    """Linear warm-up over ``warmup_steps``, then cosine decay to 0 at ``total_steps``."""
    if step < warmup_steps:
        return peak_lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * peak_lr * (1.0 + math.cos(math.pi * min(1.0, progress)))


def analysis_mode(config: Config, device: torch.device) -> str:
    """``off``, ``end`` or ``background``: ``auto`` analyses in the background on a GPU (the CPU
    would be shared with training) and at the end of the run elsewhere."""
    if config.analyze == "auto":
        return "background" if device.type == "cuda" else "end"
    return config.analyze


class StopRequests:
    """The stop protocol: SIGINT, SIGTERM or the run's ``STOP`` file ask the loop to stop.

    One process reads its own flag every step: no device work. Under ``torchrun`` the ranks must
    agree, or those that go on would wait forever in the next collective, so they decide together
    with an all-reduce, which on CUDA waits for the queued steps (a host-device sync). They do it
    only every :data:`STOP_CHECK_EVERY` steps and before the first step of each epoch; ``step``
    and ``batch_in_epoch`` are the same on every rank, so all ranks join the same all-reduces and
    stop at the same step.
    """

    def __init__(self, run: Run, world_size: int, device: torch.device) -> None:
        self.run, self.world_size, self.device = run, world_size, device
        self.reason: str | None = None

    @contextlib.contextmanager
    def signals_caught(self) -> Iterator[None]:
        """SIGINT and SIGTERM set the flag instead of killing the process, inside the block."""

        def on_signal(signum: int, _frame: object) -> None:
            self.reason = signal.Signals(signum).name

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def should_stop(self, step: int, batch_in_epoch: int) -> bool:
        """Whether to stop before the next step; under ``torchrun`` every rank answers alike."""
        if self.world_size > 1 and batch_in_epoch and step % STOP_CHECK_EVERY:
            return False
        if self.reason is None and self.run.stop_requested():
            self.reason = "stop request"
        if self.world_size > 1 and distributed.any_rank(self.reason is not None, self.device):
            self.reason = self.reason or "another process's stop"
        return self.reason is not None


class Trainer:
    """Trains one run. ``fit(run)`` returns the final state: finished, stopped or failed."""

    def __init__(
        self,
        config: Config,
        *,
        progress: bool = True,
        splits: tuple[ImageDataset, ImageDataset] | None = None,
    ) -> None:
        """Load the data and build the model: mistakes surface before any run is written.

        ``splits`` (train, test) replaces the datasets the config names (benchmarks pass
        synthetic data); by default they are loaded with :func:`load_splits`.
        """
        self.config, self.progress = config, progress
        self.device = distributed.init(resolve_device(config.device))
        self.rank, self.world_size = distributed.rank(), distributed.world_size()
        self.state = TrainState()
        torch.manual_seed(config.seed)
        if splits is None:
            with distributed.local_main_first():  # one download per machine
                splits = load_splits(config)
        self.train_set, self.test_set = splits
        self._check_batch_size()
        # indices -> two views; the data moves to the device once (explorer.views)
        self.views = build_views(config, self.train_set, self.device)
        self.model = build_model(config, self.train_set.images.shape[1]).to(self.device)
        if self.device.type == "cuda":  # channels-last: cuDNN's tensor-core convolutions
            # (on 2 CPU cores it made cnn-narrow's step no faster, and oneDNN's batch-dependent
            # kernels moved two ranks' train-mode steps apart by 1e-4: tests/test_distributed.py)
            self.model = self.model.to(memory_format=torch.channels_last)
            torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest convolutions
        if self.world_size > 1:
            self._setup_distributed()
        # The step runs `step_model`; `model` stays the plain module, so checkpoints, the
        # optimiser and the kNN monitor keep its parameter names (no `_orig_mod.` prefix).
        self.step_model = torch.compile(self.model) if config.compile else self.model
        # The paper's code applies weight decay to every parameter; so do we.
        self.optimizer = torch.optim.SGD(
            self.model.parameters(),
            lr=config.effective_lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
        )
        self.steps_per_epoch = len(self.train_set) // config.batch_size  # drop_last: BN needs B>1
        self.total_steps = config.epochs * self.steps_per_epoch
        self.warmup_steps = config.warmup_epochs * self.steps_per_epoch
        self.monitor = KnnMonitor(config, self.train_set, self.test_set)
        check_images = self.train_set.images[self.monitor.train_index[:CHECK_IMAGES]]
        self.check_batch = self._normalised(check_images)  # vets weights before each save

    def _check_batch_size(self) -> None:
        batch_size, world_size = self.config.batch_size, self.world_size
        if len(self.train_set) < batch_size:
            raise UserError(
                f"batch_size {batch_size} exceeds the {len(self.train_set)} training "
                "images; lower batch_size or raise train_limit"
            )
        if batch_size % world_size or batch_size // world_size < 2:
            raise UserError(
                f"batch_size {batch_size} (the global batch) must be a multiple of the "
                f"{world_size} processes with at least 2 images per process"
            )

    def _setup_distributed(self) -> None:
        """Same initial weights on every rank; a different, reproducible augmentation stream."""
        if self.config.sync_bn:
            if self.device.type != "cuda":
                raise UserError(
                    f"sync_bn=true needs CUDA: torch {torch.__version__}'s SyncBatchNorm has no "
                    "CPU kernel; use sync_bn=false (per-process BatchNorm statistics)"
                )
            self.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        distributed.broadcast_parameters(self.model)
        torch.manual_seed(self.config.seed + self.rank)

    def _normalised(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, C, H, W) -> the float input the model sees, on the device."""
        mean = torch.tensor(self.train_set.mean).view(1, -1, 1, 1)
        std = torch.tensor(self.train_set.std).view(1, -1, 1, 1)
        return ((images.float() / 255 - mean) / std).to(self.device)

    @property
    def step(self) -> int:  # the benchmarks drive train_step and advance this
        return self.state.step

    @step.setter
    def step(self, value: int) -> None:
        self.state.step = value

    # -- the run -------------------------------------------------------------------------------
    def fit(self, run: Run, resume: bool = False) -> str:
        """Train into ``run`` to the end, or until stopped. Returns the final state.

        Holds the run's writer lock meanwhile (:meth:`Run.lock`; the CLI takes it earlier).
        Under ``torchrun`` every rank calls this with the same run; only rank 0 writes it.
        """
        took_lock = self.rank == 0 and run.locked_by() != os.getpid()
        if self.rank == 0:
            run.lock()
        try:
            return self._fit(run, resume)
        finally:
            if took_lock:
                run.unlock()

    def _fit(self, run: Run, resume: bool) -> str:
        self.run = run if self.rank == 0 else distributed.FollowerRun(run)  # type: ignore[assignment]
        schedule = Schedule(self.config.batch_size, self.steps_per_epoch, self.total_steps)
        self.report = Reporter(self.run, schedule, rank=self.rank, progress=self.progress)
        self.stops = StopRequests(self.run, self.world_size, self.device)
        if resume:
            self._resume()
        else:
            self.log(
                f"training {self.config.backbone} with the {self.config.loss} loss on "
                f"{self.config.dataset} ({len(self.train_set)} images) on {self.device}"
            )
        self.run.clear_stop()
        self.run.update_status(
            state="running",
            pid=os.getpid(),
            total_epochs=self.config.epochs,
            total_steps=self.total_steps,
            last_error=None,
            device=str(self.device),
            phase="training",
            phase_done=None,
            phase_total=None,
        )
        self._background: BackgroundAnalysis | None = None
        if analysis_mode(self.config, self.device) == "background" and self.rank == 0:
            from explorer.rundir.background import BackgroundAnalysis

            self._background = BackgroundAnalysis(self.run, str(self.device), self.log)
        try:
            with self.stops.signals_caught():
                state = self._loop()
        except Diverged as err:
            message = f"{err}; {self._after_divergence()}"
            self.log(f"failed: {message}")
            self.run.update_status(state="failed", last_error=message)
            return "failed"
        except BaseException as err:
            self.run.update_status(state="failed", last_error=f"{type(err).__name__}: {err}")
            raise
        finally:
            if self._background is not None:  # a stopped run leaves the current child to finish
                self._background.close(wait=False)
        if state == "finished" and self._background is not None:
            self.log("waiting for the background analysis of the last checkpoints")
            self.run.set_phase("analysing")
            self._background.close(wait=True)
        return state

    def log(self, message: str) -> None:
        self.report.log(message)

    def _after_divergence(self) -> str:
        """What a diverged run keeps and how to go on."""
        lower = f"lr={self.config.lr / 10:g}"
        if not self.run.has_resume_state():
            return f"no checkpoint was written; start again with a lower lr or mu ({lower})"
        return (
            f"the checkpoints written before are kept (they were checked); resume with a lower "
            f"lr: explorer train --resume {self.run.path} {lower}"
        )

    def analyze_at_end(self) -> None:
        """Analyse every checkpoint now, in this process (``analyze=end``, the CPU default).

        Called by the CLI after it has printed the probe table, so the table is not delayed.
        """
        from explorer.analysis.checkpoint import STAGES
        from explorer.analysis.run import analyze_run

        self.log("analysing the checkpoints (analyze=end; analyze=off skips this)")
        self.run.set_phase("analysing")
        try:  # in-process: the analysis forks the RNG, so training randomness is untouched
            analyze_run(
                self.run,
                device=str(self.device),
                progress=self.progress,
                splits=(self.train_set, self.test_set),
                on_checkpoint=lambda done, total: self.run.set_phase("analysing", done, total),
                on_stage=lambda index, name: self.run.set_stage(index, len(STAGES), name),
            )
        except Exception as err:  # the run itself finished; keep it so
            self.log(f"analysis failed: {type(err).__name__}: {err}")

    # -- the loop ------------------------------------------------------------------------------
    def _loop(self) -> str:
        config, state = self.config, self.state
        per_rank = config.batch_size // self.world_size  # the global batch, sliced by rank
        window = LossWindow(sums={})
        with self._progress_bar() as bar:
            while state.epoch < config.epochs:
                order = self._batch_order(state.epoch)
                while state.batch_in_epoch < self.steps_per_epoch:
                    if self.stops.should_stop(state.step, state.batch_in_epoch):
                        if window.steps:
                            self._report(window, bar)
                        return self._stop()
                    start = state.batch_in_epoch * config.batch_size + self.rank * per_rank
                    view1, view2 = self.views(order[start : start + per_rank])
                    self.train_step(view1, view2, window)
                    state.batch_in_epoch += 1
                    state.step += 1
                    bar.update(1)
                    epoch_done = state.batch_in_epoch == self.steps_per_epoch
                    if window.steps == config.log_every or epoch_done:
                        self._report(window, bar)
                        window = LossWindow(sums={})
                state.epoch, state.batch_in_epoch = state.epoch + 1, 0
                self._end_epoch()
        self.run.update_status(state="finished", progress=1.0)
        self.log(f"finished {config.epochs} epochs")
        return "finished"

    def _report(self, window: LossWindow, bar: tqdm) -> None:
        self.report.window(window, self.state, self.optimizer.param_groups[0]["lr"], bar)

    def _progress_bar(self) -> tqdm:
        return tqdm(
            total=self.total_steps,
            initial=self.state.step,
            unit="step",
            dynamic_ncols=True,
            desc=self.run.name,
            disable=not self.progress or self.rank != 0,
        )

    def _batch_order(self, epoch: int) -> torch.Tensor:
        """Epoch ``epoch``'s permutation of the training set: a function of (seed, epoch) alone."""
        generator = torch.Generator().manual_seed(self.config.seed * 100_003 + epoch)
        order = torch.randperm(len(self.train_set), generator=generator)
        return order.to(self.device, non_blocking=True)  # CUDA stages it: no wait for the GPU

    def train_step(self, view1: torch.Tensor, view2: torch.Tensor, window: LossWindow) -> None:
        """One SGD step on this rank's views, shape (B / world_size, C, S, S) each.

        Nothing here reads a device value on the host (no ``float``, ``.item()`` or Python
        ``if`` on a tensor): the loss terms are summed into ``window`` on the device and read
        back only when a metrics line is logged, so on CUDA the host runs ahead of the GPU.
        """
        config = self.config
        step = self.state.step
        lr = learning_rate(step, self.total_steps, self.warmup_steps, config.effective_lr)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        if self.device.type == "cuda":
            view1 = view1.contiguous(memory_format=torch.channels_last)
            view2 = view2.contiguous(memory_format=torch.channels_last)
        use_amp = config.amp and self.device.type == "cuda"
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=use_amp):
            _, z1, p1 = self.step_model(view1)  # z: (B, out_dim)
            _, z2, p2 = self.step_model(view2)
        gather = distributed.gather_with_grad  # (B/W, d) -> (B, d): negatives from every rank
        terms = compute_loss(
            config.loss,
            gather(z1.float()),
            gather(z2.float()),
            None if p1 is None else gather(p1.float()),
            None if p2 is None else gather(p2.float()),
            mu=config.mu,
            temperature=config.temperature,
        )
        self.optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        distributed.average_gradients(self.model.parameters())
        self.optimizer.step()
        for key, value in terms.items():
            window.sums[key] = window.sums.get(key, 0) + value.detach()
        window.steps += 1

    def _end_epoch(self) -> None:
        config, state = self.config, self.state
        record: dict[str, Any] = {
            "kind": "epoch",
            "epoch": state.epoch,
            "step": state.step,
            "loss": state.epoch_loss_sum / max(1, state.epoch_steps),
        }
        state.epoch_loss_sum, state.epoch_steps = 0.0, 0
        keep_weights = state.epoch % config.checkpoint_every == 0 or state.epoch == config.epochs
        self._save_checkpoint(keep_weights)
        if self.monitor.due(state.epoch) and self.rank == 0:
            record["knn_accuracy"] = self.monitor.accuracy(self.model.backbone, self.device)
        self.report.epoch(record, config.epochs)

    def _stop(self) -> str:
        self._save_checkpoint(weights=False)
        self.run.clear_stop()
        self.run.update_status(state="stopped", epoch=self.state.epoch, step=self.state.step)
        self.log(
            f"stopped by {self.stops.reason} at step {self.state.step}; resume with: "
            f"explorer train --resume {self.run.path}"
        )
        return "stopped"

    # -- checkpoints ---------------------------------------------------------------------------
    def _save_checkpoint(self, weights: bool) -> None:
        """Vet the weights, then write them (``weights``: as a model checkpoint too) and the
        resume state. Weights that fail :func:`unusable_weights` are never written."""
        problem = unusable_weights(self.model, self.optimizer, self.check_batch)
        if distributed.any_rank(problem is not None, self.device):
            raise Diverged(
                f"the weights diverged by step {self.state.step} "
                f"({problem or 'on another process'})"
            )
        if weights:
            self.run.save_weights(self.state.epoch, self.model.state_dict())
            if self._background is not None:
                self._background.request()
        self.run.save_resume_state(self._checkpoint())

    def _checkpoint(self) -> dict[str, Any]:
        """The resume state: a plain dict of tensors and numbers (``torch.load``-safe)."""
        checkpoint = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            **self.state.to_dict(),
            "rng_cpu": torch.get_rng_state(),
            "backbone": self.config.backbone,
        }
        if self.device.type == "cuda":
            checkpoint["rng_cuda"] = torch.cuda.get_rng_state(self.device)
        if self.world_size > 1:  # a collective: every rank calls it, rank 0 saves the list
            checkpoint["rng_ranks"] = distributed.gather_objects(
                {k: checkpoint[k] for k in ("rng_cpu", "rng_cuda") if k in checkpoint}
            )
        return checkpoint

    def _resume(self) -> None:
        """Restore the run's resume state; record any optimisation field this config changes."""
        saved = self.run.config()
        changes = config_changes(saved, self.config)
        self._restore(self.run.load_resume_state())
        if changes:  # refuses any field but the optimisation ones, before anything is written
            resume_config(saved, {k: new for k, (_, new) in changes.items()}, self.state.epoch)
            self.run.record_config_change(self.config, changes, self.state.step)
        note = self.run.rollback_metrics(self.state.step)
        if note:
            self.log(note)
        changed = "".join(f", {k} {new} (was {old})" for k, (old, new) in changes.items())
        self.log(f"resumed at epoch {self.state.epoch}, step {self.state.step}{changed}")

    def _restore(self, checkpoint: dict[str, Any]) -> None:
        try:
            self.model.load_state_dict(checkpoint["model"])
            self.optimizer.load_state_dict(checkpoint["optimizer"])
            self.state = TrainState.from_dict(checkpoint)
            torch.set_rng_state(checkpoint["rng_cpu"])
            ranks = checkpoint.get("rng_ranks")
            if self.world_size > 1:  # each rank its own stream; a new world size reseeds
                if ranks is not None and len(ranks) == self.world_size:
                    checkpoint = {**checkpoint, **ranks[self.rank]}
                    torch.set_rng_state(checkpoint["rng_cpu"])
                else:
                    torch.manual_seed(self.config.seed + self.rank + 1_000_003 * self.state.step)
        except (KeyError, RuntimeError, ValueError, TypeError) as err:
            raise UserError(
                f"checkpoint of {self.run.path} does not match the run's config "
                f"(backbone {self.config.backbone}): {first_line(err)}"
            ) from None
        if self.device.type == "cuda" and "rng_cuda" in checkpoint:
            torch.cuda.set_rng_state(checkpoint["rng_cuda"], self.device)
        for group in self.optimizer.param_groups:  # the saved groups hold the old value
            group["weight_decay"] = self.config.weight_decay  # (lr is set at every step)
