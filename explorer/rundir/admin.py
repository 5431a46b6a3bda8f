"""Run management (the Runs page's "Manage a run"): rename and delete a run, reinstall the demo
runs, read a run's full config with the changes its resumes made, and the Train form's starting
point for a copy of it.

Nothing here overwrites a run: a rename claims its new name with ``mkdir`` (which fails when the
name is taken, even by a run made in the same instant) before moving the run onto it, and a
reinstall skips every demo run whose name is taken. A run that a live process writes (it holds the
run's lock, :mod:`explorer.rundir.lock`) or that a launched trainer is about to resume cannot be
renamed or deleted; both hold the run's lock themselves while they work, so no trainer can take
it over halfway.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from explorer.config import Config, build_config, list_presets
from explorer.errors import UserError, first_line
from explorer.rundir import lock
from explorer.rundir.demo import DEMO_RUNS, copy_demo_sweeps
from explorer.rundir.launch import LAUNCH_DIR, launch_state
from explorer.rundir.run import Run, check_run_name, list_runs, open_run, run_path
from explorer.rundir.sweep import follow_run


@dataclass(frozen=True)
class ConfigChange:
    """One field a resume changed: at ``step``, from ``old`` to ``new`` (``time``: Unix
    seconds, or None when the record lacks it)."""

    step: int | None
    time: float | None
    field: str
    old: Any
    new: Any


@dataclass(frozen=True)
class ConfigHistory:
    """A run's config as it trains now, and every change its resumes made, oldest first."""

    config: dict[str, Any]
    changes: list[ConfigChange]


def _launch_files(runs_dir: Path, name: str) -> tuple[Path, Path]:
    folder = runs_dir / LAUNCH_DIR
    return folder / f"{name}.json", folder / f"{name}.log"


def writer_pid(runs_dir: str | Path, name: str) -> int | None:
    """The pid of the live process that writes the run ``name`` (``-1``: one holds its lock but
    has not written its pid yet), or of the trainer launched to resume it that has not taken it
    over yet; ``None`` when no process works on it."""
    runs_dir = Path(runs_dir)
    holder = Run(run_path(runs_dir, name)).locked_by()
    if holder is not None:
        return holder
    if launch_state(runs_dir, name) == "resuming":
        try:
            return int(json.loads(_launch_files(runs_dir, name)[0].read_text())["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return -1
    return None


def _refuse_if_running(runs_dir: Path, name: str, doing: str) -> None:
    pid = writer_pid(runs_dir, name)
    if pid is not None:
        who = f"process {pid}" if pid > 0 else "another process"
        raise UserError(f"run '{name}' is being written by {who}; stop it first (Stop on the "
                        f"Train page), then {doing} it")


@contextmanager
def _held(run_dir: Path, name: str, doing: str) -> Iterator[None]:
    """The run's writer lock for the block, so that no trainer takes the run over meanwhile."""
    run_dir = run_dir.resolve()  # released by this path once the run is moved or unlinked
    try:
        lock.acquire(run_dir, wait_s=0)
    except UserError:  # a trainer took it in the instant since the check
        raise UserError(f"run '{name}' is being written by another process; stop it first, "
                        f"then {doing} it") from None
    try:
        yield
    finally:
        lock.release(run_dir)


def rename_run(runs_dir: str | Path, old: str, new: str) -> Path:
    """Rename the run ``old`` to ``new`` (its launch record and log follow it, and any sweep
    manifest that names it); returns its new path. Refused, with a one-line
    :class:`UserError`, for an invalid or taken name and for a run that a live process
    writes."""
    runs_dir = Path(runs_dir)
    new = new.strip() if isinstance(new, str) else new
    source = open_run(run_path(runs_dir, old)).path
    target = run_path(runs_dir, new)
    if new == old:
        raise UserError(f"run '{old}' already has that name; type a new one")
    if target.exists() or os.path.lexists(target):
        raise UserError(f"a run named '{new}' already exists in {runs_dir}; choose another name "
                        "(nothing is ever overwritten)")
    if _launch_files(runs_dir, new)[0].exists():
        raise UserError(f"a launch named '{new}' is recorded in {runs_dir / LAUNCH_DIR}; choose "
                        "another name")
    _refuse_if_running(runs_dir, old, "rename")
    with _held(source, old, "rename"):
        try:
            target.mkdir()  # claims the name: fails if anything took it since the check
        except FileExistsError:
            raise UserError(f"a run named '{new}' already exists in {runs_dir}; choose another "
                            "name (nothing is ever overwritten)") from None
        try:
            os.rename(source, target)  # atomic; replaces only the empty directory just made
        except OSError as err:
            target.rmdir()
            raise UserError(f"cannot rename run '{old}': {first_line(err)}") from None
    follow_run(runs_dir, old, new)  # a sweep that names the run names it by its new name
    for before, after in zip(_launch_files(runs_dir, old), _launch_files(runs_dir, new),
                             strict=True):
        if before.exists() and not after.exists():
            os.rename(before, after)
    return target


def delete_run(runs_dir: str | Path, name: str) -> None:
    """Delete the run ``name``: its directory, its launch record and log, and its place in any
    sweep manifest. Refused, with a
    one-line :class:`UserError` naming the pid, while a live process writes it."""
    runs_dir = Path(runs_dir)
    path = open_run(run_path(runs_dir, name)).path
    _refuse_if_running(runs_dir, name, "delete")
    with _held(path, name, "delete"):
        try:
            if path.is_symlink():  # a run linked in from elsewhere: the link goes, not the run
                path.unlink()
            else:
                # config.json first: a delete cut short leaves a folder no page lists as a run.
                (path / "config.json").unlink(missing_ok=True)
                shutil.rmtree(path)
        except OSError as err:
            raise UserError(f"cannot delete run '{name}': {first_line(err)}") from None
    for launch_file in _launch_files(runs_dir, name):
        launch_file.unlink(missing_ok=True)
    follow_run(runs_dir, name, None)  # no sweep names a run that is gone


def reinstall_demo_runs(
    runs_dir: str | Path, source: Path = DEMO_RUNS
) -> tuple[list[str], list[str]]:
    """Copy back the demo runs missing from ``runs_dir`` (and the demo sweeps' manifests);
    returns the names restored and the names skipped because a run (or anything else) of that
    name is there: a run of the user's is never overwritten, even one named like a demo run."""
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    restored, skipped = [], []
    for demo in list_runs(source):
        target = runs_dir / demo.name
        try:
            target.mkdir()  # claims the name, or finds it taken
        except FileExistsError:
            skipped.append(demo.name)
            continue
        shutil.copytree(demo.path, target, dirs_exist_ok=True)
        restored.append(demo.name)
    copy_demo_sweeps(runs_dir, source)
    return restored, skipped


def config_history(run: Run) -> ConfigHistory:
    """The run's full config (field to value, in :class:`Config`'s order) and the changes its
    resumes recorded (:meth:`Run.record_config_change`), one per field changed."""
    config = run.config().to_dict()  # a one-line UserError when config.json is damaged
    try:
        records = json.loads((run.path / "config.json").read_text()).get("changes") or []
    except (OSError, ValueError, AttributeError):
        records = []
    changes = []
    for record in records if isinstance(records, list) else []:
        if not isinstance(record, dict) or not isinstance(record.get("changed"), dict):
            continue
        for field, pair in record["changed"].items():
            old, new = pair if isinstance(pair, list) and len(pair) == 2 else (None, pair)
            changes.append(ConfigChange(record.get("step"), record.get("time"), field, old, new))
    return ConfigHistory(config, changes)


def closest_preset(config: Config) -> str:
    """The preset that differs from ``config`` in the fewest fields (the one it was most likely
    made from): the Train form starts from it when a run's config is copied into it."""
    wanted = config.to_dict()

    def distance(preset: str) -> int:
        try:
            values = build_config(preset).to_dict()
        except UserError:
            return len(wanted) + 1
        return sum(values.get(key) != value for key, value in wanted.items())

    return min(list_presets(), key=distance)


def copy_name(runs_dir: str | Path, name: str) -> str:
    """A free run name for a copy of ``name``: ``NAME-copy``, then ``NAME-copy-2``, ..."""
    runs_dir = Path(runs_dir)
    for number in range(1, 1000):
        suffix = "-copy" if number == 1 else f"-copy-{number}"
        candidate = check_run_name(name[: 100 - len(suffix)] + suffix)
        if not (runs_dir / candidate).exists() and \
                not _launch_files(runs_dir, candidate)[0].exists():
            return candidate
    raise UserError(f"no free name for a copy of '{name}'; type one on the Train page")
