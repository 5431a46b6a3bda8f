"""``explorer app --read-only`` (issue 29): every page reads, and every action is refused by the
server itself, the run folder left byte for byte as it was.

Two guards, each tested: the buttons are drawn disabled (and Streamlit drops a forged click of a
disabled widget on the server), and each action's handler refuses on its own, tested on a page
drawn by a writable server whose next request reaches a read-only one."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from explorer.config import build_config
from explorer.rundir.launch import LAUNCH_DIR
from explorer.rundir.run import Run, create_run
from tests.conftest import DASHBOARD, ROOT

REFUSED = "This dashboard is read-only (started with --read-only): it does not"
HOLD = ("import sys, time; from pathlib import Path; from explorer.rundir import lock; "
        "lock.acquire(Path(sys.argv[1])); print('held', flush=True); time.sleep(120)")


@pytest.fixture
def read_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A runs folder served read-only; returns it."""
    runs = tmp_path / "runs"
    runs.mkdir()
    monkeypatch.setenv("EXPLORER_RUNS_DIR", str(runs))
    monkeypatch.setenv("EXPLORER_READ_ONLY", "1")
    return runs


def drawn_writable(name: str, selected: str) -> AppTest:
    """The page as a writable server draws it (buttons enabled); requests after this reach a
    read-only one (the fixture's environment is back at once)."""
    os.environ["EXPLORER_READ_ONLY"] = ""
    try:
        return page(name, selected)
    finally:
        os.environ["EXPLORER_READ_ONLY"] = "1"


def snapshot(runs: Path) -> dict[str, bytes]:
    """Every file under ``runs`` with its bytes: a refused action changes none."""
    return {str(p.relative_to(runs)): p.read_bytes() for p in sorted(runs.rglob("*"))
            if p.is_file()}


def page(name: str, selected: str | None = None) -> AppTest:
    app = AppTest.from_file(str(DASHBOARD / f"{name}.py"), default_timeout=120)
    if selected is not None:
        app.session_state["selected_run"] = selected
    app.run()
    assert not app.exception, [e.message for e in app.exception]
    return app


def button(app: AppTest, label: str):  # type: ignore[no-untyped-def]
    return next(b for b in app.button if b.label == label)


def forced(widget):  # type: ignore[no-untyped-def]
    """The click of a request that skips the browser: AppTest (like the browser) refuses to
    click a disabled widget; a hand-made message to the server would not ask."""
    widget.proto.disabled = False
    return widget.click()


def errors(app: AppTest) -> str:
    return "\n".join(e.value for e in app.error)


@pytest.fixture
def running(read_only: Path) -> Iterator[Run]:
    """A run a live process writes (it holds the run's lock, as a trainer does)."""
    run = create_run(read_only, build_config("shapes-demo"), name="busy")
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(run.path)], stdout=subprocess.PIPE,
                             text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        run.update_status(state="running", pid=child.pid)
        yield run
    finally:
        child.kill()
        child.wait()


def test_the_runs_page_refuses_rename_delete_and_reinstall(read_only: Path) -> None:
    create_run(read_only, build_config("shapes-demo"), name="kept")
    before = snapshot(read_only)
    app = page("runs_page", "kept")
    for label in ("Rename", "Delete…", "Reinstall the demo runs"):
        assert button(app, label).disabled, f"{label} is not drawn disabled"
    app.text_input(key="manage-new-name").set_value("moved")
    forced(button(app, "Rename")).run()
    forced(button(app, "Reinstall the demo runs")).run()
    assert not app.exception and snapshot(read_only) == before

    app = drawn_writable("runs_page", "kept")
    app.text_input(key="manage-new-name").set_value("moved")
    button(app, "Rename").click().run()
    assert f"{REFUSED} rename runs" in errors(app)
    app = drawn_writable("runs_page", "kept")
    button(app, "Delete…").click().run()  # only asks to confirm
    button(app, "Really delete kept").click().run()
    assert f"{REFUSED} delete runs" in errors(app)
    app = drawn_writable("runs_page", "kept")
    button(app, "Reinstall the demo runs").click().run()
    assert f"{REFUSED} reinstall the demo runs" in errors(app)
    assert not app.exception
    assert snapshot(read_only) == before and sorted(p.name for p in read_only.iterdir()) == ["kept"]


def test_the_train_page_refuses_launch_stop_and_resume(running: Run, read_only: Path) -> None:
    stopped = create_run(read_only, build_config("shapes-demo"), name="paused")
    stopped.save_resume_state({"epoch": 0, "batch_in_epoch": 0, "step": 0,
                               "epoch_loss_sum": 0.0, "epoch_steps": 0})
    stopped.update_status(state="stopped", pid=1)
    before = snapshot(read_only)

    app = page("train_page", "busy")
    button(app, "Launch").click().run()  # drawn enabled: the click says why it is refused
    assert f"{REFUSED} launch training" in errors(app)
    assert button(app, "Stop").disabled
    forced(button(app, "Stop")).run()
    assert not app.exception and not running.stop_requested()
    assert button(page("train_page", "paused"), "Resume").disabled

    app = drawn_writable("train_page", "busy")
    button(app, "Stop").click().run()
    assert f"{REFUSED} stop training" in errors(app)
    assert not running.stop_requested()
    app = drawn_writable("train_page", "paused")
    button(app, "Resume").click().run()
    assert f"{REFUSED} resume training" in errors(app)
    assert not app.exception
    assert snapshot(read_only) == before
    assert not (read_only / LAUNCH_DIR).exists()
    assert sorted(p.name for p in read_only.iterdir()) == ["busy", "paused"]


def test_the_import_form_refuses_on_a_read_only_server(read_only: Path) -> None:
    features = read_only.parent / "features.npz"
    np.savez(features, features=np.eye(6, dtype=np.float32), labels=np.arange(6) % 2)
    app = AppTest.from_file(str(DASHBOARD / "runs_page.py"), default_timeout=120)
    app.session_state["import-open"] = True
    app.run()
    app.text_input(key="import-file").set_value(str(features))
    app.button(key="import-go").click().run()
    assert f"{REFUSED} import encoders" in errors(app)
    assert not app.exception and list(read_only.iterdir()) == []


def test_a_read_only_server_installs_no_demo_runs_and_says_it_is_read_only(
    read_only: Path,
) -> None:
    app = AppTest.from_file(str(DASHBOARD / "app.py"), default_timeout=120)
    app.run()
    assert not app.exception, [e.message for e in app.exception]
    assert any("Read-only" in i.value for i in app.sidebar.info)
    assert list(read_only.iterdir()) == []  # an empty folder stays empty
    assert "No runs in" in "\n".join(i.value for i in app.info)
