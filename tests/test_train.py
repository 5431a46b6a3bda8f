"""End-to-end training through the real `explorer` command: run directory, stop, exact resume."""

from __future__ import annotations

import json
import math
import os
import signal
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from tqdm import tqdm

from explorer.builders import build_model, load_splits
from explorer.config import build_config
from explorer.errors import UserError
from explorer.models import ContrastiveModel
from explorer.reporting import Reporter, Schedule
from explorer.rundir.checkpoint import TrainState
from explorer.rundir.run import Run, create_run, open_run
from explorer.train import LossWindow, Trainer, learning_rate
from tests.conftest import TINY, explorer, popen_explorer

FLAGS = ["--no-probe", "--no-progress"]


def test_learning_rate_schedule_closed_form() -> None:
    peak, warmup, total = 0.4, 10, 110
    assert learning_rate(0, total, warmup, peak) == pytest.approx(peak / 10)
    assert learning_rate(9, total, warmup, peak) == pytest.approx(peak)
    assert learning_rate(10, total, warmup, peak) == pytest.approx(peak)
    assert learning_rate(60, total, warmup, peak) == pytest.approx(peak / 2)
    assert learning_rate(110, total, warmup, peak) == pytest.approx(0.0, abs=1e-12)
    for step in range(10, 110):
        expected = 0.5 * peak * (1 + math.cos(math.pi * (step - 10) / 100))
        assert learning_rate(step, total, warmup, peak) == pytest.approx(expected)


def _wait_for(  # type: ignore[no-untyped-def]
    predicate, timeout: float = 120, poll: float = 0.05
) -> None:
    deadline = time.time() + timeout
    while not predicate():
        if time.time() > deadline:
            raise AssertionError("timed out waiting for the trainer")
        time.sleep(poll)


def _last_loss(run_dir: Path) -> float:
    steps = [r for r in open_run(run_dir).metrics() if r["kind"] == "step"]
    return steps[-1]["loss"]


def test_train_writes_the_run_directory_and_probe_table(workdir: Path) -> None:
    result = explorer(
        "train", *TINY, "epochs=2", "--name", "tiny", "--no-progress", cwd=workdir, check=True
    )
    run = open_run(workdir / "runs" / "tiny")
    assert run.status()["state"] == "finished"
    records = run.metrics()
    assert all({"epoch", "step", "loss"} <= set(r) for r in records)
    steps = [r for r in records if r["kind"] == "step"]
    assert steps[-1]["step"] == 2 * (256 // 64)
    assert all(math.isfinite(r["loss"]) and "positive" in r and "negative" in r for r in steps)
    # the spectral loss is the sum of its reported parts
    assert all(r["loss"] == pytest.approx(r["positive"] + r["negative"], abs=1e-5) for r in steps)
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2]
    assert all(0 <= r["knn_accuracy"] <= 1 for r in epochs)
    assert [e for e, _ in run.weight_checkpoints()] == [1, 2]
    probe = json.loads((run.path / "probe.json").read_text())
    assert set(probe["methods"]) == {"trained", "raw_pixels", "random_init"}
    for line in ("trained backbone", "raw pixels", "random init"):
        assert line in result.stdout
    assert "training cnn-narrow" in (run.path / "train.log").read_text()
    table = explorer("runs", cwd=workdir, check=True).stdout
    assert "tiny" in table and "finished" in table and "2/2" in table


def test_sigkill_then_resume_matches_uninterrupted(workdir: Path) -> None:
    args = [*TINY, "epochs=3", "knn_every=0", "--no-probe", "--no-progress"]
    explorer("train", *args, "--name", "straight", cwd=workdir, check=True)
    process = popen_explorer("train", *args, "--name", "killed", cwd=workdir)
    run_dir = workdir / "runs" / "killed"
    _wait_for(lambda: any(r["kind"] == "epoch" for r in _metrics(run_dir)))
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert open_run(run_dir).status()["state"] == "died"
    assert open_run(run_dir).locked_by() is None  # the kernel dropped the killed writer's lock
    with open(run_dir / "metrics.jsonl", "a") as handle:
        handle.write('{"kind": "step", "ep')  # what a kill in the middle of a line leaves
    explorer(
        "train", "--resume", str(run_dir), "--no-probe", "--no-progress", cwd=workdir, check=True
    )
    assert open_run(run_dir).status()["state"] == "finished"
    assert "last line is torn" in (run_dir / "train.log").read_text()
    assert _last_loss(run_dir) == pytest.approx(
        _last_loss(workdir / "runs" / "straight"), rel=1e-6, abs=1e-7
    )
    steps = [r["step"] for r in open_run(run_dir).metrics() if r["kind"] == "step"]
    assert steps == sorted(set(steps))  # the rolled-back records are gone


def _metrics(run_dir: Path) -> list[dict]:
    return open_run(run_dir).metrics() if (run_dir / "config.json").exists() else []


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT", "stop-file"])
def test_stop_saves_and_resume_finishes(workdir: Path, how: str) -> None:
    process = popen_explorer(
        "train",
        *TINY,
        "epochs=30",
        "knn_every=0",
        "--name",
        "s",
        "--no-probe",
        "--no-progress",
        cwd=workdir,
    )
    run_dir = workdir / "runs" / "s"
    _wait_for(lambda: any(r["kind"] == "step" for r in _metrics(run_dir)))
    if how == "stop-file":
        open_run(run_dir).request_stop()
    else:
        process.send_signal(getattr(signal, how))
    assert process.wait(timeout=60) == 0
    run = open_run(run_dir)
    assert run.status()["state"] == "stopped"
    state = run.load_resume_state()
    assert 0 < state["step"] < 30 * 4
    if how != "SIGINT":  # the signals differ only in how the stop is asked for; Ctrl-C resumes
        return
    result = explorer("train", "--resume", str(run_dir), "batch_size=32", cwd=workdir)
    assert result.returncode == 2 and "can change only lr" in result.stderr
    explorer(
        "train", "--resume", str(run_dir), "--no-probe", "--no-progress", cwd=workdir, check=True
    )
    assert open_run(run_dir).status()["state"] == "finished"
    steps = [r["step"] for r in open_run(run_dir).metrics() if r["kind"] == "step"]
    assert steps[-1] == 30 * 4 and steps == sorted(set(steps))


def _forward_is_finite(run: Run, weights: dict[str, torch.Tensor]) -> bool:
    """A probe's forward pass (eval mode) of ``weights`` on clean training images."""
    config = run.config()
    train_set, _ = load_splits(config)
    model = build_model(config, train_set.images.shape[1])
    model.load_state_dict(weights)
    mean = torch.tensor(train_set.mean).view(1, -1, 1, 1)
    std = torch.tensor(train_set.std).view(1, -1, 1, 1)
    with torch.no_grad():
        h, z, _ = model.eval()((train_set.images[:32].float() / 255 - mean) / std)
    return bool(torch.isfinite(h).all() and torch.isfinite(z).all())


def test_a_diverged_run_keeps_weights_that_work_and_resumes_with_a_lower_lr(
    workdir: Path,
) -> None:
    """One step per epoch (64 images, batch 64): a step at lr 1e30 leaves finite weights of
    ~1e28 whose next forward pass is NaN, and the epoch's only loss, computed before that step,
    is finite. Only a check of the weights themselves keeps them out of the checkpoints."""
    args = [*TINY, "train_limit=64", "warmup_epochs=0", "knn_every=0"]
    explorer("train", *args, "epochs=1", "--name", "r", *FLAGS, cwd=workdir, check=True)
    run = open_run(workdir / "runs" / "r")
    result = explorer("train", "--resume", str(run.path), "epochs=3", "lr=1e30", *FLAGS,
                      cwd=workdir)
    assert result.returncode == 1, result.stderr
    assert "the weights diverged by step 2" in result.stderr and "Traceback" not in result.stderr
    assert "explorer train --resume" in result.stderr  # and says how to go on
    assert run.status()["state"] == "failed"
    checkpoints = run.weight_checkpoints()
    assert [epoch for epoch, _ in checkpoints] == [1]  # epoch 2's weights were refused
    for _, path in checkpoints:
        assert _forward_is_finite(run, run.load_weights(path))
    resume = run.load_resume_state()
    assert resume["step"] == 1 and _forward_is_finite(run, resume["model"])
    # The change is on record; resuming again with a sane lr trains on from epoch 1.
    assert run.config().lr == 1e30 and run.config().epochs == 3
    explorer("train", "--resume", str(run.path), "lr=0.1", *FLAGS, cwd=workdir, check=True)
    assert run.status()["state"] == "finished" and run.config().lr == 0.1
    assert [epoch for epoch, _ in run.weight_checkpoints()] == [1, 2, 3]
    changes = json.loads((run.path / "config.json").read_text())["changes"]
    assert [c["changed"] for c in changes] == [
        {"epochs": [1, 3], "lr": [0.1, 1e30]},
        {"lr": [1e30, 0.1]},
    ]
    assert [c["step"] for c in changes] == [1, 1]
    assert "resumed at epoch 1, step 1, lr 0.1 (was 1e+30)" in (run.path / "train.log").read_text()


def test_a_run_that_diverges_at_once_writes_no_checkpoint(workdir: Path) -> None:
    result = explorer("train", *TINY, "epochs=3", "lr=1e30", "warmup_epochs=0",
                      "--name", "nan", "--no-progress", cwd=workdir)
    assert result.returncode == 1
    assert "loss became nan" in result.stderr and "no checkpoint was written" in result.stderr
    run = open_run(workdir / "runs" / "nan")
    assert run.status()["state"] == "failed"
    assert run.weight_checkpoints() == [] and not run.has_resume_state()


def test_a_resume_changes_weight_decay_in_the_optimiser(workdir: Path) -> None:
    """The saved optimiser carries its old weight decay; the resumed one must use the new."""
    config = build_config(overrides=[*TINY, "epochs=1", "knn_every=0", "weight_decay=0.0005"])
    run = create_run(workdir / "runs", config, "wd")
    assert Trainer(config, progress=False).fit(run) == "finished"
    resumed = Trainer(replace(config, epochs=2, weight_decay=0.25), progress=False)
    assert resumed.fit(run, resume=True) == "finished"
    assert {g["weight_decay"] for g in resumed.optimizer.param_groups} == {0.25}
    assert run.config().weight_decay == 0.25
    with pytest.raises(UserError, match="'mu' would change what the checkpoint means"):
        Trainer(replace(config, epochs=3, mu=2.0), progress=False).fit(run, resume=True)
    assert run.status()["state"] == "finished" and run.config().mu == config.mu


def _stop_mid_epoch(workdir: Path, args: list[str], name: str, how: str) -> Run:
    process = popen_explorer("train", *args, *FLAGS, "--name", name, cwd=workdir)
    run_dir = workdir / "runs" / name
    _wait_for(lambda: any(r["kind"] == "step" for r in _metrics(run_dir)), poll=0.01)
    if how == "stop-file":
        open_run(run_dir).request_stop()
    else:
        process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    return open_run(run_dir)


def test_stop_then_resume_equals_a_straight_run(workdir: Path) -> None:
    """One process, stopped mid-epoch by the STOP file, then resumed: the final weights equal an
    uninterrupted run's exactly (tolerance 0 on the CPU). A signal sets the same flag that the
    STOP file does (test_stop_saves_and_resume_finishes)."""
    # 2048 images / batch 64: 32 steps an epoch; the stop lands a few steps into epoch 1.
    args = [*TINY, "train_limit=2048", "epochs=2", "knn_every=0"]
    explorer("train", *args, *FLAGS, "--name", "straight", cwd=workdir, check=True)
    straight = open_run(workdir / "runs" / "straight")
    [*_, (_, straight_path)] = straight.weight_checkpoints()
    expected = straight.load_weights(straight_path)
    for how in ("stop-file",):
        run = _stop_mid_epoch(workdir, args, how, how)
        assert run.status()["state"] == "stopped"
        state = run.load_resume_state()
        assert state["batch_in_epoch"] > 0, "the stop should land inside an epoch"
        explorer("train", "--resume", str(run.path), *FLAGS, cwd=workdir, check=True)
        assert run.status()["state"] == "finished"
        [*_, (_, path)] = run.weight_checkpoints()
        weights = run.load_weights(path)
        assert weights.keys() == expected.keys()
        for key, value in expected.items():
            assert torch.equal(weights[key], value), (how, key)


def test_two_concurrent_resumes_one_wins(workdir: Path) -> None:
    """Two trainers on one run: the second exits 2 with one line naming the first's pid."""
    explorer("train", *TINY, "epochs=1", "knn_every=0", "--name", "r", *FLAGS, cwd=workdir,
             check=True)
    run = open_run(workdir / "runs" / "r")
    resume = ["train", "--resume", str(run.path), "epochs=200", *FLAGS]
    first, second = popen_explorer(*resume, cwd=workdir), popen_explorer(*resume, cwd=workdir)
    processes = {first.pid: first, second.pid: second}
    _wait_for(lambda: any(p.poll() is not None for p in processes.values()))
    [loser] = [p for p in processes.values() if p.poll() is not None]
    [winner] = [p for p in processes.values() if p is not loser]
    _, stderr = loser.communicate()
    assert loser.returncode == 2
    assert stderr.strip() == (
        f"error: run {run.path} is being written by process {winner.pid}; wait for it to exit "
        "or stop it first"
    )
    assert run.locked_by() == winner.pid
    _wait_for(lambda: run.status().get("state") == "running")
    run.request_stop()
    assert winner.wait(timeout=60) == 0
    assert run.status()["state"] == "stopped" and run.locked_by() is None
    changes = json.loads((run.path / "config.json").read_text())["changes"]
    assert len(changes) == 1  # only the winner wrote


def _fit(workdir: Path, name: str, *overrides: str) -> Run:
    config = build_config(overrides=[*TINY, "epochs=1", "knn_every=0", *overrides])
    run = create_run(workdir / "runs", config, name)
    assert Trainer(config, progress=False).fit(run) == "finished"
    return run


def _check_compiled_run(compiled: Run, eager: Run, workdir: Path) -> None:
    """Plain parameter names, eager's maths, and a checkpoint that `explorer probe` reads."""
    [(_, path)] = compiled.weight_checkpoints()
    weights = compiled.load_weights(path)
    # The names of a model built directly, without torch.compile's `_orig_mod.` wrapper.
    expected = ContrastiveModel("cnn-narrow", projector_hidden_dim=64, projector_out_dim=32)
    assert set(weights) == set(expected.state_dict())
    assert set(compiled.load_resume_state()["model"]) == set(expected.state_dict())
    # Compilation fuses and reorders float operations (differences of ~1e-5 seen after 4
    # steps with inductor); the steps must otherwise be eager's: same losses, same weights.
    [(_, eager_path)] = eager.weight_checkpoints()
    for name, value in eager.load_weights(eager_path).items():
        gap = (weights[name].double() - value.double()).abs().max().item()
        assert gap <= 1e-4 + 1e-3 * value.abs().max().item(), (name, gap)
    for ours, theirs in zip(compiled.metrics(), eager.metrics(), strict=True):
        assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-5)
    result = explorer("probe", str(compiled.path), "--no-baselines", cwd=workdir, check=True)
    assert "trained backbone" in result.stdout


def test_compile_keeps_checkpoints_plain(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """compile=true through TorchDynamo and AOTAutograd, without inductor's code generation.

    ``aot_eager`` wraps the model exactly as the default backend does (``_orig_mod``) and
    traces forward and backward, in seconds; inductor's first compilation on 2 CPU cores takes
    about a minute (the test below).
    """
    compile_, compiled_models = torch.compile, []

    def aot_eager(model: torch.nn.Module) -> torch.nn.Module:
        compiled_models.append(compile_(model, backend="aot_eager"))
        return compiled_models[-1]

    monkeypatch.setattr(torch, "compile", aot_eager)
    compiled = _fit(workdir, "compiled", "compile=true")
    monkeypatch.undo()
    assert len(compiled_models) == 1 and hasattr(compiled_models[0], "_orig_mod")
    _check_compiled_run(compiled, _fit(workdir, "eager"), workdir)


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("EXPLORER_TEST_INDUCTOR") != "1",
    reason="inductor's first compile on 2 CPU cores made this test take 55-82 s; "
    "set EXPLORER_TEST_INDUCTOR=1 to run it",
)
def test_compiled_training_with_inductor(workdir: Path) -> None:
    """compile=true with torch's default backend, through the real `explorer train` command."""
    args = [*TINY, "epochs=1", "knn_every=0"]
    flags = ["--no-probe", "--no-progress"]
    explorer("train", *args, "compile=true", *flags, "--name", "compiled", cwd=workdir, check=True)
    explorer("train", *args, *flags, "--name", "eager", cwd=workdir, check=True)
    compiled, eager = open_run(workdir / "runs" / "compiled"), open_run(workdir / "runs" / "eager")
    assert compiled.status()["state"] == "finished"
    _check_compiled_run(compiled, eager, workdir)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (not run on the CPU)")
@pytest.mark.parametrize("recipe", [[], ["augment=natural", "image_size=64"]])
def test_training_step_never_waits_for_the_gpu(recipe: list[str]) -> None:
    """Augmentation and the step queue work without a host-device sync (CUDA's sync debug mode
    raises on one); the natural recipe at 64 px includes the blur."""
    config = build_config(overrides=[*TINY, "device=cuda", *recipe])
    trainer = Trainer(config, progress=False)
    window = LossWindow(sums={})

    def step() -> None:
        index = torch.randint(len(trainer.train_set), (config.batch_size,), device=trainer.device)
        trainer.train_step(*trainer.views(index), window)

    step()  # the first step creates cuBLAS/cuDNN handles and may sync
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(window.sums["loss"]).item()


def test_the_reporter_needs_only_plain_values(workdir: Path) -> None:
    """The reporter is built from a run and a :class:`Schedule`, no trainer (so
    ``explorer.reporting`` never imports ``explorer.train``): a window becomes one metrics line
    and the status record, an epoch its line and a log line."""
    run = create_run(workdir / "runs", build_config(overrides=TINY), "plain")
    report = Reporter(run, Schedule(batch_size=64, steps_per_epoch=4, total_steps=8),
                      progress=False)
    state = TrainState(epoch=0, step=2)
    window = LossWindow(sums={"loss": torch.tensor(-3.0), "positive": torch.tensor(-4.0),
                              "negative": torch.tensor(1.0)}, steps=2)
    with tqdm(disable=True) as bar:
        report.window(window, state, lr=0.1, bar=bar)
    report.epoch({"kind": "epoch", "epoch": 1, "step": 4, "loss": -1.5}, total_epochs=2)
    step, epoch = open_run(run.path).metrics()
    assert (step["kind"], step["step"], step["epoch"]) == ("step", 2, 0.5)
    assert (step["loss"], step["positive"], step["negative"]) == (-1.5, -2.0, 0.5)
    assert (state.epoch_loss_sum, state.epoch_steps) == (-3.0, 2)
    assert epoch["kind"] == "epoch" and run.status()["progress"] == 0.25
    assert "epoch 1/2 done" in (run.path / "train.log").read_text()


def test_the_time_left_is_the_pace_so_far_pauses_included(workdir: Path) -> None:
    """The status's eta_s extrapolates the seconds per step since the first window, so a pause
    between windows (a checkpoint, the kNN monitor) counts, unlike the last window's speed."""
    run = create_run(workdir / "runs", build_config(overrides=TINY), "eta")
    report = Reporter(run, Schedule(batch_size=64, steps_per_epoch=4, total_steps=12),
                      progress=False)
    terms = {"loss": torch.tensor(-2.0), "positive": torch.tensor(-3.0),
             "negative": torch.tensor(1.0)}
    began = time.perf_counter() - 6.0  # the first window: 2 steps, begun 6 s ago (a pause)
    with tqdm(disable=True) as bar:
        report.window(LossWindow(sums=dict(terms), steps=2, started=began), TrainState(step=2),
                      lr=0.1, bar=bar)
        # then 2 quick steps: the pace so far is ~6 s for 4 steps
        second = LossWindow(sums=dict(terms), steps=2, started=time.perf_counter() - 0.01)
        report.window(second, TrainState(step=4), lr=0.1, bar=bar)
    eta = run.status()["eta_s"]
    elapsed = time.perf_counter() - began
    assert eta == pytest.approx((12 - 4) * elapsed / 4, rel=0.05)  # 8 steps at ~1.5 s each
    # the last window alone (2 steps in 0.01 s) would have said well under a second
    assert eta > 10
