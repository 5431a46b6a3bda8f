"""The run directory: the only code that reads or writes a run's files.

Layout of ``runs/<name>/`` (format :data:`FORMAT_VERSION`, documented in docs/RUN_FORMAT.md)::

    config.json                 {"format_version", "config": {...}, "versions": {...}, "created"}
    status.json                 {"state", "pid", "epoch", "total_epochs", "step", ...}
    metrics.jsonl               one JSON object per line: {"kind", "epoch", "step", "loss", ...}
    train.log                   the trainer's human-readable log
    probe.json                  probe results of the final checkpoint (and baselines)
    checkpoints/epoch-0005.safetensors   model weights for probing and analysis
    checkpoints/resume.pt       model, optimiser, schedule and RNG state for an exact resume
    STOP                        present while a stop has been requested
    .lock                       the writer's OS lock and pid (explorer.rundir.lock)
    analysis/epoch-0005.{json,npz}   per-checkpoint analysis (explorer.rundir.artifacts)

The JSON records and the checkpoints are written atomically (a temporary file, then
``os.replace``), so a crash leaves the previous version whole. ``metrics.jsonl`` and ``train.log``
are appended, so a killed writer can leave a torn last line: :meth:`Run.read_metrics` skips it and
says so, and the next append starts on a new line. Checkpoints never run code when read: weights
are safetensors and the resume state is read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from explorer.config import Config, config_from_dict
from explorer.errors import UserError, first_line
from explorer.rundir import lock

if TYPE_CHECKING:  # torch is imported where checkpoints are touched: listing runs (the
    import torch  # dashboard's first page) does not pay its ~1.5 s import

FORMAT_VERSION = 1
STATES = ("created", "running", "finished", "stopped", "failed")
# What the trainer process is doing (status.json's ``phase``): training, then, after a finished
# run's ``state`` says so, probing and analysing its checkpoints, then done (it exits).
PHASES = ("training", "probing", "analysing", "done")
#: An imported run's given features (explorer import FEATURES.npz), inside the run.
FEATURES_FILE = "imported/features.npz"
#: Where ``explorer import`` builds a run before it appears whole (:func:`staged_run`).
STAGING_DIR = ".staging"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@contextmanager
def _atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        with open(tmp, "rb+") as handle:  # flush to disk before the rename makes it visible
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON to ``path`` atomically (readers see the old file or the new)."""
    with _atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1) + "\n")


_write_json = write_json_atomic  # the name explorer.rundir.artifacts imports


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"{path} is corrupt (not valid JSON)") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} is corrupt (expected a JSON object)")
    return data


def package_versions() -> dict[str, str]:
    """The versions a run was made with, read from the installed packages' metadata (importing
    scikit-learn only to read its version cost four seconds of every run's start)."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    import numpy
    import torch

    versions = {"python": platform.python_version(), "torch": torch.__version__,
                "numpy": numpy.__version__}
    for name in ("torchvision", "scikit-learn"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "unknown"
    return versions


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Run:
    """Handle on one run directory; obtain it through :func:`create_run` or :func:`open_run`."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoints"

    # -- config and status -------------------------------------------------------------------
    def config(self) -> Config:
        data = _read_json(self.path / "config.json")
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise UserError(
                f"run {self.path} has format version {version}, this explorer reads version "
                f"{FORMAT_VERSION}; use the explorer version that wrote it"
            )
        return config_from_dict(data.get("config", {}), str(self.path / "config.json"))

    def status(self) -> dict[str, Any]:
        """The status record; a run whose process died while running reads as ``died``."""
        try:
            status = _read_json(self.path / "status.json")
        except UserError as err:
            return {"state": "corrupt", "last_error": str(err)}
        if status.get("state") == "running" and not pid_alive(status.get("pid")):
            status["state"] = "died"
        return status

    def activity(self, status: dict[str, Any] | None = None) -> str | None:
        """What the run's trainer process is doing now, e.g. ``"analysing checkpoint 3/10:
        2-D layouts (12 s)"``; ``None`` when no process works on the run (its ``phase`` is only
        true while the pid that wrote it is alive and holds the run's lock)."""
        status = self.status() if status is None else status
        phase, pid = status.get("phase"), status.get("pid")
        if phase not in PHASES or phase == "done" or not pid_alive(pid):
            return None
        if self.locked_by() not in (pid, -1):  # the pid was reused by another process
            return None
        if phase == "training":
            return "training" if status.get("state") == "running" else None
        done, total = status.get("phase_done"), status.get("phase_total")
        if phase == "analysing":
            what = (f"analysing checkpoint {done}/{total}"
                    if isinstance(done, int) and isinstance(total, int) and total
                    else "analysing the checkpoints")
            stage, started = status.get("stage"), status.get("stage_started")
            if isinstance(stage, str) and isinstance(started, (int, float)):
                return f"{what}: {stage} ({max(0.0, time.time() - started):.0f} s)"
            return what
        started = status.get("phase_started")
        spent = (f" ({max(0.0, time.time() - started):.0f} s)"
                 if isinstance(started, (int, float)) else "")
        return f"probing the last checkpoint{spent}"

    def phase_fraction(self, status: dict[str, Any]) -> float | None:
        """How far the probing or analysing phase is, from 0 to 1 (None: not counted): the
        checkpoints analysed, and the stages of the one under way."""
        done, total = status.get("phase_done"), status.get("phase_total")
        if status.get("phase") != "analysing" or not isinstance(done, int) or not total:
            return None
        index, count = status.get("stage_index"), status.get("stage_count")
        within = index / count if isinstance(index, int) and isinstance(count, int) and count \
            else 0.0
        return min(1.0, (done - 1 + within) / total)

    def set_phase(self, phase: str, done: int | None = None, total: int | None = None) -> None:
        """Record the trainer's phase (one of :data:`PHASES`), with ``done`` of ``total``
        items when it counts them (the checkpoint being analysed of all to analyse)."""
        self.update_status(phase=phase, phase_done=done, phase_total=total,
                           phase_started=time.time(), stage=None, stage_index=None,
                           stage_count=None, stage_started=None)

    def set_stage(self, index: int, count: int, name: str) -> None:
        """Record the stage under way within the phase's item (stage ``index`` of ``count``,
        from 0), with the time it started: a page shows it and the seconds spent."""
        self.update_status(stage=name, stage_index=index, stage_count=count,
                           stage_started=time.time())

    def update_status(self, **fields: Any) -> dict[str, Any]:
        path = self.path / "status.json"
        status = _read_json(path) if path.exists() else {}
        status.update(fields, updated=time.time())
        write_json_atomic(path, status)
        return status

    # -- metrics -------------------------------------------------------------------------------
    def append_metrics(self, record: dict[str, Any]) -> None:
        """Append one line. After a torn last line (a killed writer) it starts a new line, so
        the torn line stays alone and this record stays whole."""
        with open(self.path / "metrics.jsonl", "ab+") as handle:
            handle.seek(0, os.SEEK_END)
            if handle.tell():
                handle.seek(-1, os.SEEK_END)
                torn = handle.read(1) != b"\n"
                handle.seek(0, os.SEEK_END)
                if torn:
                    handle.write(b"\n")
            handle.write((json.dumps(record) + "\n").encode())

    def read_metrics(self) -> tuple[list[dict[str, Any]], str | None]:
        """Metric records in order, and a note when lines had to be skipped (else ``None``).

        A torn last line (a process killed mid-write) is skipped and the note says so; so is
        any other line that is not a JSON object, counted in the note.
        """
        path = self.path / "metrics.jsonl"
        if not path.exists():
            return [], None
        lines = path.read_text(errors="replace").splitlines()
        records, bad = [], []
        for number, line in enumerate(lines, 1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                record = None
            if isinstance(record, dict):
                records.append(record)
            elif line.strip():
                bad.append(number)
        if not bad:
            return records, None
        notes = []
        if bad[-1] == len(lines):
            notes.append("its last line is torn (a writer killed mid-line) and was skipped")
            bad.pop()
        if bad:
            notes.append(f"{len(bad)} damaged line(s) skipped (line {bad[0]} first)")
        return records, f"{path}: " + "; ".join(notes)

    def metrics(self) -> list[dict[str, Any]]:
        """Metric records in order; damaged lines are skipped (:meth:`read_metrics` says so)."""
        return self.read_metrics()[0]

    def rollback_metrics(self, step: int) -> str | None:
        """Drop records past ``step``: a killed process logged them after its last checkpoint,
        and the resumed one replays those steps and logs them again. Returns the reader's note
        on skipped lines (they are dropped too), else ``None``."""
        records, note = self.read_metrics()
        kept = [r for r in records if r.get("step", 0) <= step]
        with _atomic_path(self.path / "metrics.jsonl") as tmp:
            tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))
        return note

    # -- the writer's lock ---------------------------------------------------------------------
    def lock(self) -> None:
        """Become the run's one writer until :meth:`unlock` or exit (:mod:`explorer.rundir.lock`);
        a one-line :class:`UserError` names the pid of the process that already is."""
        try:
            lock.acquire(self.path)
        except OSError as err:
            raise UserError(f"cannot lock run {self.path}: {first_line(err)}") from None

    def unlock(self) -> None:
        lock.release(self.path)

    def locked_by(self) -> int | None:
        """The pid of the process writing this run (``-1``: not known yet), else ``None``."""
        return lock.holder(self.path)

    def record_config_change(self, config: Config, changes: dict[str, Any], step: int) -> None:
        """Save ``config`` as the run's config after a resume changed ``changes``
        (``{field: [old, new]}``), and append the change to ``config.json``'s ``changes``."""
        path = self.path / "config.json"
        data = _read_json(path)
        change = {"time": time.time(), "step": step, "changed": changes}
        history = [*data.get("changes", []), change]
        write_json_atomic(path, {**data, "config": config.to_dict(), "changes": history})

    # -- stop requests -------------------------------------------------------------------------
    def request_stop(self) -> None:
        (self.path / "STOP").touch()

    def stop_requested(self) -> bool:
        return (self.path / "STOP").exists()

    def clear_stop(self) -> None:
        (self.path / "STOP").unlink(missing_ok=True)

    # -- checkpoints ---------------------------------------------------------------------------
    def save_weights(self, epoch: int, state_dict: dict[str, torch.Tensor]) -> Path:
        path = self.checkpoint_dir / f"epoch-{epoch:04d}.safetensors"
        from safetensors.torch import save_file

        tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
        with _atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata={"epoch": str(epoch)})
        return path

    def weight_checkpoints(self) -> list[tuple[int, Path]]:
        """(epoch, path) of every model checkpoint, oldest first."""
        found = []
        for path in self.checkpoint_dir.glob("epoch-*.safetensors"):
            match = re.fullmatch(r"epoch-(\d+)\.safetensors", path.name)
            if match:
                found.append((int(match.group(1)), path))
        return sorted(found)

    def load_weights(self, path: Path) -> dict[str, torch.Tensor]:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as err:
            raise UserError(f"checkpoint {path} is corrupt or unreadable ({err})") from None

    def save_resume_state(self, state: dict[str, Any]) -> None:
        import torch

        with _atomic_path(self.checkpoint_dir / "resume.pt") as tmp:
            torch.save(state, tmp)

    def has_resume_state(self) -> bool:
        return (self.checkpoint_dir / "resume.pt").exists()

    def load_resume_state(self) -> dict[str, Any]:
        path = self.checkpoint_dir / "resume.pt"
        if not path.exists():
            raise UserError(f"run {self.path} has no resumable checkpoint ({path} is missing)")
        import torch

        try:
            # weights_only: a checkpoint is data; unpickling arbitrary objects could run code.
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises several types for damaged files
            raise UserError(f"checkpoint {path} is corrupt: {first_line(err)}") from None

    # -- imported runs (explorer import) ----------------------------------------------------------
    def imported(self) -> dict[str, Any] | None:
        """``config.json``'s ``imported`` record (where the encoder or features came from, what
        was loaded, the projector's spec), or None for a trained run."""
        record = _read_json(self.path / "config.json").get("imported")
        return record if isinstance(record, dict) else None

    def save_features(self, arrays: dict[str, Any]) -> None:
        """Write ``imported/features.npz`` atomically: an imported run's given features
        (``features`` (N, d), ``labels`` (N,), ``split`` (N,): 0 train, 1 test)."""
        import numpy as np

        path = self.path / FEATURES_FILE
        path.parent.mkdir(exist_ok=True)
        with _atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    def load_features(self) -> dict[str, Any]:
        """``imported/features.npz`` as NumPy arrays, read without pickle."""
        import numpy as np

        path = self.path / FEATURES_FILE
        try:
            with np.load(path, allow_pickle=False) as data:
                return {name: data[name] for name in data.files}
        except FileNotFoundError:
            raise UserError(f"{path} is missing: run {self.path} holds no imported features"
                            ) from None
        except (ValueError, OSError, EOFError, KeyError) as err:
            raise UserError(f"{path} is corrupt ({first_line(err)})") from None

    # -- probe results -------------------------------------------------------------------------
    def save_probe(self, results: dict[str, Any]) -> None:
        write_json_atomic(self.path / "probe.json", {"format_version": FORMAT_VERSION, **results})

    def probe(self) -> dict[str, Any] | None:
        path = self.path / "probe.json"
        if not path.exists():
            return None
        return _read_json(path)


def _default_name(config: Config) -> str:
    return f"{config.dataset}-{config.loss}-{time.strftime('%Y%m%d-%H%M%S')}"


def check_run_name(name: str) -> str:
    """``name`` if it is a plain directory name (so it cannot leave the runs directory)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise UserError(
            f"run name '{name}' is not allowed; use letters, digits, '.', '_' or '-' "
            "(at most 100 characters, not starting with a dot)"
        )
    return name


def run_path(runs_dir: str | Path, name: str) -> Path:
    """``runs_dir/name`` for a checked name: never a path outside ``runs_dir``."""
    return Path(runs_dir) / check_run_name(name)


def create_run(
    runs_dir: str | Path, config: Config, name: str | None = None, *, lock: bool = False,
    extra: dict[str, Any] | None = None,
) -> Run:
    """Make a new run directory; never reuses an existing one.

    ``lock``: take the writer's lock (:meth:`Run.lock`) before writing anything in it.
    ``extra``: further top-level keys of ``config.json`` (``imported``: :meth:`Run.imported`).
    """
    name = _default_name(config) if name is None else name
    path = run_path(runs_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir()
    except FileExistsError:
        raise UserError(
            f"run directory {path} already exists; choose another --name or resume it "
            f"with: explorer train --resume {path}"
        ) from None
    run = Run(path)
    if lock:
        run.lock()
    run.checkpoint_dir.mkdir()
    write_json_atomic(
        path / "config.json",
        {
            "format_version": FORMAT_VERSION,
            "config": config.to_dict(),
            "versions": package_versions(),
            "created": time.time(),
            **(extra or {}),
        },
    )
    run.update_status(state="created", epoch=0, total_epochs=config.epochs, step=0)
    return run


@contextmanager
def staged_run(
    runs_dir: str | Path, config: Config, name: str, extra: dict[str, Any] | None = None
) -> Iterator[Run]:
    """A new run built out of sight, then moved into ``runs_dir/name`` whole.

    The run is made in ``runs_dir/.staging/`` (which :func:`list_runs` does not look into, as it
    does not look into ``.launches``) and renamed into place when the block ends without an
    error; after an error the staged folder is deleted. So a half-written run never looks like
    a run, and an existing run is never overwritten (refused before and after).
    """
    import shutil

    target = run_path(runs_dir, name)
    if target.exists():
        raise UserError(f"run directory {target} already exists; choose another --name")
    staging = Path(runs_dir) / STAGING_DIR
    run = create_run(staging, config, f"{name}.{os.getpid()}", extra=extra)
    try:
        yield run
        try:
            target.mkdir()  # claims the name: a run made meanwhile stops us here
        except FileExistsError:
            raise UserError(f"run directory {target} appeared meanwhile; choose another --name"
                            ) from None
        os.replace(run.path, target)  # onto the empty folder we made: atomic
    finally:
        shutil.rmtree(run.path, ignore_errors=True)
        with suppress(OSError):  # another import is staging there, or it is gone
            staging.rmdir()


def open_run(path: str | Path) -> Run:
    """Open an existing run, with a clear error when ``path`` is not one."""
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"run directory {path} does not exist; list runs with: explorer runs")
    if not (path / "config.json").exists():
        raise UserError(f"{path} is not a run directory (no config.json)")
    return Run(path)


def list_runs(runs_dir: str | Path) -> list[Run]:
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    return [Run(p) for p in sorted(runs_dir.iterdir()) if (p / "config.json").is_file()]
