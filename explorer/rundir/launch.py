"""Launch, stop and resume training as detached processes (what the dashboard's Train page calls).

A launched trainer is an ordinary ``python -m explorer train`` in its own session, so it outlives
the page, the browser and the dashboard's server. Before its run directory exists (while the data
loads), or before a resumed trainer takes its run over, the only trace of it is a launch record
(:func:`launch_state` reads it)::

    <runs_dir>/.launches/<name>.json    {"name", "pid", "command", "started"}
    <runs_dir>/.launches/<name>.log     the trainer's stdout and stderr (its errors land here)

Stopping goes through the run's ``STOP`` file (the trainer checkpoints and exits cleanly), never a
signal, so a stop requested from any machine that sees the directory works the same way. Resuming
is refused while another process holds the run's writer lock (:mod:`explorer.rundir.lock`); a second
trainer started in the instant before the first takes it exits with status 2 and one line naming
the holder's pid (in its launch log).

:func:`explorer_command` is the one way this package starts ``python -m explorer`` children
(here and in :mod:`explorer.rundir.background`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from explorer.config import Config, build_config
from explorer.errors import UserError
from explorer.rundir.run import (
    Run,
    check_run_name,
    open_run,
    pid_alive,
    run_path,
    write_json_atomic,
)

LAUNCH_DIR = ".launches"
#: The folder that holds this copy of the package (the repository, or site-packages).
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Launch:
    """A trainer process started by :func:`launch_training` or :func:`resume_training`."""

    name: str
    pid: int
    log_path: Path


def _launch_paths(runs_dir: Path, name: str) -> tuple[Path, Path]:
    folder = runs_dir / LAUNCH_DIR
    return folder / f"{name}.json", folder / f"{name}.log"


def validate_launch(
    runs_dir: str | Path, name: str, preset: str | None, overrides: dict[str, Any]
) -> Config:
    """The config a launch would train, or a :class:`UserError` with the CLI's own message,
    in the form's words ("epochs='abc' in the form is not a valid int (a whole number)")."""
    check_run_name(name)
    path = run_path(runs_dir, name)
    if path.exists() or _launch_paths(Path(runs_dir), name)[0].exists():
        raise UserError(f"a run named '{name}' already exists in {runs_dir}; choose another name")
    return build_config(preset, None, overrides, where="the form")


def explorer_command(*args: str) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of ``python -m explorer ARGS`` with this interpreter,
    importing this copy of the package, its output unbuffered (it goes to a log file)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return [sys.executable, "-m", "explorer", *args], env


def _spawn(runs_dir: Path, name: str, args: list[str]) -> Launch:
    record_path, log_path = _launch_paths(runs_dir, name)
    record_path.parent.mkdir(parents=True, exist_ok=True)
    command, env = explorer_command("train", "--no-progress", *args)
    with open(log_path, "a") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # survives the dashboard's server and its signals
            env=env,
        )
    # Reap the child when it exits, or it would linger as a zombie that looks alive.
    threading.Thread(target=process.wait, daemon=True).start()
    record = {"name": name, "pid": process.pid, "command": command, "started": time.time()}
    write_json_atomic(record_path, record)
    return Launch(name, process.pid, log_path)


def launch_training(
    runs_dir: str | Path, name: str, preset: str | None, overrides: dict[str, Any]
) -> Launch:
    """Validate, then start ``explorer train --preset PRESET key=value ... --name NAME``."""
    runs_dir = Path(runs_dir).resolve()
    config = validate_launch(runs_dir, name, preset, overrides)
    args = ["--runs-dir", str(runs_dir), "--name", name]
    if preset:
        args += ["--preset", preset]
    defaults = build_config(preset, None, {})
    changed = {k: v for k, v in config.to_dict().items() if v != getattr(defaults, k)}
    args += [f"{key}={_format_value(value)}" for key, value in changed.items()]
    return _spawn(runs_dir, name, args)


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def resume_training(run: Run, changes: dict[str, Any] | None = None) -> Launch:
    """Continue a run in a new detached process, as ``explorer train --resume`` would
    (:func:`explorer.rundir.checkpoint.resume_plan`: a stopped, died or failed run where it
    stopped, a finished one with more ``epochs``); ``changes`` may set the optimisation fields a
    resume allows (:data:`explorer.rundir.checkpoint.RESUMABLE`)."""
    # Imported here: checkpoint imports torch, which listing and launching runs do not need.
    from explorer.rundir.checkpoint import TrainState, resume_plan

    holder = run.locked_by()
    if holder is not None:
        who = f"process {holder}" if holder > 0 else "another process"
        raise UserError(f"run {run.name} is being written by {who}; wait for it to exit")
    try:  # fail here, with its message, when the checkpoint is unusable
        done = TrainState.from_dict(run.load_resume_state()).epoch
    except (KeyError, TypeError, ValueError):
        raise UserError(f"checkpoint of {run.path} is damaged (no step counters)") from None
    # the CLI's own policy and messages: a finished run continues with more epochs
    resume_plan(run.name, run.status().get("state"), run.config(), dict(changes or {}), done)
    args = ["--resume", str(run.path.resolve())]
    args += [f"{key}={_format_value(value)}" for key, value in (changes or {}).items()]
    return _spawn(run.path.parent, run.name, args)


def stop_training(run: Run) -> None:
    """Ask the trainer to checkpoint and exit at its next step."""
    if run.status().get("state") != "running":
        raise UserError(f"run {run.name} is not running")
    run.request_stop()


def launch_log(runs_dir: str | Path, name: str, lines: int = 40) -> str:
    """The last ``lines`` lines the trainer printed ('' when it was not launched from here)."""
    log_path = _launch_paths(Path(runs_dir), name)[1]
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def launch_state(runs_dir: str | Path, name: str) -> str | None:
    """What the last trainer launched from here for ``name`` does, while it has not taken the
    run over (written its status with its pid):

    - ``starting``: a new run's trainer loads its data (no run directory yet);
    - ``failed to start``: it exited before creating the run directory;
    - ``resuming``: a resumed run's trainer loads its data and checkpoint;
    - ``failed to resume``: it exited without touching the run (its reason is in its log, e.g.
      another trainer held the run);
    - ``None``: no launch record, or the launched trainer has taken the run over (the run's
      status says the rest), or the run has been written since.
    """
    record = _read_record(Path(runs_dir), name)
    if record is None:
        return None
    status_path = run_path(runs_dir, name) / "status.json"
    alive = pid_alive(record["pid"])
    if "--resume" not in record.get("command", []):  # a new run: its status file is its own
        if status_path.exists():
            return None
        return "starting" if alive else "failed to start"
    try:
        status = json.loads(status_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None  # a damaged or deleted run: the run's own state says so
    if not isinstance(status, dict) or status.get("pid") == record["pid"]:
        return None  # the trainer took the run over
    written, started = status.get("updated"), record.get("started")
    if not all(isinstance(t, (int, float)) for t in (written, started)) or written > started:
        return None  # the run was written since the launch (by another trainer): not ours
    return "resuming" if alive else "failed to resume"


def forget_launch(runs_dir: str | Path, name: str) -> None:
    """Dismiss a launch that failed: a new run's record and log go (the run never existed); a
    resume's record only (its log goes on with the run's other launches)."""
    state = launch_state(runs_dir, name)
    if state not in ("failed to start", "failed to resume"):
        raise UserError(f"launch '{name}' did not fail; nothing to dismiss")
    record, log = _launch_paths(Path(runs_dir), check_run_name(name))
    record.unlink(missing_ok=True)
    if state == "failed to start":
        log.unlink(missing_ok=True)


def pending_launches(runs_dir: str | Path) -> list[str]:
    """Names of launches whose run directory does not exist (yet)."""
    folder = Path(runs_dir) / LAUNCH_DIR
    names = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
    names = [n for n in names if _read_record(Path(runs_dir), n)]  # skip stray files
    return [n for n in names if not (run_path(runs_dir, n) / "status.json").exists()]


def _read_record(runs_dir: Path, name: str) -> dict[str, Any] | None:
    """The launch record of ``name``; ``None`` when there is none, or a stray or damaged file
    stands in its place (a name no run could have, or not a record)."""
    try:
        check_run_name(name)
        record = json.loads(_launch_paths(runs_dir, name)[0].read_text())
    except (UserError, OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("pid"), int):
        return None
    return record


def open_named_run(runs_dir: str | Path, name: str) -> Run:
    """The run ``name`` under ``runs_dir``; the name cannot point outside it."""
    check_run_name(name)
    return open_run(run_path(runs_dir, name))
