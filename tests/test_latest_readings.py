"""A newer request supersedes the stale one (issue 28, item 2): the Graph page's slider moved
through many values computes the last one, not every value it passed; and the whole grid's
reading reports its stages in order, and stops at the next one when told to."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import CancelledError

import pytest

from explorer.graphs import grid_reading
from explorer_dashboard.latest import LatestReadings, Superseded


class Gated:
    """Work that records which keys began and waits, in its first stage, until released."""

    def __init__(self) -> None:
        self.began: list[str] = []
        self.release = threading.Event()
        self.waiting = threading.Event()

    def __call__(self, key: str, on_stage: Callable[[int, str], None]) -> str:
        self.began.append(key)
        on_stage(0, "first")
        self.waiting.set()
        assert self.release.wait(30)
        on_stage(1, "second")  # a superseded reading stops here
        return f"read {key}"


def test_a_viewers_newest_request_supersedes_its_unfinished_ones() -> None:
    work = Gated()
    readings = LatestReadings(work)
    first = readings.request("0.1", "viewer")
    assert work.waiting.wait(30)
    assert first.stage == (0, "first") and first.elapsed() >= 0
    passed = readings.request("0.2", "viewer")  # queued behind the first, never wanted now
    last = readings.request("0.3", "viewer")
    work.release.set()
    assert last.future.result(30) == "read 0.3"
    with pytest.raises(Superseded):
        first.future.result(30)
    with pytest.raises(CancelledError):
        passed.future.result(30)
    assert work.began == ["0.1", "0.3"]  # 0.2 never began
    assert readings.request("0.3", "viewer") is last  # a finished reading is kept
    again = readings.request("0.1", "viewer")  # a superseded one is computed anew if asked
    assert again is not first and again.future.result(30) == "read 0.1"


def test_a_reading_another_viewer_waits_for_is_not_superseded() -> None:
    work = Gated()
    readings = LatestReadings(work)
    shared = readings.request("0.1", "a")
    readings.request("0.1", "b")
    assert work.waiting.wait(30)
    mine = readings.request("0.5", "a")  # b still waits for 0.1
    work.release.set()
    assert shared.future.result(30) == "read 0.1" and mine.future.result(30) == "read 0.5"
    assert work.began == ["0.1", "0.5"]


def test_the_grid_reading_reports_its_stages_in_order_and_stops_when_told() -> None:
    heard: list[tuple[int, str]] = []
    reading = grid_reading.grid_reading(0, 0.5, 0.5, 0.8, 0.1,
                                        on_stage=lambda i, name: heard.append((i, name)))
    assert heard == list(enumerate(grid_reading.STAGES)) and len(heard) == 4
    assert reading.num_nodes > 0

    class Stop(Exception):
        pass

    def stop_at_eigenpairs(index: int, name: str) -> None:
        if index == 1:
            raise Stop(name)

    with pytest.raises(Stop, match="LOBPCG"):
        grid_reading.grid_reading(0, 0.5, 0.5, 0.8, 0.1, on_stage=stop_at_eigenpairs)
