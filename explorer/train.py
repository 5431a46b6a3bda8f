"""The training loop: schedule, AMP, checkpoints, stop and exact resume.

One plain PyTorch loop (HaoChen et al. 2021, Appendix C recipe): SGD with momentum, the learning
rate scaled by batch/256, linear warm-up then cosine decay to zero, evaluated per step. The dataset
lives on the training device as uint8 and is augmented there in batches, so no DataLoader is needed.

Exact resume: the batch order of epoch ``e`` is a permutation drawn from its own generator seeded
by ``(seed, e)``, and the global RNG (which drives augmentation) is saved with the model and
optimiser. Restoring those and skipping the batches already seen replays the same computation.
"""

from __future__ import annotations

import math
import os
import signal
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from tqdm import tqdm

from explorer import distributed
from explorer.builders import build_model, build_views, load_splits, resolve_device
from explorer.config import Config
from explorer.data import ImageDataset
from explorer.errors import UserError
from explorer.losses import compute_loss
from explorer.probe import extract_features, knn_probe
from explorer.runs import Run

if TYPE_CHECKING:
    from explorer.background import BackgroundAnalysis

# Cap the kNN monitor's cost: it runs every few epochs on a fixed sample.
MONITOR_TRAIN_SAMPLES = 5000
MONITOR_TEST_SAMPLES = 2000
# Under torchrun, steps between the ranks' joint stop decisions (each one a host-device sync);
# a stop request waits at most this many steps. One process checks every step at no cost.
STOP_CHECK_EVERY = 10


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite; the run fails and keeps its last good checkpoint."""


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


@dataclass
class LossWindow:
    """Sums over the steps since the last metrics line, kept on the device (no sync per step)."""

    sums: dict[str, torch.Tensor]
    steps: int = 0
    started: float = 0.0


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
        self._stop_reason: str | None = None
        self._setup(splits)

    # -- setup ---------------------------------------------------------------------------------
    def _setup(self, splits: tuple[ImageDataset, ImageDataset] | None) -> None:
        config = self.config
        torch.manual_seed(config.seed)
        if splits is None:
            with distributed.local_main_first():  # one download per machine
                splits = load_splits(config)
        self.train_set, self.test_set = splits
        if len(self.train_set) < config.batch_size:
            raise UserError(
                f"batch_size {config.batch_size} exceeds the {len(self.train_set)} training "
                "images; lower batch_size or raise train_limit"
            )
        if config.batch_size % self.world_size or config.batch_size // self.world_size < 2:
            raise UserError(
                f"batch_size {config.batch_size} (the global batch) must be a multiple of the "
                f"{self.world_size} processes with at least 2 images per process"
            )
        # indices -> two views; the data moves to the device once (explorer.views)
        self.views = build_views(config, self.train_set, self.device)
        self.model = build_model(config, self.train_set.images.shape[1]).to(self.device)
        if self.device.type == "cuda":
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
        self.epoch, self.batch_in_epoch, self.step = 0, 0, 0
        self.epoch_loss_sum, self.epoch_steps = 0.0, 0  # for the epoch's mean loss
        monitor = torch.Generator().manual_seed(config.seed)
        n_train = min(MONITOR_TRAIN_SAMPLES, len(self.train_set))
        n_test = min(MONITOR_TEST_SAMPLES, len(self.test_set))
        self.monitor_train = torch.randperm(len(self.train_set), generator=monitor)[:n_train]
        self.monitor_test = torch.randperm(len(self.test_set), generator=monitor)[:n_test]

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

    def _resume_state(self) -> dict[str, Any]:
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "step": self.step,
            "epoch_loss_sum": self.epoch_loss_sum,
            "epoch_steps": self.epoch_steps,
            "rng_cpu": torch.get_rng_state(),
            "backbone": self.config.backbone,
        }
        if self.device.type == "cuda":
            state["rng_cuda"] = torch.cuda.get_rng_state(self.device)
        if self.world_size > 1:  # a collective: every rank calls it, rank 0 saves the list
            state["rng_ranks"] = distributed.gather_objects(
                {k: state[k] for k in ("rng_cpu", "rng_cuda") if k in state}
            )
        return state

    def _restore(self, state: dict[str, Any]) -> None:
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.epoch, self.batch_in_epoch = int(state["epoch"]), int(state["batch_in_epoch"])
            self.step = int(state["step"])
            self.epoch_loss_sum = float(state["epoch_loss_sum"])
            self.epoch_steps = int(state["epoch_steps"])
            torch.set_rng_state(state["rng_cpu"])
            ranks = state.get("rng_ranks")
            if self.world_size > 1:  # each rank its own stream; a new world size reseeds
                if ranks is not None and len(ranks) == self.world_size:
                    state = {**state, **ranks[self.rank]}
                    torch.set_rng_state(state["rng_cpu"])
                else:
                    torch.manual_seed(self.config.seed + self.rank + 1_000_003 * self.step)
        except (KeyError, RuntimeError, ValueError, TypeError) as err:
            first = str(err).strip().splitlines()[0][:200]
            raise UserError(
                f"checkpoint of {self.run.path} does not match the run's config "
                f"(backbone {self.config.backbone}): {first}"
            ) from None
        if self.device.type == "cuda" and "rng_cuda" in state:
            torch.cuda.set_rng_state(state["rng_cuda"], self.device)

    # -- stopping ------------------------------------------------------------------------------
    def _on_signal(self, signum: int, _frame: object) -> None:
        self._stop_reason = signal.Signals(signum).name

    def _should_stop(self) -> bool:
        """Whether to stop before the next step; under ``torchrun`` every rank answers alike.

        One process reads its own flag (a signal or the ``STOP`` file) every step: no device
        work. Ranks must agree, or those that go on would wait forever in the next collective,
        so they decide together with an all-reduce, which on CUDA waits for the queued steps
        (a host-device sync). They do it only every :data:`STOP_CHECK_EVERY` steps and before the
        first step of each epoch; ``step`` and ``batch_in_epoch`` are the same on every rank, so
        all ranks join the same all-reduces and stop at the same step.
        """
        if self.world_size > 1 and self.batch_in_epoch and self.step % STOP_CHECK_EVERY:
            return False
        if self._stop_reason is None and self.run.stop_requested():
            self._stop_reason = "stop request"
        if self.world_size > 1 and distributed.any_rank(self._stop_reason is not None, self.device):
            self._stop_reason = self._stop_reason or "another process's stop"
        return self._stop_reason is not None

    def log(self, message: str) -> None:
        if self.rank != 0:
            return
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}"
        with open(self.run.path / "train.log", "a") as handle:
            handle.write(line + "\n")
        if self.progress:
            tqdm.write(message)

    # -- the loop ------------------------------------------------------------------------------
    def fit(self, run: Run, resume: bool = False) -> str:
        """Train into ``run`` to the end, or until stopped. Returns the final state.

        Under ``torchrun`` every rank calls this with the same run; only rank 0 writes it.
        """
        self.run = run if self.rank == 0 else distributed.FollowerRun(run)  # type: ignore[assignment]
        if resume:
            self._restore(self.run.load_resume_state())
            self.run.rollback_metrics(self.step)
            self.log(f"resumed at epoch {self.epoch}, step {self.step}")
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
        )
        mode = analysis_mode(self.config, self.device)
        self._background: BackgroundAnalysis | None = None
        if mode == "background" and self.rank == 0:
            from explorer.background import BackgroundAnalysis

            self._background = BackgroundAnalysis(self.run, str(self.device), self.log)
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            state = self._loop()
        except NonFiniteLoss as err:
            self.log(f"failed: {err}")
            self.run.update_status(state="failed", last_error=str(err))
            return "failed"
        except BaseException as err:
            self.run.update_status(state="failed", last_error=f"{type(err).__name__}: {err}")
            raise
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if self._background is not None:  # a stopped run leaves the current child to finish
                self._background.close(wait=False)
        if state == "finished" and self._background is not None:
            self.log("waiting for the background analysis of the last checkpoints")
            self._background.close(wait=True)
        return state

    def analyze_at_end(self) -> None:
        """Analyse every checkpoint now, in this process (``analyze=end``, the CPU default).

        Called by the CLI after it has printed the probe table, so the table is not delayed.
        """
        from explorer.analyze import analyze_run

        self.log("analysing the checkpoints (analyze=end; analyze=off skips this)")
        try:  # in-process: the analysis forks the RNG, so training randomness is untouched
            analyze_run(
                self.run,
                device=str(self.device),
                progress=self.progress,
                splits=(self.train_set, self.test_set),
            )
        except Exception as err:  # the run itself finished; keep it so
            self.log(f"analysis failed: {type(err).__name__}: {err}")

    def _loop(self) -> str:
        config = self.config
        bar = tqdm(
            total=self.total_steps,
            initial=self.step,
            unit="step",
            dynamic_ncols=True,
            desc=self.run.name,
            disable=not self.progress or self.rank != 0,
        )
        window = self._new_window()
        with bar:
            while self.epoch < config.epochs:
                order = torch.randperm(
                    len(self.train_set),
                    generator=torch.Generator().manual_seed(config.seed * 100_003 + self.epoch),
                ).to(self.device, non_blocking=True)  # CUDA stages it: no wait for the GPU
                while self.batch_in_epoch < self.steps_per_epoch:
                    if self._should_stop():
                        if window.steps:
                            self._log_window(window, bar)
                        return self._stop()
                    # The global batch is the same on every rank; each takes its slice.
                    per_rank = config.batch_size // self.world_size
                    start = self.batch_in_epoch * config.batch_size + self.rank * per_rank
                    view1, view2 = self.views(order[start : start + per_rank])
                    self.train_step(view1, view2, window)
                    self.batch_in_epoch += 1
                    self.step += 1
                    bar.update(1)
                    if (
                        window.steps == config.log_every
                        or self.batch_in_epoch == self.steps_per_epoch
                    ):
                        self._log_window(window, bar)
                        window = self._new_window()
                self.epoch, self.batch_in_epoch = self.epoch + 1, 0
                self._end_epoch()
        self.run.update_status(state="finished", progress=1.0)
        self.log(f"finished {config.epochs} epochs")
        return "finished"

    def _new_window(self) -> LossWindow:
        return LossWindow(sums={}, started=time.perf_counter())

    def train_step(self, view1: torch.Tensor, view2: torch.Tensor, window: LossWindow) -> None:
        """One SGD step on this rank's views, shape (B / world_size, C, S, S) each.

        Nothing here reads a device value on the host (no ``float``, ``.item()`` or Python
        ``if`` on a tensor): the loss terms are summed into ``window`` on the device and read
        back only when a metrics line is logged, so on CUDA the host runs ahead of the GPU.
        """
        config = self.config
        lr = learning_rate(self.step, self.total_steps, self.warmup_steps, config.effective_lr)
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

    def _log_window(self, window: LossWindow, bar: tqdm) -> None:
        means = {k: float(v) / window.steps for k, v in window.sums.items()}  # one sync here
        if not all(math.isfinite(v) for v in means.values()):
            raise NonFiniteLoss(
                f"loss became {means['loss']} near step {self.step}; lower lr or mu "
                "(the last good checkpoint is kept)"
            )
        self.epoch_loss_sum += means["loss"] * window.steps
        self.epoch_steps += window.steps
        seconds = time.perf_counter() - window.started
        images_per_s = window.steps * self.config.batch_size / max(seconds, 1e-9)
        lr = self.optimizer.param_groups[0]["lr"]
        record = {
            "kind": "step",
            "epoch": self.step / self.steps_per_epoch,
            "step": self.step,
            **means,
            "lr": lr,
            "images_per_s": images_per_s,
            "time": time.time(),
        }
        self.run.append_metrics(record)
        bar.set_postfix(loss=f"{means['loss']:.4f}", lr=f"{lr:.3g}", img_s=f"{images_per_s:.0f}")
        remaining = (self.total_steps - self.step) * self.config.batch_size / images_per_s
        self.run.update_status(
            epoch=self.epoch,
            step=self.step,
            progress=self.step / self.total_steps,
            images_per_s=images_per_s,
            eta_s=remaining,
            loss=means["loss"],
        )

    def _end_epoch(self) -> None:
        config = self.config
        record: dict[str, Any] = {
            "kind": "epoch",
            "epoch": self.epoch,
            "step": self.step,
            "loss": self.epoch_loss_sum / max(1, self.epoch_steps),
        }
        self.epoch_loss_sum, self.epoch_steps = 0.0, 0
        last = self.epoch == config.epochs
        if config.knn_every and (self.epoch % config.knn_every == 0 or last) and self.rank == 0:
            record["knn_accuracy"] = self._monitor_knn()
        if self.epoch % config.checkpoint_every == 0 or last:
            self.run.save_weights(self.epoch, self.model.state_dict())
            if self._background is not None:
                self._background.request()
        self.run.save_resume_state(self._resume_state())
        self.run.append_metrics({**record, "time": time.time()})
        self.run.update_status(epoch=self.epoch, step=self.step)
        knn = f", kNN accuracy {record['knn_accuracy']:.3f}" if "knn_accuracy" in record else ""
        self.log(f"epoch {self.epoch}/{config.epochs} done{knn}")

    def _monitor_knn(self) -> float:
        """A cheap kNN accuracy of the backbone on a fixed sample (Wu et al. 2018)."""
        backbone, mean, std = self.model.backbone, self.train_set.mean, self.train_set.std
        train = self.train_set.images[self.monitor_train]
        test = self.test_set.images[self.monitor_test]
        train_features = extract_features(backbone, train, mean, std, device=self.device)
        test_features = extract_features(backbone, test, mean, std, device=self.device)
        result = knn_probe(
            train_features,
            self.train_set.labels[self.monitor_train],
            test_features,
            self.test_set.labels[self.monitor_test],
            len(self.train_set.classes),
            k=self.config.knn_k,
            temperature=self.config.knn_temperature,
        )
        return result.accuracy

    def _stop(self) -> str:
        self.run.save_resume_state(self._resume_state())
        self.run.clear_stop()
        self.run.update_status(state="stopped", epoch=self.epoch, step=self.step)
        self.log(
            f"stopped by {self._stop_reason} at step {self.step}; resume with: "
            f"explorer train --resume {self.run.path}"
        )
        return "stopped"
