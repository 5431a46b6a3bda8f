"""Stop and Resume answer at once (issue 18, item 5): a resumed trainer that has not taken its run
over reads as ``resuming``, one that exited without taking it as ``failed to resume`` (its log on
the page), and the Train page draws the buttons disabled, saying so, from the run's files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from explorer.config import build_config
from explorer.rundir.launch import (
    LAUNCH_DIR,
    forget_launch,
    launch_log,
    launch_state,
    resume_training,
)
from explorer.rundir.run import Run, create_run, pid_alive, write_json_atomic
from tests.conftest import DASHBOARD


def stopped_run(runs: Path, name: str = "paused") -> Run:
    run = create_run(runs, build_config("shapes-demo"), name=name)
    # the loop's counters (what a resume's policy reads) but no tensors: a trainer that takes
    # it over fails on loading them
    run.save_resume_state({"epoch": 0, "batch_in_epoch": 0, "step": 0, "epoch_loss_sum": 0.0,
                           "epoch_steps": 0})
    run.update_status(state="stopped", pid=1)
    return run


def resume_record(runs: Path, name: str, pid: int, log: str = "") -> None:
    """The launch record :func:`explorer.rundir.launch.resume_training` writes, for a process of
    ours."""
    folder = runs / LAUNCH_DIR
    folder.mkdir(exist_ok=True)
    command = [sys.executable, "-m", "explorer", "train", "--resume", str(runs / name)]
    write_json_atomic(
        folder / f"{name}.json",
        {"name": name, "pid": pid, "command": command, "started": time.time()},
    )
    (folder / f"{name}.log").write_text(log)


def train_page(runs: Path, monkeypatch: pytest.MonkeyPatch, watched: str) -> AppTest:
    monkeypatch.setenv("EXPLORER_RUNS_DIR", str(runs))
    app = AppTest.from_file(str(DASHBOARD / "train_page.py"), default_timeout=120)
    app.session_state["selected_run"] = watched
    app.run()
    assert not app.exception, [e.message for e in app.exception]
    return app


def button(app: AppTest, *labels: str):  # type: ignore[no-untyped-def]
    return next(b for b in app.button if b.label in labels)


def test_a_resume_that_exits_without_taking_the_run_is_shown_with_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real resume whose trainer cannot start (its checkpoint holds no tensors: it stands for
    any refusal found only by the trainer) exits before training."""
    runs = tmp_path / "runs"
    run = stopped_run(runs)
    launched = resume_training(run)
    deadline = time.monotonic() + 60
    while pid_alive(launched.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert launch_state(runs, "paused") == "failed to resume"
    assert "error:" in launch_log(runs, "paused")
    forget_launch(runs, "paused")  # the record goes, the log stays with the run's launches
    assert launch_state(runs, "paused") is None and "error:" in launch_log(runs, "paused")


def test_resuming_until_the_trainer_writes_its_pid_and_not_after_the_run_moved_on(
    tmp_path: Path,
) -> None:
    runs = tmp_path / "runs"
    run = stopped_run(runs)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        resume_record(runs, "paused", child.pid)
        assert launch_state(runs, "paused") == "resuming"
        run.update_status(state="running", pid=child.pid)  # it took the run over
        assert launch_state(runs, "paused") is None
        run.update_status(state="stopped", pid=os.getpid())  # another trainer wrote since
        assert launch_state(runs, "paused") is None
    finally:
        child.kill()
        child.wait()
    assert launch_state(runs, "paused") is None  # gone, but the run was written after it began


def test_the_page_says_resuming_stopping_and_a_failed_resume_with_the_buttons_disabled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = tmp_path / "runs"
    run = stopped_run(runs)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        resume_record(runs, "paused", child.pid)
        app = train_page(runs, monkeypatch, "paused")
        assert button(app, "Resuming…").disabled
        assert any("Resuming `paused`" in i.value for i in app.info)
        assert app.subheader[0].value == "Training now"
    finally:
        child.kill()
        child.wait()
    run.update_status(state="stopped")  # then untouched since the launch
    resume_record(runs, "paused", child.pid, "error: run paused is being written by process 7\n")
    app = train_page(runs, monkeypatch, "paused")
    assert any("Resuming `paused` failed" in e.value for e in app.error)
    assert any("being written by process 7" in c.value for c in app.code)
    assert not button(app, "Resume").disabled  # it may be tried again
    button(app, "Dismiss").click().run()
    assert launch_state(runs, "paused") is None and not app.error

    run.update_status(state="running", pid=os.getpid())  # alive: this test
    app = train_page(runs, monkeypatch, "paused")
    button(app, "Stop").click().run()
    assert run.stop_requested() and button(app, "Stopping…").disabled
    assert any("Stopping `paused`" in i.value for i in app.info)


def test_a_finished_run_offers_to_train_on_with_the_clis_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Train page's Continue training: as many epochs as trained is refused with the
    message of explorer train --resume; more epochs launch the resume."""
    runs = tmp_path / "runs"
    run = stopped_run(runs, "done")
    run.save_resume_state({"epoch": 3, "batch_in_epoch": 0, "step": 9, "epoch_loss_sum": 0.0,
                           "epoch_steps": 0})
    run.update_status(state="finished", epoch=3)
    app = train_page(runs, monkeypatch, "done")
    field = next(n for n in app.number_input if n.label == "Train on to epoch")
    assert field.value > 3  # more than it has trained, by default
    field.set_value(3).run()
    button(app, "Continue training").click().run()
    assert any("already finished all 3 epochs" in e.value for e in app.error)
    assert launch_state(runs, "done") is None  # nothing was started
    field = next(n for n in app.number_input if n.label == "Train on to epoch")
    field.set_value(5).run()
    button(app, "Continue training").click().run()
    assert not app.error
    assert launch_state(runs, "done") in ("resuming", "failed to resume")  # a trainer started
    record = json.loads((runs / LAUNCH_DIR / "done.json").read_text())
    assert "epochs=5" in record["command"]
