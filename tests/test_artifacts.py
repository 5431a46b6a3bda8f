"""The analysis artifact format: round trip, and clear errors that leave the rest readable."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from explorer.config import build_config
from explorer.errors import UserError
from explorer.rundir.artifacts import (
    ANALYSIS_FORMAT_VERSION,
    analysed_epochs,
    has_analysis,
    load_all_analyses,
    load_analysis,
    save_analysis,
)
from explorer.rundir.run import Run, create_run
from tests.conftest import TINY


@pytest.fixture
def run(tmp_path: Path) -> Run:
    return create_run(tmp_path / "runs", build_config(overrides=TINY), "a")


def _arrays(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "projector_eigs_mean": rng.random(32),
        "pca": rng.normal(size=(50, 2)).astype(np.float32),
        "labels": rng.integers(0, 6, size=50),
        "indices": np.arange(50),
    }


def _save(run: Run, epoch: int) -> dict[str, np.ndarray]:
    arrays = _arrays(epoch)
    record = {"metrics": {"projector": {"rankme": 3.5}}, "projections": ["pca"]}
    save_analysis(run, epoch, record, arrays)
    return arrays


def test_round_trip_keeps_every_array_and_scalar(run: Run) -> None:
    arrays = _save(run, 5)
    loaded = load_analysis(run, 5)
    assert loaded["format_version"] == ANALYSIS_FORMAT_VERSION and loaded["epoch"] == 5
    assert loaded["metrics"] == {"projector": {"rankme": 3.5}}
    assert set(loaded["arrays"]) == set(arrays)
    for name, value in arrays.items():
        np.testing.assert_array_equal(loaded["arrays"][name], value)
        assert loaded["arrays"][name].dtype == value.dtype
    assert analysed_epochs(run) == [5]
    assert has_analysis(run, 5, ("pca",)) and not has_analysis(run, 5, ("pca", "umap"))
    assert sorted(p.name for p in (run.path / "analysis").iterdir()) == [
        "epoch-0005.json",
        "epoch-0005.npz",
    ]  # no temporary files left behind


def test_object_arrays_are_refused_so_reading_never_needs_pickle(run: Run) -> None:
    with pytest.raises(ValueError, match="dtype object"):
        save_analysis(run, 1, {}, {"bad": np.array([{"a": 1}], dtype=object)})


def test_truncated_npz_is_a_clear_error_and_the_others_still_load(run: Run) -> None:
    for epoch in (1, 2, 3):
        _save(run, epoch)
    npz = run.path / "analysis" / "epoch-0002.npz"
    npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 2])
    with pytest.raises(UserError, match=r"epoch-0002\.npz is truncated or corrupt"):
        load_analysis(run, 2)
    loaded, errors = load_all_analyses(run)
    assert sorted(loaded) == [1, 3] and list(errors) == [2]
    assert "epoch-0002.npz" in errors[2]
    assert not has_analysis(run, 2) and has_analysis(run, 1)


def test_unknown_version_names_the_version_and_the_file(run: Run) -> None:
    _save(run, 1)
    _save(run, 2)
    path = run.path / "analysis" / "epoch-0001.json"
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "format_version": 99}))
    with pytest.raises(UserError, match=r"epoch-0001\.json has analysis format version 99"):
        load_analysis(run, 1)
    loaded, errors = load_all_analyses(run)
    assert list(loaded) == [2] and "version 99" in errors[1]


@pytest.mark.parametrize("damage", ["corrupt-json", "missing-npz", "missing-array"])
def test_other_damage_is_reported_per_checkpoint(run: Run, damage: str) -> None:
    _save(run, 1)
    _save(run, 2)
    json_path = run.path / "analysis" / "epoch-0002.json"
    npz_path = run.path / "analysis" / "epoch-0002.npz"
    if damage == "corrupt-json":
        json_path.write_text('{"format_version": 1, "epo')
        expected = "not valid JSON"
    elif damage == "missing-npz":
        npz_path.unlink()
        expected = "is missing"
    else:
        with open(npz_path, "wb") as handle:
            np.savez(handle, pca=np.zeros((50, 2)))
        expected = "lacks the arrays"
    with pytest.raises(UserError, match=expected):
        load_analysis(run, 2)
    loaded, errors = load_all_analyses(run)
    assert list(loaded) == [1] and expected in errors[2] and "epoch-0002" in errors[2]


def test_no_artifacts_is_an_empty_result(run: Run) -> None:
    assert analysed_epochs(run) == [] and load_all_analyses(run) == ({}, {})
