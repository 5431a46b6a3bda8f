"""Every user mistake: one line on stderr saying what to do, exit status 2, nothing overwritten."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from explorer.cli import main
from explorer.rundir.run import open_run
from tests.conftest import TINY, explorer


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "dataset=nope"], "unknown dataset 'nope'"),
        (["train", "backbone=vgg"], "unknown backbone 'vgg'"),
        (["train", "loss=byol"], "unknown loss 'byol'"),
        (["train", "--preset", "cifar-paper"], "unknown preset 'cifar-paper'"),
        (["train", "lr=0"], "lr must be positive"),
        (["train", "epochs=-1"], "epochs must be at least 1"),
        (["train", "mu=0"], "mu must be positive"),
        (["train", "batch_size=1"], "batch_size must be at least 2"),
        (["train", "dataset=imagefolder", "data_root=/no/such/dir"], "missing or empty"),
        (["train", "bach_size=8"], "did you mean 'batch_size'"),
        (["train", *TINY, "batch_size=1000"], "exceeds the 256 training images"),
        (["train", "--resume", "runs/none"], "does not exist"),
        (["probe", "runs/none"], "does not exist"),
        (["analyze", "runs/none"], "does not exist"),
    ],
)
def test_user_mistakes(
    args: list[str],
    message: str,
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(workdir)
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and err.startswith("error: ")


def test_a_real_process_prints_no_traceback(workdir: Path) -> None:
    result = explorer("train", "dataset=cifar10", f"data_root={workdir}", cwd=workdir)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "download=true" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_help_answers() -> None:
    for command in ([], ["train"], ["probe"], ["analyze"], ["runs"]):
        result = explorer(*command, "--help", cwd=Path.cwd())
        assert result.returncode == 0 and "usage: explorer" in result.stdout
    assert "--resume" in explorer("train", "--help", cwd=Path.cwd()).stdout


def test_resume_refuses_corrupt_or_foreign_checkpoints(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(workdir)
    assert main(["train", *TINY, "epochs=1", "--name", "r", "--no-probe", "--no-progress"]) == 0
    assert main(["train", *TINY, "epochs=1", "--name", "r", "--no-progress"]) == 2
    assert "already exists" in capsys.readouterr().err
    run = open_run(workdir / "runs" / "r")
    run.update_status(state="stopped")
    resume = run.checkpoint_dir / "resume.pt"
    good = resume.read_bytes()

    # a checkpoint from another architecture: a resnet's weights under this run's config
    from explorer.models import ContrastiveModel

    other = ContrastiveModel("resnet18-cifar", 64, 32)
    state = torch.load(resume, weights_only=True)
    torch.save({**state, "model": other.state_dict()}, resume)
    assert main(["train", "--resume", str(run.path), "--no-progress"]) == 2
    assert "does not match the run's config" in capsys.readouterr().err

    resume.write_bytes(good[: len(good) // 2])
    assert main(["train", "--resume", str(run.path), "--no-progress"]) == 2
    assert "corrupt" in capsys.readouterr().err
    assert run.status()["state"] == "stopped"  # a refused resume changes nothing


def test_probe_takes_only_the_runs_own_checkpoints(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(workdir)
    flags = ["--no-probe", "--no-progress"]
    assert main(["train", *TINY, "epochs=2", "knn_every=0", "--name", "r", *flags]) == 0
    run = open_run(workdir / "runs" / "r")
    [(_, first), _] = run.weight_checkpoints()
    # An absolute path, a relative one and a bare file name all name epoch 1 of this run.
    for given in (str(first.resolve()), str(first), first.name):
        assert main(["probe", "runs/r", "--checkpoint", given, "--no-baselines"]) == 0
        assert run.probe()["epoch"] == 1, given  # type: ignore[index]
    capsys.readouterr()
    # The same file copied into another folder is not this run's checkpoint.
    stranger = workdir / "elsewhere" / first.name
    stranger.parent.mkdir()
    stranger.write_bytes(first.read_bytes())
    assert main(["probe", "runs/r", "--checkpoint", str(stranger)]) == 2
    err = capsys.readouterr().err.strip()
    assert "is not one of run runs/r's checkpoints (epochs 1, 2)" in err
    assert len(err.splitlines()) == 1
    assert main(["probe", "runs/r", "--checkpoint", "epoch-0009.safetensors"]) == 2
    assert "does not exist" in capsys.readouterr().err
    # explorer analyze takes only the run's own checkpoints too.
    assert main(["analyze", "runs/r", "--checkpoint", str(stranger), "--no-progress"]) == 2
    assert "is not one of run runs/r's checkpoints" in capsys.readouterr().err



def test_train_warns_when_warmup_covers_every_epoch(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(workdir)
    flags = ["--no-probe", "--no-progress"]
    assert main(["train", *TINY, "epochs=1", "knn_every=0", "--name", "w", *flags]) == 0
    err = capsys.readouterr().err
    assert "warning: warmup_epochs (1) >= epochs (1)" in err  # TINY warms up for 1 epoch
    assert main(["train", *TINY, "epochs=2", "knn_every=0", "--name", "v", *flags]) == 0
    assert "warning" not in capsys.readouterr().err
