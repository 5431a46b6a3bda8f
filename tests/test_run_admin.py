"""Run management (issue 18): rename, delete (confirmed; never a running run), the demo runs
reinstalled without overwriting anything, a run's full config with its resume changes, and its
config copied into the Train form. On real run directories written by the package; a running run
is a real child process holding the run's lock (explorer.rundir.lock)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from explorer.config import build_config
from explorer.errors import UserError
from explorer.rundir.admin import (
    closest_preset,
    config_history,
    delete_run,
    reinstall_demo_runs,
    rename_run,
    writer_pid,
)
from explorer.rundir.checkpoint import config_changes, resume_config
from explorer.rundir.demo import DEMO_RUNS
from explorer.rundir.launch import LAUNCH_DIR
from explorer.rundir.run import Run, create_run, list_runs
from tests.conftest import DASHBOARD, ROOT
from tests.dashboard_runs import opened_groups

DEMO_NAMES = [run.name for run in list_runs(DEMO_RUNS)]
HOLD = ("import sys, time; from pathlib import Path; from explorer.rundir import lock; "
        "lock.acquire(Path(sys.argv[1])); print('held', flush=True); time.sleep(120)")


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[tuple[Run, subprocess.Popen[str]]]:
    """A run written by a live process: a child holding its lock, as a trainer does."""
    run = create_run(tmp_path / "runs", build_config("shapes-demo"), name="busy")
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(run.path)], stdout=subprocess.PIPE,
                             text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        yield run, child
    finally:
        child.kill()
        child.wait()


def resumed_run(runs: Path, name: str = "resumed") -> Run:
    """A run whose resume raised its epochs from 30 to 45 at step 120 (the trainer's record)."""
    config = build_config("shapes-demo", None, {"epochs": 30})
    run = create_run(runs, config, name=name)
    longer = resume_config(config, {"epochs": 45}, 10)
    run.record_config_change(longer, config_changes(config, longer), 120)  # as the trainer
    return run


def launch_files(runs: Path, name: str) -> tuple[Path, Path]:
    return runs / LAUNCH_DIR / f"{name}.json", runs / LAUNCH_DIR / f"{name}.log"


# -- the package -------------------------------------------------------------------------------
def test_rename_moves_the_run_and_its_log_and_never_overwrites(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    first = create_run(runs, build_config("shapes-demo", None, {"epochs": 7}), name="first")
    create_run(runs, build_config("shapes-demo", None, {"epochs": 9}), name="taken")
    log = launch_files(runs, "first")[1]
    log.parent.mkdir()
    log.write_text("trained\n")
    rename_run(runs, "first", "second")
    assert not first.path.exists() and Run(runs / "second").config().epochs == 7
    assert Run(runs / "second").locked_by() is None  # the lock taken for the move is given back
    assert launch_files(runs, "second")[1].read_text() == "trained\n" and not log.exists()
    for new, says in [("taken", "already exists"), ("../outside", "not allowed"),
                      ("second", "already has that name")]:
        with pytest.raises(UserError, match=says) as refused:
            rename_run(runs, "second", new)
        assert "\n" not in str(refused.value)
    assert Run(runs / "taken").config().epochs == 9  # untouched
    with pytest.raises(UserError, match="does not exist"):
        rename_run(runs, "gone", "other")
    assert sorted(r.name for r in list_runs(runs)) == ["second", "taken"]


def test_a_running_run_is_neither_renamed_nor_deleted(writer, tmp_path: Path) -> None:
    run, child = writer
    runs = run.path.parent
    assert writer_pid(runs, "busy") == child.pid
    with pytest.raises(UserError) as refused:
        delete_run(runs, "busy")
    message = str(refused.value)
    assert f"process {child.pid}" in message and "stop it first" in message
    with pytest.raises(UserError, match=f"process {child.pid}"):
        rename_run(runs, "busy", "moved")
    assert run.config() and not (runs / "moved").exists()
    child.kill()
    child.wait()
    launch_files(runs, "busy")[0].parent.mkdir()
    for path in launch_files(runs, "busy"):
        path.write_text("{}")
    delete_run(runs, "busy")
    assert not run.path.exists() and not any(p.exists() for p in launch_files(runs, "busy"))
    with pytest.raises(UserError, match="does not exist"):
        delete_run(runs, "busy")
    elsewhere = create_run(tmp_path / "elsewhere", build_config("shapes-demo"), name="kept")
    (runs / "linked").symlink_to(elsewhere.path)
    delete_run(runs, "linked")  # the link goes; the run it points at stays whole
    assert not (runs / "linked").exists() and elsewhere.config() and elsewhere.locked_by() is None


def test_reinstall_restores_the_missing_demo_runs_and_skips_a_users_run(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    mine = create_run(runs, build_config("shapes-demo", None, {"epochs": 3}),
                      name="shapes-spectral")  # the user's, named like a demo run
    restored, skipped = reinstall_demo_runs(runs)
    assert skipped == ["shapes-spectral"] and sorted(restored + skipped) == sorted(DEMO_NAMES)
    assert mine.config().epochs == 3 and not mine.weight_checkpoints()  # not overwritten
    assert Run(runs / "shapes-simclr").config() == Run(DEMO_RUNS / "shapes-simclr").config()
    assert list((runs / ".sweeps").glob("*.json"))  # the demo sweep's manifest too
    delete_run(runs, "shapes-simclr")
    assert reinstall_demo_runs(runs) == (["shapes-simclr"], sorted(set(DEMO_NAMES) -
                                                                   {"shapes-simclr"}))


def test_config_history_lists_each_resume_change(tmp_path: Path) -> None:
    run = resumed_run(tmp_path)
    history = config_history(run)
    assert history.config["epochs"] == 45 and history.config["dataset"] == "shapes-subgrid"
    [change] = history.changes
    assert (change.step, change.field, change.old, change.new) == (120, "epochs", 30, 45)
    fresh = create_run(tmp_path, build_config("shapes-demo"), name="fresh")
    assert config_history(fresh).changes == []
    assert closest_preset(run.config()) == "shapes-demo"


# -- the Runs page -----------------------------------------------------------------------------
def runs_page(runs: Path, monkeypatch: pytest.MonkeyPatch, run: str) -> AppTest:
    monkeypatch.setenv("EXPLORER_RUNS_DIR", str(runs))
    app = AppTest.from_file(str(DASHBOARD / "runs_page.py"), default_timeout=120)
    app.session_state["selected_run"] = run
    return app.run()


def button(app: AppTest, text: str):  # type: ignore[no-untyped-def]
    return next(b for b in app.button if b.label == text)


def table(app: AppTest, column: str):  # type: ignore[no-untyped-def]
    """The page's table with ``column`` (a pandas DataFrame)."""
    return next(d.value for d in app.dataframe if column in d.value.columns)


def shown(app: AppTest) -> str:
    return "\n".join(e.value for kind in (app.success, app.error, app.info, app.warning,
                                          app.caption) for e in kind)


def test_the_runs_page_shows_the_config_and_its_change_and_renames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = tmp_path / "runs"
    resumed_run(runs)
    create_run(runs, build_config("shapes-demo"), name="other")
    app = runs_page(runs, monkeypatch, "resumed")
    assert not app.exception
    config = table(app, "setting")
    assert dict(zip(config["field"], config["value"], strict=True))["epochs"] == "45"
    assert len(config) == len(build_config().to_dict())  # every field
    changes = table(app, "change")
    assert changes.iloc[0][["step", "field", "change"]].tolist() == ["120", "epochs", "30 → 45"]
    app.text_input(key="manage-new-name").set_value("other")
    button(app, "Rename").click().run()
    assert "a run named 'other' already exists" in shown(app) and not app.exception
    assert (runs / "resumed").is_dir()
    app.text_input(key="manage-new-name").set_value("longer")
    button(app, "Rename").click().run()
    assert not app.exception and "Renamed `resumed` to `longer`" in shown(app)
    assert not (runs / "resumed").exists() and Run(runs / "longer").config().epochs == 45
    assert app.selectbox(key="manage-picker").value == "longer"
    assert table(app, "change")["change"].tolist() == ["30 → 45"]  # the run's own history


def test_delete_asks_to_confirm_and_a_running_run_cannot_be_deleted(
    writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    busy, child = writer
    runs = busy.path.parent
    create_run(runs, build_config("shapes-demo"), name="doomed")
    app = runs_page(runs, monkeypatch, "busy")
    assert button(app, "Delete…").disabled and button(app, "Rename").disabled
    assert f"being written by process {child.pid}" in shown(app)
    app.selectbox(key="manage-picker").select("doomed").run()
    assert "Changes made by a resume: none" in shown(app)
    button(app, "Delete…").click().run()  # one click deletes nothing
    assert (runs / "doomed").is_dir() and "Delete `doomed` for good" in shown(app)
    button(app, "Cancel").click().run()
    assert (runs / "doomed").is_dir() and not any(b.label.startswith("Really") for b in app.button)
    button(app, "Delete…").click().run()
    button(app, "Really delete doomed").click().run()
    assert not app.exception and "Deleted `doomed`." in shown(app)
    assert not (runs / "doomed").exists() and busy.path.is_dir()
    assert app.selectbox(key="manage-picker").options == ["busy"]


def test_reinstall_from_the_page_says_what_it_restored_and_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = tmp_path / "runs"
    create_run(runs, build_config("shapes-demo", None, {"epochs": 3}), name="shapes-image")
    app = runs_page(runs, monkeypatch, "shapes-image")
    button(app, "Reinstall the demo runs").click().run()
    assert not app.exception
    said = next(s.value for s in app.success if s.value.startswith("Demo runs"))
    assert "restored shapes-class-change-0," in said and said.endswith(
        "left alone, a run of that name being there already: shapes-image.")
    assert Run(runs / "shapes-image").config().epochs == 3


def test_copy_into_the_train_form_fills_its_fields_with_the_runs_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole app, as the browser runs it: the button opens the Train page, whose widgets
    hold the run's values (its resumed epochs included) under a new name."""
    runs = tmp_path / "runs"
    resumed_run(runs)
    config = json.loads((runs / "resumed" / "config.json").read_text())["config"]
    monkeypatch.setenv("EXPLORER_RUNS_DIR", str(runs))
    app = AppTest.from_file(str(DASHBOARD / "app.py"), default_timeout=120)
    app.session_state["selected_run"] = "resumed"
    for key, is_open in opened_groups().items():  # the Train form draws open groups' fields
        app.session_state[key] = is_open
    app.run()
    button(app, "Copy into the Train form").click().run()
    assert not app.exception, [e.message for e in app.exception]
    assert app.title[0].value == "Train"
    assert app.selectbox(key="train-preset").value == "shapes-demo"
    assert app.text_input(key="run-name").value == "resumed-copy"
    field = "field-shapes-demo-{}".format
    assert app.text_input(key=field("epochs")).value == "45"
    assert app.text_input(key=field("batch_size")).value == str(config["batch_size"])
    assert app.selectbox(key=field("loss")).value == config["loss"]
    assert app.checkbox(key=field("amp")).value == config["amp"]


def test_renaming_or_deleting_a_sweeps_run_updates_its_manifest(tmp_path: Path) -> None:
    from explorer.rundir.demo import install_demo_runs
    from explorer.rundir.sweep import manifest_path, read_manifest

    runs = tmp_path / "runs"
    install_demo_runs(runs)
    path = manifest_path(runs, "shapes-class-change")
    before = read_manifest(path)
    assert "shapes-class-change-0.3" in before["runs"] and len(before["runs"]) == 7
    rename_run(runs, "shapes-class-change-0.3", "mine")
    after = read_manifest(path)
    assert after["runs"] == [("mine" if r == "shapes-class-change-0.3" else r)
                             for r in before["runs"]]
    assert after["values"] == before["values"]
    delete_run(runs, "mine")
    gone = read_manifest(path)
    assert "mine" not in gone["runs"] and 0.3 not in gone["values"]
    assert len(gone["runs"]) == len(gone["values"]) == 6
