"""The run directory: no overwrites, atomic checkpoints, safe loading, tolerant readers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from explorer.config import Config
from explorer.errors import UserError
from explorer.rundir.run import FORMAT_VERSION, create_run, list_runs, open_run


def test_create_never_reuses_a_directory(tmp_path: Path) -> None:
    run = create_run(tmp_path, Config(), "demo")
    (run.path / "marker").write_text("keep me")
    before = sorted(p.name for p in run.path.iterdir())
    with pytest.raises(UserError, match="already exists"):
        create_run(tmp_path, Config(epochs=3), "demo")
    assert sorted(p.name for p in run.path.iterdir()) == before
    assert (run.path / "marker").read_text() == "keep me"
    assert run.config().epochs == Config().epochs


@pytest.mark.parametrize("name", ["../escape", "a/b", ".hidden", "", "x" * 101, "name with space"])
def test_run_names_cannot_escape(tmp_path: Path, name: str) -> None:
    runs_dir = tmp_path / "runs"
    with pytest.raises(UserError, match="not allowed"):
        create_run(runs_dir, Config(), name)
    assert not (tmp_path / "escape").exists()


def test_config_round_trip_and_versions(tmp_path: Path) -> None:
    config = Config(dataset="digits", mu=10.0, epochs=7)
    run = create_run(tmp_path, config, "r")
    assert run.config() == config
    saved = json.loads((run.path / "config.json").read_text())
    assert saved["format_version"] == FORMAT_VERSION
    assert saved["versions"]["torch"] == torch.__version__
    saved["format_version"] = 99
    (run.path / "config.json").write_text(json.dumps(saved))
    with pytest.raises(UserError, match="format version 99"):
        run.config()


def test_metrics_rollback_and_torn_line(tmp_path: Path) -> None:
    run = create_run(tmp_path, Config(), "r")
    for step in (1, 2, 3, 4):
        run.append_metrics({"kind": "step", "epoch": step / 2, "step": step, "loss": -step})
    assert run.read_metrics()[1] is None
    with open(run.path / "metrics.jsonl", "a") as handle:
        handle.write('{"kind": "step", "ste')  # a crash mid-write
    records, note = run.read_metrics()
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert note is not None and "last line is torn" in note and "metrics.jsonl" in note
    assert run.rollback_metrics(2) == note  # the process died after step 2's checkpoint
    assert run.read_metrics()[1] is None  # the rewrite dropped the torn line
    for step in (3, 4, 5):
        run.append_metrics({"kind": "step", "epoch": step / 2, "step": step, "loss": -10 * step})
    records = run.metrics()
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5]
    assert [r["loss"] for r in records] == [-1, -2, -30, -40, -50]


def test_an_append_after_a_torn_line_stays_whole(tmp_path: Path) -> None:
    """A killed writer's torn line must not swallow the next record appended after it."""
    run = create_run(tmp_path, Config(), "r")
    run.append_metrics({"kind": "step", "epoch": 0.5, "step": 1, "loss": -1})
    with open(run.path / "metrics.jsonl", "a") as handle:
        handle.write('{"kind": "st')
    run.append_metrics({"kind": "step", "epoch": 1, "step": 2, "loss": -2})
    records, note = run.read_metrics()
    assert [r["step"] for r in records] == [1, 2]
    assert note is not None and "1 damaged line(s) skipped (line 2 first)" in note
    assert "last line" not in note  # the damage is no longer the last line


def test_failed_write_keeps_previous_checkpoint(tmp_path: Path) -> None:
    run = create_run(tmp_path, Config(), "r")
    run.save_resume_state({"step": 1, "weights": torch.ones(3)})
    with pytest.raises(Exception):  # noqa: B017 - pickling a lambda fails mid-write
        run.save_resume_state({"step": 2, "bad": lambda: None})
    state = run.load_resume_state()
    assert state["step"] == 1 and torch.equal(state["weights"], torch.ones(3))
    assert [p.name for p in run.checkpoint_dir.iterdir()] == ["resume.pt"]  # no temp file left


def test_corrupt_checkpoints_are_reported(tmp_path: Path) -> None:
    run = create_run(tmp_path, Config(), "r")
    (run.checkpoint_dir / "resume.pt").write_bytes(b"\x80\x04 not a checkpoint")
    with pytest.raises(UserError, match="corrupt"):
        run.load_resume_state()
    path = run.save_weights(1, {"w": torch.arange(10.0)})
    assert torch.equal(run.load_weights(path)["w"], torch.arange(10.0))
    path.write_bytes(path.read_bytes()[:20])  # truncated
    with pytest.raises(UserError, match="corrupt"):
        run.load_weights(path)


class _Payload:
    """Unpickling this would create a file: a checkpoint must never run it."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {self.target}",))


def test_checkpoint_code_is_never_executed(tmp_path: Path) -> None:
    run = create_run(tmp_path, Config(), "r")
    target = tmp_path / "pwned"
    torch.save({"step": 1, "x": _Payload(str(target))}, run.checkpoint_dir / "resume.pt")
    with pytest.raises(UserError, match="corrupt"):
        run.load_resume_state()
    assert not target.exists()


def test_status_of_a_dead_process_reads_died(tmp_path: Path) -> None:
    run = create_run(tmp_path, Config(), "r")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run.update_status(state="running", pid=dead.pid)
    assert run.status()["state"] == "died"
    run.update_status(state="running", pid=os.getpid())
    assert run.status()["state"] == "running"
    (run.path / "status.json").write_text("{ torn")
    assert run.status()["state"] == "corrupt"


HOLD_LOCK = """
import sys, time
from pathlib import Path
from explorer.rundir.run import Run
Run(Path(sys.argv[1])).lock()
print("locked", flush=True)
time.sleep(600)
"""


def test_one_writer_lock_names_its_holder_and_dies_with_it(tmp_path: Path) -> None:
    run = create_run(tmp_path, Config(), "r")
    assert run.locked_by() is None
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(run.path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        assert run.locked_by() == holder.pid
        with pytest.raises(UserError, match=f"being written by process {holder.pid}") as err:
            run.lock()
        assert len(str(err.value).splitlines()) == 1
    finally:
        holder.kill()  # SIGKILL: no clean-up runs, the kernel drops the lock
        holder.wait()
    assert run.locked_by() is None
    run.lock()  # at once: no stale lock to clear
    assert run.locked_by() == os.getpid()
    run.lock()  # again in the same process: a no-op, not a conflict with itself
    run.unlock()
    assert run.locked_by() is None


def test_a_new_run_is_locked_before_its_files_are_written(tmp_path: Path) -> None:
    run = create_run(tmp_path, Config(), "r", lock=True)
    try:
        assert run.locked_by() == os.getpid()
        assert (run.path / ".lock").read_text().strip() == str(os.getpid())
    finally:
        run.unlock()
    assert (run.path / ".lock").read_text() == ""  # no stale pid after a release


def test_open_and_list(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        open_run(tmp_path / "nope")
    (tmp_path / "not-a-run").mkdir()
    with pytest.raises(UserError, match="not a run directory"):
        open_run(tmp_path / "not-a-run")
    create_run(tmp_path, Config(), "b")
    create_run(tmp_path, Config(), "a")
    assert [r.name for r in list_runs(tmp_path)] == ["a", "b"]
    assert list_runs(tmp_path / "missing") == []
