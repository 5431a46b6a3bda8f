"""Slow readings computed beside the page, the newest request of each viewer first.

A slider moved with the keyboard asks for every value it passes. Queued one after the other on
a worker, the readings of values nobody looks at any more came first: minutes before the value
the user stopped at. Here each viewer (a browser session) holds at most one unfinished reading:
asking for another supersedes the last one it asked for, unless another viewer waits for it
too. A superseded reading that has not started is cancelled; one under way stops at its next
stage (the work reports its stages through ``on_stage``, which raises :class:`Superseded`).
Finished readings are kept, a few, for whoever asks again.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")
#: ``work(key, on_stage)``: the reading of ``key``; calls ``on_stage(i, name)`` as stage i starts.
Work = Callable[[Any, Callable[[int, str], None]], T]


class Superseded(Exception):
    """Raised inside a reading whose viewers all asked for another one since."""


@dataclass(eq=False)
class Job(Generic[T]):
    """One reading: its result to come, and what it is doing now."""

    key: Hashable
    future: Future[T] = field(default_factory=Future)
    viewers: set[str] = field(default_factory=set)
    started: float | None = None  # time.monotonic() when the work began
    stage: tuple[int, str] | None = None  # (index, name) of the stage under way
    superseded: threading.Event = field(default_factory=threading.Event)

    def elapsed(self) -> float:
        return 0.0 if self.started is None else time.monotonic() - self.started


class LatestReadings(Generic[T]):
    """Readings of ``work`` on one worker thread, each viewer's newest request first."""

    def __init__(self, work: Work[T], keep: int = 8, name: str = "reading") -> None:
        self._work, self._keep = work, keep
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._jobs: OrderedDict[Hashable, Job[T]] = OrderedDict()
        self._lock = threading.Lock()

    def request(self, key: Hashable, viewer: str) -> Job[T]:
        """The reading of ``key`` for ``viewer``: finished, under way or queued now. The
        viewer's previous unfinished request, if nobody else waits for it, is superseded."""
        with self._lock:
            for other in list(self._jobs.values()):
                if other.key != key and viewer in other.viewers and not other.future.done():
                    other.viewers.discard(viewer)
                    if not other.viewers:
                        self._supersede(other)
            job = self._jobs.get(key)
            if job is None or job.superseded.is_set():
                job = Job(key)
                self._jobs[key] = job
                job.future = self._pool.submit(self._run, job)
            job.viewers.add(viewer)
            self._jobs.move_to_end(key)
            finished = [k for k, j in self._jobs.items() if j.future.done()]
            for old in finished[: max(0, len(finished) - self._keep)]:
                del self._jobs[old]
            return job

    def _supersede(self, job: Job[T]) -> None:
        job.superseded.set()
        job.future.cancel()  # only a reading that has not started; a running one stops itself
        self._jobs.pop(job.key, None)

    def _run(self, job: Job[T]) -> T:
        job.started = time.monotonic()

        def on_stage(index: int, name: str) -> None:
            if job.superseded.is_set():
                raise Superseded(f"the reading of {job.key} is no longer wanted")
            job.stage = (index, name)

        return self._work(job.key, on_stage)
