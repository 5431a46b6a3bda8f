"""A checkpoint's analysis read as types (explorer.rundir.records), every format the project
wrote, checked against the committed JSON read with plain ``json.load``.

The fixtures are artifacts as the project wrote them, taken from git history unchanged
(``git show COMMIT:PATH``), laid out as run directories (``analysis/epoch-NNNN.{json,npz}``):

- ``analysis-v1``: 64163fa ``demo/runs/shapes-spectral/analysis/epoch-0010`` (format 1);
- ``analysis-v2``: ea06755 ``demo/runs/shapes-spectral/analysis/epoch-0090`` (format 2);
- ``analysis-v3``: cd31d5e ``explorer/demo_runs/shapes-spectral/analysis/epoch-0450`` (format 3,
  before the guarantee's bracket).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from explorer.config import build_config
from explorer.errors import UserError
from explorer.rundir.artifacts import (
    ANALYSIS_FORMAT_VERSION,
    has_analysis,
    load_analysis,
    load_record,
    read_all_analyses,
    read_analysis,
    read_record,
    save_analysis,
)
from explorer.rundir.demo import DEMO_RUNS
from explorer.rundir.records import NEAR_ONE, AnalysisRecord, analysis_record
from explorer.rundir.run import Run, create_run
from tests.conftest import ROOT, TINY

FIXTURES = ROOT / "tests" / "fixtures"
FORMATS = (1, 2, 3)  # the older formats, one committed artifact each


def _fixture(version: int) -> tuple[Run, int, dict[str, Any]]:
    """(run, epoch, the JSON as committed) of the format-``version`` fixture."""
    (path,) = (FIXTURES / f"analysis-v{version}" / "analysis").glob("epoch-*.json")
    stored = json.loads(path.read_text())
    assert stored["format_version"] == version
    return Run(path.parent.parent), stored["epoch"], stored


def assert_reads_as_stored(stored: dict[str, Any], record: AnalysisRecord) -> None:
    """Every number a reader uses, typed, against the JSON key it was stored under (the key names
    of each format as docs/RUN_FORMAT.md gives them)."""
    version = stored["format_version"]
    assert record.format_version == version and record.epoch == stored["epoch"]
    assert record.checkpoint == stored["checkpoint"] and record.mu == stored["mu"]
    assert record.classes == tuple(stored["classes"])
    assert record.projections == tuple(stored["projections"])
    alpha_key = "alpha_req" if version >= 4 else "alpha"  # α-ReQ's name in each format
    residual_key = "stationarity_residual" if version >= 3 else "optimum_gap"
    kinds = {kind: values for kind, values in stored["metrics"].items()
             if isinstance(values, dict) and kind != "features"}
    assert {"projector", "backbone", "cross", "graph"} <= set(kinds) == set(record.metrics)
    for kind, values in kinds.items():
        typed = record.metrics[kind]
        assert typed.rankme == values.get("rankme") and typed.alpha_req == values.get(alpha_key)
        assert typed.stationarity_residual == values.get(residual_key)
        assert typed.above == {0.5: values["n_above_0.5"], 0.9: values["n_above_0.9"]}
        if version >= 4:
            assert "alpha" not in values  # only Assumption 3.5's α is called alpha
    assert record.metrics["projector"].alpha_req is not None  # present in every format
    assert record.alignment == stored["metrics"]["alignment"]
    assert record.uniformity == stored["metrics"]["uniformity"]
    features = stored["metrics"].get("features")
    if features is None:
        assert record.features is None
    else:
        assert (record.features.loss, record.features.scale, record.features.mu) == (
            features["loss"], features["scale"], features["mu"])
    for key, projector in (("probes", False), ("probes_projector", True)):
        typed_probes = record.probes_projector if projector else record.probes
        if key not in stored:
            assert projector and typed_probes is None
            continue
        assert typed_probes is not None and set(typed_probes) == set(stored[key]) == {"linear",
                                                                                      "knn"}
        for kind, result in stored[key].items():
            assert record.accuracy(kind, projector=projector) == result["accuracy"]
            assert list(typed_probes[kind].per_class_accuracy) == result["per_class_accuracy"]
            assert [list(row) for row in typed_probes[kind].confusion] == result["confusion"]
    reading = stored.get("projector_features") or {}
    assert (record.projector_reading, record.projector_mu) == (reading.get("reading"),
                                                               reading.get("mu"))
    _assert_exact_reads_as_stored(stored.get("exact"), record)


def _assert_exact_reads_as_stored(exact: dict[str, Any] | None, record: AnalysisRecord) -> None:
    if exact is None:
        assert record.exact is None
        return
    typed = record.exact
    assert typed is not None
    for key in ("loss", "optimum", "reachable_optimum", "gap", "reachable_gap", "mu",
                "feature_scale", "max_optimal_sq_norm", "class_r2", "ball_binds"):
        assert getattr(typed, key) == exact[key], key
    assert typed.share == 1 - exact["gap"] and typed.reachable_share == 1 - exact["reachable_gap"]
    assert typed.span_chance == exact.get("span_chance")
    assert typed.reachable_certified == exact.get("reachable_certified", True)
    graph = exact["graph"]
    assert (typed.graph.own, typed.graph.description, typed.graph.nodes, typed.graph.k) == (
        graph["own"], graph["description"], graph["nodes"], graph["k"])
    assert list(typed.ball_curve[0]) == exact["ball_curve"]["mu"]
    assert list(typed.ball_curve[1]) == exact["ball_curve"]["loss"]
    assert [(b.first, b.size, b.gamma, b.r2) for b in typed.blocks] == [
        (b["first"], b["size"], b["gamma"], b["r2"]) for b in exact["blocks"]]
    assert list(typed.reachable_c_eigs) == exact.get("reachable_c_eigs", [])
    tie = exact.get("tie")
    assert (typed.tie is None) == (not tie)
    if tie:
        assert (typed.tie.first, typed.tie.last, typed.tie.gamma) == (
            tie["first"], tie["last"], tie["gamma"])
    stored = exact.get("guarantee")
    if stored is None:
        assert typed.guarantee is None
        return
    g = typed.guarantee
    assert g is not None and g.k == stored["k"] and g.gamma_next == stored["gamma_k1"]
    assert g.alpha == pytest.approx(stored["alpha"], abs=1e-12)  # 1.1e-16 is 0
    assert g.network.upper == stored["error"] and g.optimum.upper == stored["optimum_error"]
    assert g.network.lower == stored.get("error_lower")
    assert g.optimum.lower == stored.get("optimum_error_lower")
    # the proven γ_{k+1} bound, in its closed form (docs/THEORY.md); records before the
    # bracket stored another form, records since store this one
    proven = 8 * stored["alpha"] / (1 - stored["gamma_k1"]) + 2 * stored["alpha"]
    assert g.bound == pytest.approx(proven, abs=1e-12)
    if stored.get("error_definition") == "best head":
        assert g.bound == pytest.approx(stored["bound"], rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("version", FORMATS)
def test_each_older_format_reads_as_the_numbers_it_stored(version: int) -> None:
    run, epoch, stored = _fixture(version)
    record = read_analysis(run, epoch)
    assert_reads_as_stored(stored, record)
    with np.load(run.path / "analysis" / f"epoch-{epoch:04d}.npz") as npz:
        assert set(record.arrays) == set(npz.files) == set(stored["arrays"])
        for name in npz.files:
            np.testing.assert_array_equal(record.arrays[name], npz[name])
    assert_reads_as_stored(stored, read_record(run, epoch))  # the record alone: no arrays
    assert read_record(run, epoch).arrays == {}
    raw = load_record(run, epoch)
    assert raw == stored  # the dict readers get the JSON as it was written
    assert load_analysis(run, epoch)["metrics"] == stored["metrics"]


def test_each_format_names_its_keys_as_documented() -> None:
    """The renames, one by one: α-ReQ was ``alpha`` up to format 3, the residual ``optimum_gap``
    up to format 2; format 1 has no exact record, format 2 no guarantee."""
    first, second, third = (_fixture(v) for v in FORMATS)
    for run, epoch, stored in (first, second, third):
        record = read_analysis(run, epoch)
        for kind in ("projector", "backbone"):
            assert record.metrics[kind].alpha_req == stored["metrics"][kind]["alpha"]
    for run, epoch, stored in (first, second):
        residual = read_record(run, epoch).metrics["graph"].stationarity_residual
        assert residual == stored["metrics"]["graph"]["optimum_gap"] is not None
    assert "exact" not in first[2] and read_record(*first[:2]).exact is None
    exact = read_record(*second[:2]).exact
    assert exact is not None and exact.guarantee is None and exact.span_chance is None
    assert exact.share == 1 - second[2]["exact"]["gap"]
    guarantee = read_record(*third[:2]).exact.guarantee
    assert guarantee is not None and not guarantee.bracketed  # before the bracket


def test_older_formats_reach_the_pages_with_dashes_where_they_lack_a_value() -> None:
    from explorer.readings.overview import optimum_share
    from explorer.readings.spectrum_table import MISSING, spectrum_table

    run, epoch, stored = _fixture(2)
    rows = {r["features"].split()[0]: r for r in spectrum_table(read_analysis(run, epoch))}
    assert rows["projector"]["α (α-ReQ)"] == f"{stored['metrics']['projector']['alpha']:.2f}"
    assert rows["cross-view"]["RankMe"] == MISSING  # format 2 measured no RankMe there
    assert rows["graph"]["C₊ = C² residual (stationarity)"] == (
        f"{stored['metrics']['graph']['optimum_gap']:.3f}")
    assert optimum_share(run) == (1 - stored["exact"]["gap"], epoch)


@pytest.mark.parametrize("version", FORMATS)
def test_the_spectra_lie_in_the_ball_the_record_names(version: int) -> None:
    """tr E[f fᵀ] = E‖f‖² ≤ μ of :attr:`AnalysisRecord.ball_mu` (format 1: the unit ball, its
    features divided by √μ), so at most the record's cap of eigenvalues reach NEAR_ONE."""
    run, epoch, _ = _fixture(version)
    record = read_analysis(run, epoch)
    eigs = record.arrays["graph_c_eigs"]
    assert record.ball_mu is not None and eigs.sum() <= record.ball_mu * (1 + 1e-9)
    assert record.eigenvalue_cap == int(np.floor(record.ball_mu / NEAR_ONE + 1e-9))
    assert np.sum(eigs >= NEAR_ONE) <= record.eigenvalue_cap


def test_explorer_analyze_recomputes_formats_1_and_2_and_keeps_3() -> None:
    for version, kept in ((1, False), (2, False), (3, True)):
        run, epoch, _ = _fixture(version)
        assert has_analysis(run, epoch) is kept


def test_every_demo_run_reads_as_its_committed_json() -> None:
    paths = sorted(DEMO_RUNS.glob("*/analysis/epoch-*.json"))
    assert len(paths) >= 11  # eleven demo runs, every one analysed
    runs = sorted({p.parent.parent for p in paths})
    read = 0
    for path in runs:
        records, errors = read_all_analyses(Run(path))
        assert not errors and records
        for epoch, record in records.items():
            stored = json.loads((path / "analysis" / f"epoch-{epoch:04d}.json").read_text())
            assert_reads_as_stored(stored, record)
            read += 1
    assert read == len(paths)


def test_an_unknown_future_format_is_refused_with_the_file_and_the_fix(tmp_path: Path) -> None:
    run = Run(shutil.copytree(FIXTURES / "analysis-v3", tmp_path / "run"))
    (path,) = (run.path / "analysis").glob("epoch-*.json")
    epoch = int(path.stem.split("-")[1])
    path.write_text(json.dumps({**json.loads(path.read_text()), "format_version": 5}))
    for read in (read_analysis, read_record, load_analysis, load_record):
        with pytest.raises(UserError) as err:
            read(run, epoch)
        message = str(err.value)
        assert "\n" not in message and str(path) in message and "version 5" in message
        assert f"explorer analyze {run.path} --force" in message
    records, errors = read_all_analyses(run)
    assert records == {} and str(path) in errors[epoch]
    with pytest.raises(UserError, match="version 5"):
        analysis_record({"format_version": 5})


def test_a_fresh_format_4_record_round_trips(tmp_path: Path) -> None:
    """The writer's own metrics (add_view_metrics on random views) with the exact record of a
    demo run, written by save_analysis and read back typed."""
    from explorer.analysis.checkpoint import ViewOutputs, add_view_metrics, json_ready

    config = build_config(overrides=TINY)
    run = create_run(tmp_path / "runs", config, "fresh")
    generator = torch.Generator().manual_seed(0)
    out = ViewOutputs(*(torch.randn(128, size, generator=generator) for size in (48, 48, 32, 32)))
    record: dict[str, Any] = {"classes": ["a", "b"], "mu": config.mu, "projections": ["pca"]}
    arrays: dict[str, np.ndarray] = {"pca": np.zeros((4, 2), dtype=np.float32)}
    add_view_metrics(out, config, record, arrays)
    demo = Run(DEMO_RUNS / "shapes-spectral")
    shipped = read_analysis(demo, max(read_all_analyses(demo)[0]))
    record["exact"] = load_record(demo, shipped.epoch)["exact"]  # unchanged since format 3
    record["probes"] = {"linear": {"accuracy": 0.75, "per_class_accuracy": [0.5, 1.0],
                                   "confusion": [[1, 1], [0, 2]]},
                        "knn": {"accuracy": 0.5, "per_class_accuracy": [0.0, 1.0],
                                "confusion": [[0, 2], [0, 2]]}}
    record["checkpoint"] = "epoch-0007.safetensors"
    save_analysis(run, 7, json_ready(record), arrays)

    stored = json.loads((run.path / "analysis" / "epoch-0007.json").read_text())
    assert stored["format_version"] == ANALYSIS_FORMAT_VERSION == 4
    assert "alpha_req" in stored["metrics"]["projector"]
    assert "alpha" not in stored["metrics"]["projector"]
    typed = read_analysis(run, 7)
    assert_reads_as_stored(stored, typed)
    assert typed.metrics["projector"].alpha_req == record["metrics"]["projector"]["alpha_req"]
    assert typed.exact == shipped.exact  # the same exact record, whichever format holds it
    assert has_analysis(run, 7, ("pca",))
    assert analysis_record(json_ready(record)).metrics == typed.metrics  # in memory: format 4
