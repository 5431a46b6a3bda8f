"""The exact graph's graph-only quantities kept on disk (explorer.analysis.graph_cache): a later
process reads them instead of computing, the values read are the ones computed, and a changed
key, changed code or a damaged entry computes afresh."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from explorer.analysis import graph_cache, theorem
from explorer.graphs import downstream_error as DE
from explorer.graphs import optimum as O
from explorer.graphs.interface import DenseGraph

#: The dense 840-node sub-grid graph with a class change (the Graph page's tests use it too).
KEY: theorem.GraphKey = (None, (0.5, 0.5, 0.8, 0.7), 0)
K, MU = 6, 2.0


def _boom(*_: Any, **__: Any) -> Any:
    raise AssertionError("computed although the disk cache holds it")


def _quantities() -> tuple[np.ndarray, np.ndarray, theorem.BallCurve, theorem.GraphGuarantee]:
    _, gammas, vectors = theorem._decomposed_graph(KEY)
    return gammas, vectors, theorem.ball_curve(KEY, K, MU), theorem.graph_guarantee(KEY, K)


def _assert_same(a: tuple, b: tuple) -> None:
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[2] == b[2]  # a frozen dataclass of floats: equal to the last bit
    for left, right in ((a[3].labelling, b[3].labelling), (a[3].optimum, b[3].optimum)):
        for name in vars(left):
            np.testing.assert_array_equal(getattr(left, name), getattr(right, name), name)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh disk cache, and this process's caches emptied before and after."""
    monkeypatch.setenv(graph_cache.CACHE_ENV, str(tmp_path))
    theorem.clear_caches()
    yield tmp_path / "theorem"
    theorem.clear_caches()


def _forbid_computing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(DenseGraph, "top_eigenpairs", _boom)
    monkeypatch.setattr(O, "reachable_optima", _boom)
    monkeypatch.setattr(DE, "labelling_bound", _boom)
    monkeypatch.setattr(DE, "error_bracket", _boom)


def test_the_values_read_back_are_the_ones_computed(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    computed = _quantities()
    assert sorted(p.name.split("-")[0] for p in cache.glob("*.npz")) == [
        "ball", "eigenpairs", "guarantee"]
    theorem.clear_caches()  # as a new process starts
    with monkeypatch.context() as patched:
        _forbid_computing(patched)
        read = _quantities()
    _assert_same(computed, read)


def test_a_changed_key_or_changed_code_computes_afresh(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _quantities()
    calls = []
    original = O.reachable_optima

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[2])
        return original(*args, **kwargs)

    monkeypatch.setattr(O, "reachable_optima", counted)
    theorem.clear_caches()
    theorem.ball_curve(KEY, K, MU)
    assert calls == []  # read
    theorem.ball_curve(KEY, K, 4.0)  # another μ: another entry
    assert len(calls) == 1 and 4.0 in calls[0]
    monkeypatch.setattr(theorem, "CURVE_ITERATIONS", theorem.CURVE_ITERATIONS - 1)
    theorem.clear_caches()
    theorem.ball_curve(KEY, K, MU)  # the solver's settings are part of the key
    assert len(calls) == 2
    monkeypatch.setattr(graph_cache, "code_digest", lambda: "edited code")
    theorem.clear_caches()
    theorem.ball_curve(KEY, K, 4.0)  # changed code: nothing of the old code's is read
    assert len(calls) == 3


@pytest.mark.parametrize("damage", ["garbage", "truncated", "another key", "edited values"])
def test_a_damaged_entry_is_computed_again_and_replaced(
    cache: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    computed = _quantities()
    for path in cache.glob("*.npz"):
        if damage == "garbage":
            path.write_bytes(b"not an npz")
        elif damage == "truncated":
            path.write_bytes(path.read_bytes()[:200])
        else:
            with np.load(path, allow_pickle=False) as stored:
                arrays = {name: stored[name] for name in stored.files}
            if damage == "another key":
                arrays["__key__"] = np.array(str(arrays["__key__"]).replace("kind", "kind "))
            else:  # a value changed, the file otherwise whole: the checksum catches it
                arrays = {n: a if n.startswith("__") or a.size == 0 else a + 1
                          for n, a in arrays.items()}
            with path.open("wb") as out:
                np.savez(out, **arrays)
    theorem.clear_caches()
    again = _quantities()
    _assert_same(computed, again)
    theorem.clear_caches()
    with monkeypatch.context() as patched:  # the entries were rewritten whole
        _forbid_computing(patched)
        _assert_same(computed, _quantities())


def test_off_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(graph_cache.CACHE_ENV, "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    theorem.clear_caches()
    try:
        theorem.ball_curve(KEY, K, MU)
    finally:
        theorem.clear_caches()
    assert graph_cache.cache_dir() is None and not list(tmp_path.rglob("*.npz"))


def test_the_default_folder_is_the_users_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(graph_cache.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "/somewhere")
    assert graph_cache.cache_dir() == Path("/somewhere/spectral-explorer/theorem")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert graph_cache.cache_dir() == Path.home() / ".cache/spectral-explorer/theorem"


READ_IN_ANOTHER_PROCESS = textwrap.dedent("""
    import json
    from explorer.analysis import theorem
    from explorer.graphs import downstream_error as DE, optimum as O
    from explorer.graphs.interface import DenseGraph
    def boom(*args, **kwargs):
        raise AssertionError("computed although the disk cache holds it")
    DenseGraph.top_eigenpairs = boom
    O.reachable_optima = DE.labelling_bound = DE.error_bracket = boom
    key = (None, (0.5, 0.5, 0.8, 0.7), 0)
    _, gammas, _ = theorem._decomposed_graph(key)
    curve = theorem.ball_curve(key, {k}, {mu})
    optimum = theorem.graph_guarantee(key, {k}).optimum
    print(json.dumps([gammas.tolist(), curve.losses, optimum.upper, optimum.lower]))
""")


def test_a_second_process_reads_what_the_first_computed(cache: Path) -> None:
    """The second process cannot compute (its solvers raise): it passes only by reading."""
    gammas, _, curve, known = _quantities()
    result = subprocess.run(
        [sys.executable, "-c", READ_IN_ANOTHER_PROCESS.format(k=K, mu=MU)],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, graph_cache.CACHE_ENV: str(cache.parent)})
    assert result.returncode == 0, result.stderr
    read_gammas, losses, upper, lower = json.loads(result.stdout)
    np.testing.assert_array_equal(read_gammas, gammas)
    assert tuple(losses) == curve.losses
    assert (upper, lower) == (known.optimum.upper, known.optimum.lower)


def test_the_guarantee_on_one_blas_thread_is_the_same_reading(cache: Path) -> None:
    """exact_metrics computes the network's guarantee with BLAS on one thread (ten times faster
    on a loaded machine): the record is the one computed with the machine's threads."""
    graph, gammas, vectors = theorem._decomposed_graph(KEY)
    scored = theorem.RunGraph(graph, True, "", gammas, vectors, KEY)
    f = np.random.default_rng(0).normal(size=(graph.num_nodes, K))
    assert theorem._one_blas_thread(theorem.guarantee_record, scored, f, -1.0, -2.0) == (
        theorem.guarantee_record(scored, f, -1.0, -2.0))
