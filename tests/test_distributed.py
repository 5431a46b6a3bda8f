"""Data-parallel training: two CPU processes (Gloo) must do what one process does on the batch.

What "the same" means depends on BatchNorm. In eval mode (running statistics) the network has
no dependence across the batch, and two ranks must take exactly one process's step on the global
batch. In train mode each rank normalises its own slice (per-GPU BatchNorm, as in the paper's
code; ``sync_bn`` is CUDA-only), so the reference is one process that passes each slice through
the model separately and takes the loss over all of them; the parameters must then agree, while
the running statistics differ by design (rank 0 saw only its slice).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from explorer import distributed, train
from explorer.config import Config, build_config
from explorer.errors import UserError
from explorer.losses import compute_loss
from explorer.rundir.run import create_run, open_run
from explorer.train import LossWindow, Trainer
from tests.conftest import ROOT, TINY

LOSSES = ("spectral", "simclr", "simsiam")
STEPS = 2  # the second step also checks the momentum buffers
TOLERANCE = 1e-5
# Train-mode BatchNorm's backward (1/sigma of a 32-row slice) amplifies the float error of summing
# two ranks' gradients in another order: SimCLR's parameters differed by 7.3e-6 after two steps
# (the others by 1.5e-7 or less; eval mode by 1.5e-8 or less).
TOLERANCE_TRAIN_MODE = 5e-5
WORLD = 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _trainer(loss: str, batchnorm: str = "eval") -> Trainer:
    config = build_config(overrides=[*TINY, f"loss={loss}", "warmup_epochs=0", "epochs=1"])
    trainer = Trainer(config, progress=False)
    if batchnorm == "eval":  # running statistics: no dependence across the batch
        trainer.model.eval()
    return trainer


def _per_slice(model: torch.nn.Module, views: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """z and p of ``views`` with each rank's slice through the model on its own (its own
    BatchNorm statistics), concatenated in rank order."""
    outputs = [model(chunk) for chunk in views.chunk(WORLD)]
    z = torch.cat([out[1] for out in outputs])
    p = None if outputs[0][2] is None else torch.cat([out[2] for out in outputs])
    return z, p


def _reference_steps_per_slice(
    trainer: Trainer, view1: torch.Tensor, view2: torch.Tensor
) -> dict[str, object]:
    """STEPS plain SGD steps of one process that normalises each rank's slice separately: an
    independent reference for two ranks with per-rank BatchNorm (not Trainer.train_step)."""
    config, losses = trainer.config, []
    for _ in range(STEPS):
        lr = train.learning_rate(
            trainer.step, trainer.total_steps, trainer.warmup_steps, config.effective_lr
        )
        for group in trainer.optimizer.param_groups:
            group["lr"] = lr
        (z1, p1), (z2, p2) = _per_slice(trainer.model, view1), _per_slice(trainer.model, view2)
        terms = compute_loss(config.loss, z1, z2, p1, p2, mu=config.mu,
                             temperature=config.temperature)
        trainer.optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        trainer.optimizer.step()
        trainer.step += 1
        losses.append({k: float(v) for k, v in terms.items()})
    params = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
    return {"losses": losses, "params": params}


def _steps(trainer: Trainer, view1: torch.Tensor, view2: torch.Tensor) -> dict[str, object]:
    """Run STEPS optimiser steps on fixed views; return the loss terms and the new weights."""
    losses = []
    for _ in range(STEPS):
        window = LossWindow(sums={})
        trainer.train_step(view1, view2, window)
        trainer.step += 1
        losses.append({k: float(v) for k, v in window.sums.items()})
    params = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
    return {"losses": losses, "params": params}


def _worker(rank: int, world: int, port: int, views_path: str, out_dir: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    views = torch.load(views_path)
    results: dict[str, object] = {}
    for loss in LOSSES:
        for batchnorm in ("eval", "train"):
            trainer = _trainer(loss, batchnorm)
            per_rank = views["view1"].shape[0] // world
            rows = slice(rank * per_rank, (rank + 1) * per_rank)
            step = _steps(trainer, views["view1"][rows], views["view2"][rows])
            results[f"{loss}-{batchnorm}"] = step
    try:
        Trainer(build_config(overrides=[*TINY, "batch_size=65"]), progress=False)
        results["indivisible"] = "accepted"
    except UserError as err:
        results["indivisible"] = str(err)
    torch.save(results, Path(out_dir) / f"rank{rank}.pt")
    torch.distributed.destroy_process_group()


def test_two_ranks_take_the_same_steps_as_one_process(tmp_path: Path) -> None:
    torch.manual_seed(0)
    reference_trainer = _trainer("spectral")
    batch = torch.arange(reference_trainer.config.batch_size)
    view1, view2 = reference_trainer.views(batch)  # fixed views, shared by both runs
    torch.save({"view1": view1, "view2": view2}, tmp_path / "views.pt")
    reference: dict[str, dict[str, object]] = {}
    for loss in LOSSES:
        reference[f"{loss}-eval"] = _steps(_trainer(loss, "eval"), view1, view2)
        reference[f"{loss}-train"] = _reference_steps_per_slice(
            _trainer(loss, "train"), view1, view2
        )

    mp.spawn(_worker, args=(WORLD, _free_port(), str(tmp_path / "views.pt"), str(tmp_path)),
             nprocs=WORLD)

    model = _trainer("spectral").model
    initial = model.state_dict()
    parameters = {name for name, _ in model.named_parameters()}
    for rank in range(WORLD):
        results = torch.load(tmp_path / f"rank{rank}.pt")
        assert "multiple of the 2 processes" in results["indivisible"]
        for case, expected in reference.items():
            ours = results[case]
            loss_gaps = []
            for got, want in zip(ours["losses"], expected["losses"], strict=True):
                assert got.keys() == want.keys()
                for key in want:
                    assert got[key] == pytest.approx(want[key], abs=TOLERANCE), (case, key)
                    loss_gaps.append(abs(got[key] - want[key]))
            # eval mode: every tensor; train mode: the parameters (each rank's BatchNorm running
            # statistics saw its own slice, by design)
            compared = expected["params"] if case.endswith("eval") else parameters
            differences = [
                (ours["params"][k] - expected["params"][k]).abs().max().item() for k in compared
            ]
            print(
                f"rank {rank} {case}: max loss difference {max(loss_gaps):.1e}, "
                f"max parameter difference {max(differences):.1e}"
            )
            tolerance = TOLERANCE if case.endswith("eval") else TOLERANCE_TRAIN_MODE
            assert max(differences) < tolerance, case
            if case.startswith("spectral"):  # the steps moved the weights far beyond it
                moved = max(
                    (expected["params"][k] - initial[k]).abs().max().item() for k in parameters
                )
                assert moved > 10 * TOLERANCE, case


def _torchrun(*args: str) -> list[str]:
    """The command line of ``torchrun --nproc_per_node=2 -m explorer ARGS``."""
    run = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2"]
    return [*run, f"--master_port={_free_port()}", "-m", "explorer", *args]


TORCHRUN_ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def test_torchrun_trains_and_only_rank_0_writes(tmp_path: Path) -> None:
    command = _torchrun("train", *TINY, "epochs=1", "--name", "d", "--no-probe", "--no-progress")
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=120, env=TORCHRUN_ENV
    )
    assert result.returncode == 0, result.stderr
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["d"]
    run = open_run(tmp_path / "runs" / "d")
    assert run.status()["state"] == "finished"
    records = run.metrics()
    # 256 images / batch 64 = 4 steps, a line every 2 steps, then the epoch line: once each
    assert [(r["kind"], r["step"]) for r in records] == [("step", 2), ("step", 4), ("epoch", 4)]
    log = (run.path / "train.log").read_text().splitlines()
    assert sum("finished 1 epochs" in line for line in log) == 1
    assert [e for e, _ in run.weight_checkpoints()] == [1]
    assert result.stderr.count("run directory:") == 1


class _StopFile:
    """Stands in for a run: the STOP file appears at step ``at`` (``step`` is the loop's)."""

    def __init__(self, at: int | None) -> None:
        self.at, self.step = at, 0

    def stop_requested(self) -> bool:
        return self.at is not None and self.step >= self.at


def _first_stop(
    world_size: int, stop_file: _StopFile, steps_per_epoch: int, limit: int = 60
) -> tuple[int | None, str | None]:
    """Walk the step counters as the loop does: the step at which ``should_stop`` says yes."""
    stops = train.StopRequests(stop_file, world_size, torch.device("cpu"))  # type: ignore[arg-type]
    for step in range(limit):
        stop_file.step = step
        if stops.should_stop(step, step % steps_per_epoch):
            return step, stops.reason
    return None, stops.reason


def test_ranks_agree_on_stopping_only_every_few_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    assert train.STOP_CHECK_EVERY == 10  # the expected steps below are written for 10
    joint: list[int] = []
    stop_file = _StopFile(at=13)

    def any_rank(flag: bool, device: torch.device) -> bool:  # records each all-reduce
        joint.append(stop_file.step)
        return flag

    monkeypatch.setattr(distributed, "any_rank", any_rank)
    # One process: its own flag every step, never a collective.
    assert _first_stop(1, stop_file, steps_per_epoch=16) == (13, "stop request")
    assert joint == []
    # Two ranks: the all-reduce only at multiples of 10 and at each epoch's first step (16, 32).
    stop_file = _StopFile(at=None)
    assert _first_stop(2, stop_file, steps_per_epoch=16, limit=41) == (None, None)
    assert joint == [0, 10, 16, 20, 30, 32, 40]
    joint.clear()
    stop_file = _StopFile(at=11)
    # the epoch start comes first
    assert _first_stop(2, stop_file, steps_per_epoch=16) == (16, "stop request")
    # Another rank's stop: this rank's flag is down, the joint answer says stop.
    stop_file = _StopFile(at=None)
    monkeypatch.setattr(distributed, "any_rank", lambda flag, device: stop_file.step >= 21)
    assert _first_stop(2, stop_file, steps_per_epoch=16) == (30, "another process's stop")


@pytest.mark.slow
def test_torchrun_stop_and_resume_matches_uninterrupted(tmp_path: Path) -> None:
    """Stopped by the STOP file and resumed under torchrun: the weights of a straight run."""
    # 768 images / batch 64: 12 steps per epoch, so joint stop checks (every 10 steps and at
    # each epoch's start) fall at steps 10, 12, 20, 24, 30, ...
    args = [*TINY, "train_limit=768", "epochs=3", "knn_every=0"]
    flags = ["--no-probe", "--no-progress"]

    def torchrun(*extra: str, timeout: float = 180) -> None:
        result = subprocess.run(
            _torchrun(*extra), cwd=tmp_path, capture_output=True, text=True,
            timeout=timeout, env=TORCHRUN_ENV,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr

    torchrun("train", *args, *flags, "--name", "straight")
    process = subprocess.Popen(
        _torchrun("train", *args, *flags, "--name", "stopped"),
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env=TORCHRUN_ENV,
    )  # fmt: skip
    run_dir = tmp_path / "runs" / "stopped"
    deadline = time.time() + 120
    while not (run_dir / "metrics.jsonl").is_file() or not open_run(run_dir).metrics():
        assert process.poll() is None and time.time() < deadline, "no metrics line appeared"
        time.sleep(0.05)
    open_run(run_dir).request_stop()
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    stopped = open_run(run_dir)
    assert stopped.status()["state"] == "stopped"
    step = stopped.load_resume_state()["step"]
    assert 0 < step < 3 * 12 and (step % 10 == 0 or step % 12 == 0), step
    assert len(stopped.load_resume_state()["rng_ranks"]) == 2

    torchrun("train", "--resume", str(run_dir), *flags)
    assert stopped.status()["state"] == "finished"
    steps = [r["step"] for r in stopped.metrics() if r["kind"] == "step"]
    assert steps == sorted(set(steps)) and steps[-1] == 3 * 12
    straight = open_run(tmp_path / "runs" / "straight")
    [*_, (_, ours)] = stopped.weight_checkpoints()
    [*_, (_, theirs)] = straight.weight_checkpoints()
    ours_weights, their_weights = stopped.load_weights(ours), straight.load_weights(theirs)
    assert ours_weights.keys() == their_weights.keys()
    gaps = [(ours_weights[k] - v).abs().max().item() for k, v in their_weights.items()]
    print(f"stopped at step {step}; max weight difference after resume {max(gaps):.1e}")
    assert max(gaps) <= 1e-6


def test_follower_ranks_write_nothing(tmp_path: Path) -> None:
    """Ranks other than 0 call every write the trainer makes; none may touch the run."""
    run = create_run(tmp_path, Config(), "r")

    def files() -> dict[str, bytes]:
        return {str(p.relative_to(run.path)): p.read_bytes() for p in run.path.rglob("*")
                if p.is_file()}

    before = files()
    follower = distributed.FollowerRun(run)
    follower.lock()
    follower.update_status(state="running")
    follower.append_metrics({"kind": "step", "epoch": 1, "step": 1, "loss": 0.0})
    follower.rollback_metrics(0)
    follower.record_config_change(Config(epochs=9), {"epochs": [Config().epochs, 9]}, 3)
    follower.save_weights(1, {"w": torch.ones(2)})
    follower.save_resume_state({"step": 1})
    follower.save_probe({})
    follower.request_stop()
    follower.unlock()
    assert files() == before and run.locked_by() is None
    assert follower.config() == Config()  # reads pass through
