"""One writer per run: an exclusive OS file lock on ``RUN_DIR/.lock``, held for the writer's life.

The trainer takes the lock before it writes anything in a run (for a new run, right after the
directory is made; for a resume, before its checks) and keeps it until it exits. The lock is
``fcntl.flock`` on an open file, so the kernel drops it when the process dies, however it dies
(a SIGKILL included): a killed trainer's run can be resumed at once, with no stale lock to clear.
The holder writes its pid into the file, so a refused process can name it.

Readers (the dashboard) ask :func:`holder`, which takes a *shared* lock for an instant; a trainer
that meets that instant retries for :data:`ACQUIRE_WAIT_S` seconds before giving up.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from explorer.errors import UserError

LOCK_NAME = ".lock"
ACQUIRE_WAIT_S = 2.0
# Locks this process holds, by lock file: flock conflicts between two descriptors even in one
# process, so a second acquire here must reuse the first.
_HELD: dict[Path, int] = {}


def _lock_path(run_dir: Path) -> Path:
    return (Path(run_dir) / LOCK_NAME).resolve()


def _read_pid(fd: int) -> int | None:
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None


def acquire(run_dir: Path, wait_s: float = ACQUIRE_WAIT_S) -> None:
    """Take the run's lock for this process, or raise a one-line :class:`UserError`."""
    path = _lock_path(run_dir)
    if path in _HELD:
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by child processes
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                pid = _read_pid(fd)
                os.close(fd)
                who = f"process {pid}" if pid else "another process"
                raise UserError(
                    f"run {Path(run_dir)} is being written by {who}; wait for it to exit or "
                    "stop it first"
                ) from None
            time.sleep(0.05)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _HELD[path] = fd


def release(run_dir: Path) -> None:
    """Give the lock back (a no-op when this process does not hold it)."""
    fd = _HELD.pop(_lock_path(run_dir), None)
    if fd is not None:
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def release_all() -> None:
    """Give back every lock this process holds."""
    for path in list(_HELD):
        release(path.parent)


def holder(run_dir: Path) -> int | None:
    """The pid of the process holding the run's lock (``-1`` if it has not written it yet), or
    ``None`` when no process holds it. This process's own lock counts."""
    path = _lock_path(run_dir)
    if path in _HELD:
        return os.getpid()
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # no lock file: never trained, or not a run we can read
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd) or -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
