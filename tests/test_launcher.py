"""Launching, stopping and resuming detached trainers, run summaries and the demo runs."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from explorer.config import parse_overrides
from explorer.errors import UserError
from explorer.readings.overview import summarize
from explorer.rundir.demo import install_demo_runs
from explorer.rundir.launch import (
    LAUNCH_DIR,
    forget_launch,
    launch_log,
    launch_state,
    launch_training,
    open_named_run,
    pending_launches,
    resume_training,
    stop_training,
    validate_launch,
)
from explorer.rundir.run import Run, create_run, list_runs
from tests.conftest import DASHBOARD, ROOT, TINY, explorer

TINY_VALUES = parse_overrides([o for o in TINY if not o.startswith("log_every")])


def wait_for(predicate, timeout: float = 120, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def state_of(runs_dir: Path, name: str) -> str | None:
    path = runs_dir / name  # created a moment before its files: read the status file alone
    return Run(path).status().get("state") if (path / "status.json").exists() else None


@pytest.mark.parametrize("name", ["../escape", "/abs", ".hidden", "a/b", "x\n", ""])
def test_names_cannot_leave_the_runs_directory(tmp_path: Path, name: str) -> None:
    with pytest.raises(UserError, match="not allowed"):
        validate_launch(tmp_path, name, "shapes-demo", {})
    with pytest.raises(UserError, match="not allowed"):
        open_named_run(tmp_path, name)
    assert list(tmp_path.iterdir()) == []


def test_bad_values_get_the_command_lines_message(tmp_path: Path) -> None:
    cli = explorer("train", "--preset", "shapes-demo", "epochs=abc", cwd=tmp_path)
    assert cli.returncode == 2
    with pytest.raises(UserError) as err:
        validate_launch(tmp_path, "ok", "shapes-demo", {"epochs": "abc"})
    # The same check runs for both; only the place it names differs.
    from_cli = cli.stderr.strip().removeprefix("error: ")
    assert from_cli.replace("the command line", "the form") == str(err.value)
    with pytest.raises(UserError, match="batch_size"):
        validate_launch(tmp_path, "ok", "shapes-demo", {"batch_size": "-3"})
    assert not (tmp_path / "ok").exists()


def test_launch_trains_detached_and_refuses_a_second_run_of_that_name(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    launched = launch_training(runs, "tiny", "shapes-demo", {**TINY_VALUES, "epochs": 2})
    assert launch_state(runs, "tiny") in ("starting", None)
    wait_for(lambda: state_of(runs, "tiny") == "finished", what="the run to finish")
    run = open_named_run(runs, "tiny")
    assert run.config().epochs == 2 and run.config().train_limit == 256
    assert [e for e, _ in run.weight_checkpoints()] == [2]
    assert launch_state(runs, "tiny") is None and pending_launches(runs) == []
    # The trainer's own output is captured: the probe table follows the "finished" state.
    wait_for(lambda: "probe of epoch 2" in launch_log(runs, "tiny"), 180, "the probe table")
    assert launched.log_path.is_file()
    with pytest.raises(UserError, match="already exists"):
        launch_training(runs, "tiny", "shapes-demo", TINY_VALUES)


def test_a_launch_that_cannot_start_says_why(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    launch_training(runs, "nodata", None, {"dataset": "cifar10", "data_root": str(tmp_path)})
    wait_for(lambda: launch_state(runs, "nodata") == "failed to start", 60, "the failure")
    assert "error:" in launch_log(runs, "nodata")
    assert "Traceback" not in launch_log(runs, "nodata")
    assert pending_launches(runs) == ["nodata"]
    forget_launch(runs, "nodata")
    assert pending_launches(runs) == [] and launch_state(runs, "nodata") is None


def test_stop_then_resume_from_the_dashboard(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    launch_training(runs, "long", "shapes-demo", {**TINY_VALUES, "epochs": 200})
    wait_for(lambda: state_of(runs, "long") == "running"
             and open_named_run(runs, "long").status().get("step", 0) >= 2, what="training")
    run = open_named_run(runs, "long")
    with pytest.raises(UserError, match="being written by process"):  # the lock, beside the state
        resume_training(run)
    stop_training(run)
    wait_for(lambda: state_of(runs, "long") == "stopped", 60, "the stop")
    stopped_at = run.status()["step"]
    assert run.has_resume_state()
    with pytest.raises(UserError, match="not running"):
        stop_training(run)
    # A double click on Resume: both trainers start before either holds the lock; one wins.
    # (With a lower learning rate: the change a failed run needs; recorded once, by the winner.)
    lr = run.config().lr / 2
    first, second = resume_training(run, {"lr": lr}), resume_training(run, {"lr": lr})
    wait_for(lambda: state_of(runs, "long") == "running"
             and run.status().get("step", 0) > stopped_at, what="the resumed run")
    winner = run.status()["pid"]
    assert winner in (first.pid, second.pid) and run.locked_by() == winner
    refusal = f"is being written by process {winner}; wait for it to exit or stop it first"
    wait_for(lambda: refusal in launch_log(runs, "long"), 60, "the second trainer's refusal")
    assert launch_log(runs, "long", 10_000).count("error:") == 1
    assert run.config().lr == lr
    assert [c["changed"] for c in json.loads((run.path / "config.json").read_text())["changes"]] \
        == [{"lr": [2 * lr, lr]}]
    stop_training(run)
    wait_for(lambda: state_of(runs, "long") == "stopped", 60, "the second stop")
    assert "resumed at epoch" in (run.path / "train.log").read_text()


HOLD_LOCK = """
import sys, time
from pathlib import Path
from explorer.rundir.run import Run
Run(Path(sys.argv[1])).lock()
print("locked", flush=True)
time.sleep(600)
"""


@contextlib.contextmanager
def held_stopped_run(runs_dir: Path) -> Iterator[tuple[Run, int]]:
    """A stopped, resumable run whose writer lock another process holds (a trainer starting or
    finishing); yields the run and that process's pid, and SIGKILLs the process afterwards."""
    from explorer.config import build_config

    run = create_run(runs_dir, build_config("shapes-demo"), name="held")
    run.save_resume_state({"step": 0})
    run.update_status(state="stopped")
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(run.path)],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield run, holder.pid
    finally:
        holder.kill()
        holder.wait()


def test_resume_is_refused_while_a_process_holds_the_run(tmp_path: Path) -> None:
    with held_stopped_run(tmp_path / "runs") as (run, pid):
        assert run.locked_by() == pid
        with pytest.raises(UserError, match=f"being written by process {pid}"):
            resume_training(run)
    assert not (tmp_path / "runs" / LAUNCH_DIR).exists()  # nothing was started


def test_the_train_page_disables_resume_and_launch_for_a_held_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("EXPLORER_RUNS_DIR", str(tmp_path / "runs"))
    main = sys.modules["__main__"]  # AppTest replaces it with the page script

    def train_page(run_name: str) -> AppTest:
        app = AppTest.from_file(str(DASHBOARD / "train_page.py"), default_timeout=120)
        app.session_state["selected_run"] = "held"
        app.session_state["run-name-preset"] = "shapes-demo"
        app.session_state["run-name"] = run_name
        app.run()
        assert not app.exception, [e.message for e in app.exception]
        return app

    def button(app: AppTest, label: str):  # type: ignore[no-untyped-def]
        return next(b for b in app.button if b.label == label)

    try:
        with held_stopped_run(tmp_path / "runs") as (run, pid):
            run.append_metrics({"kind": "step", "epoch": 0.5, "step": 2, "loss": -0.5})
            with open(run.path / "metrics.jsonl", "a") as handle:
                handle.write('{"kind": "step", "epo')  # a killed writer's torn line
            app = train_page("held")
            assert button(app, "Resume").disabled and button(app, "Launch").disabled
            assert any(str(pid) in info.value for info in app.info)
            assert any("last line is torn" in caption.value for caption in app.caption)
        app = train_page("another-name")  # the holder is gone: the lock went with it
        assert not button(app, "Resume").disabled and not button(app, "Launch").disabled
    finally:
        sys.modules["__main__"] = main


def test_stray_files_in_the_launch_folder_are_not_launches(tmp_path: Path) -> None:
    folder = tmp_path / "runs" / LAUNCH_DIR
    folder.mkdir(parents=True)
    (folder / "bad name.json").write_text('{"pid": 1}')  # no run can have this name
    (folder / "notes.json").write_text("[1, 2]")  # not a record
    (folder / "torn.json").write_text('{"name": "torn", "pi')
    (folder / "README.txt").write_text("hello")
    assert pending_launches(tmp_path / "runs") == []
    for name in ("bad name", "notes", "torn"):
        assert launch_state(tmp_path / "runs", name) is None


def test_summaries_survive_damaged_runs(tmp_path: Path) -> None:
    from explorer.config import build_config

    run = create_run(tmp_path, build_config("shapes-demo"), name="damaged")
    (run.path / "config.json").write_text("{half")
    summary = summarize(run)
    assert summary.state == "corrupt" and "not valid JSON" in (summary.error or "")
    (run.path / "status.json").write_text("")
    assert summarize(run).state == "corrupt"


def test_demo_runs_go_into_an_empty_runs_directory_only(tmp_path: Path) -> None:
    from explorer.config import build_config

    source = tmp_path / "demo"
    create_run(source, build_config("shapes-demo"), name="demo-a")
    assert install_demo_runs(tmp_path / "runs", source) == ["demo-a"]
    assert [r.name for r in list_runs(tmp_path / "runs")] == ["demo-a"]
    assert json.loads((tmp_path / "runs" / "demo-a" / "config.json").read_text())["config"]
    mine = tmp_path / "mine"
    create_run(mine, build_config("shapes-demo"), name="my-run")
    assert install_demo_runs(mine, source) == []


def test_demo_sweep_manifests_are_installed_with_the_demo_runs(tmp_path: Path) -> None:
    from explorer.config import build_config
    from explorer.rundir.sweep import list_sweeps, new_manifest

    source = tmp_path / "demo"
    manifest = new_manifest(source, "demo-sweep", "class_change_p", [0.0, 0.5], "shapes-demo",
                            None, {})
    for name in manifest["runs"]:
        create_run(source, build_config("shapes-demo"), name=name)
    runs = tmp_path / "runs"
    assert sorted(install_demo_runs(runs, source)) == ["demo-sweep-0", "demo-sweep-0.5"]
    installed = list_sweeps(runs)
    assert [(name, error) for name, _, error in installed] == [("demo-sweep", None)]
    assert installed[0][1] == manifest


def test_a_finished_run_continues_with_more_epochs_from_the_dashboard_as_from_the_cli(
    tmp_path: Path,
) -> None:
    """One resume policy (explorer.rundir.checkpoint.resume_plan): the dashboard's resume refuses a
    finished run without more epochs with the CLI's own message, and continues it with more."""
    runs = tmp_path / "runs"
    launch_training(runs, "done", "shapes-demo", {**TINY_VALUES, "epochs": 1})
    wait_for(lambda: state_of(runs, "done") == "finished", what="the first epoch")
    run = open_named_run(runs, "done")
    wait_for(lambda: run.locked_by() is None, 60, "the trainer's exit")
    with pytest.raises(UserError) as dashboard:
        resume_training(run)
    cli = explorer("train", "--resume", str(run.path), "--no-progress", cwd=tmp_path)
    assert cli.returncode != 0
    assert "already finished all 1 epochs" in str(dashboard.value)
    assert str(dashboard.value).replace(run.name, str(run.path)) in cli.stderr
    resume_training(run, {"epochs": 2})
    wait_for(lambda: state_of(runs, "done") == "finished"
             and run.status().get("epoch") == 2, what="the second epoch")
    assert run.config().epochs == 2
