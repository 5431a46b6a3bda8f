"""Per-checkpoint analysis end to end: the trainer's hook, `explorer analyze`, aligned layouts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from explorer.analysis import checkpoint as checkpoint_analysis
from explorer.analysis.checkpoint import analyze_checkpoint
from explorer.analysis.run import analyze_run
from explorer.analysis.sample import evaluation_sample
from explorer.builders import build_model
from explorer.config import build_config
from explorer.data import load_dataset
from explorer.rundir.artifacts import load_all_analyses, load_analysis
from explorer.rundir.run import open_run
from tests.conftest import TINY, explorer

ANALYSIS = ["analysis_projection=pca", "analysis_samples=128"]


def _check_artifact(record: dict, test_labels: torch.Tensor) -> None:
    arrays = record["arrays"]
    # spectral features lie in the unit ball, so E[f fᵀ] has trace (= eigenvalue sum) at most 1
    assert arrays["graph_c_eigs"].sum() <= 1 + 1e-9
    assert arrays["projector_eigs_mean"].sum() <= 1 + 1e-9
    assert len(arrays["projector_eigs_mean"]) == 32  # min(batch 64, projector_out_dim 32)
    assert (arrays["projector_eigs_std"] >= 0).all()
    assert arrays["pca"].shape == (128, 2) and np.isfinite(arrays["pca"]).all()
    np.testing.assert_array_equal(arrays["labels"], test_labels[arrays["indices"]].numpy())
    probes = record["probes"]
    for probe in ("knn", "linear"):
        assert 0 <= probes[probe]["accuracy"] <= 1
        assert np.sum(probes[probe]["confusion"]) == 128
        assert len(probes[probe]["per_class_accuracy"]) == 6
    metrics = record["metrics"]
    assert 1 <= metrics["projector"]["rankme"] <= 32 and metrics["alignment"] >= 0
    assert metrics["graph"]["stationarity_residual"] >= 0
    assert set(metrics["cross"]) == {"n_above_0.5", "n_above_0.9"}  # RankMe/α need a matrix


def test_background_analysis_then_cli_skips_done_and_repairs_damaged(workdir: Path) -> None:
    explorer(
        "train",
        *TINY,
        "epochs=2",
        "analyze=background",
        *ANALYSIS,
        "--name",
        "bg",
        "--no-probe",
        "--no-progress",
        cwd=workdir,
        check=True,
    )
    run = open_run(workdir / "runs" / "bg")
    loaded, errors = load_all_analyses(run)
    assert sorted(loaded) == [1, 2] and errors == {}
    test = load_dataset("shapes", "test", limit=128, seed=0)
    for record in loaded.values():
        _check_artifact(record, test.labels)

    before = {p.name: p.stat().st_mtime_ns for p in (run.path / "analysis").glob("epoch-*")}
    npz = run.path / "analysis" / "epoch-0001.npz"
    npz.write_bytes(npz.read_bytes()[:100])  # truncated: counts as not done
    result = explorer("analyze", str(run.path), "--no-progress", cwd=workdir, check=True)
    assert result.stdout.splitlines()[0].split() == [
        "epoch",
        "RankMe",
        "alpha",
        "#eig>0.9",
        "kNN",
        "linear",
        "optimum",  # shapes runs: the share of the provable optimum on the exact graph
        "class",
        "R2",
    ]
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines[1:3]] == ["1", "2"]
    assert lines[3].startswith("optimum: share of the provable optimum")
    after = {p.name: p.stat().st_mtime_ns for p in (run.path / "analysis").glob("epoch-*")}
    assert after["epoch-0002.json"] == before["epoch-0002.json"]  # skipped: already done
    assert after["epoch-0001.json"] != before["epoch-0001.json"]  # recomputed
    repaired = load_analysis(run, 1)
    np.testing.assert_allclose(
        repaired["arrays"]["projector_eigs_mean"], loaded[1]["arrays"]["projector_eigs_mean"]
    )  # the evaluation sample and its views are the same every time

    # in-process, as the trainer's `end` mode does: the caller's random stream is untouched
    torch.manual_seed(123)
    state = torch.get_rng_state()
    analyze_run(run, checkpoint=run.weight_checkpoints()[1][1], force=True, progress=False)
    assert torch.equal(torch.get_rng_state(), state)


def test_end_mode_analyses_after_training(workdir: Path) -> None:
    explorer(
        "train",
        *TINY,
        "epochs=1",
        "analyze=end",
        *ANALYSIS,
        "--name",
        "end",
        "--no-probe",
        "--no-progress",
        cwd=workdir,
        check=True,
    )
    run = open_run(workdir / "runs" / "end")
    loaded, errors = load_all_analyses(run)
    assert list(loaded) == [1] and errors == {}
    assert "analysing the checkpoints" in (run.path / "train.log").read_text()


def test_checkpoint_views_come_from_build_views_and_rankme_from_every_embedding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = build_config(overrides=[*TINY, "batch_size=2"])
    train = load_dataset("shapes", "train", limit=96, seed=0)
    test = load_dataset("shapes", "test", limit=40, seed=0)
    sample = evaluation_sample(train, test, samples=64, seed=0)
    assert sample.train.factors is not None  # what graph views render from
    seen = []

    def spy(config, data, device):  # noqa: ANN001, ANN202
        seen.append(data)
        return build_views(config, data, device)

    build_views = checkpoint_analysis.build_views
    monkeypatch.setattr(checkpoint_analysis, "build_views", spy)
    torch.manual_seed(0)
    model = build_model(config, in_channels=3)
    state = torch.get_rng_state()
    record, arrays = analyze_checkpoint(model, sample, config, projections=("pca",))
    assert torch.equal(torch.get_rng_state(), state)
    assert seen == [sample.train] and record["n_views"] == 64
    assert len(arrays["projector_eigs_mean"]) == 2  # batch spectra: min(B, d)
    # RankMe of the 128 x 32 matrix of every evaluated embedding: not capped at B = 2
    assert 2.5 < record["metrics"]["projector"]["rankme"] <= 32
    assert record["metrics"]["projector"]["alpha_req"] is not None  # d = 32: ranks 11..32


@pytest.mark.slow
def test_umap_started_from_the_previous_layout_stays_close() -> None:
    from explorer.analysis.projection import align_to, umap_2d

    rng = np.random.default_rng(0)
    kind, position = rng.integers(0, 4, 300), rng.random(300)
    centres, directions = rng.normal(size=(4, 16)) * 3, rng.normal(size=(4, 16))
    x = centres[kind] + 3 * position[:, None] * directions[kind] + 0.1 * rng.normal(size=(300, 16))
    first = umap_2d(x.astype(np.float32), seed=0)
    moved = (x + 0.1 * rng.normal(size=x.shape)).astype(np.float32)  # the next checkpoint
    started = umap_2d(moved, first, seed=1)
    fresh = align_to(umap_2d(moved, seed=1).astype(np.float64), first)  # the best a fresh fit does
    scale = np.linalg.norm(first - first.mean(axis=0), axis=1).mean()
    assert np.abs(started.mean(axis=0) - first.mean(axis=0)).max() < 1e-3 * scale
    shift = np.median(np.linalg.norm(started - first, axis=1))
    assert shift < 0.3 * scale
    assert shift < np.median(np.linalg.norm(fresh - first, axis=1))


def test_the_analysis_reports_its_stages_and_the_train_page_shows_them(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 28, item 2: a checkpoint's analysis names each stage as it starts, in order; the
    trainer's record of it reads as the stage and the seconds spent, on the Train page too."""
    import os
    import re

    from streamlit.testing.v1 import AppTest

    from explorer.analysis.checkpoint import STAGES
    from explorer.rundir import lock
    from tests.conftest import DASHBOARD

    explorer("train", *TINY, "epochs=1", "analyze=off", *ANALYSIS, "--name", "staged",
             "--no-probe", "--no-progress", cwd=workdir, check=True)
    run = open_run(workdir / "runs" / "staged")
    heard: list[tuple[int, str]] = []
    analyze_run(run, progress=False, force=True,
                on_stage=lambda index, name: heard.append((index, name)))
    exact = run.config().dataset.startswith("shapes")  # its exact graph is the last stage
    assert heard == list(enumerate(STAGES))[: 4 if exact else 3], heard

    # the record the trainer keeps while it analyses, as this process holding the run
    lock.acquire(run.path)
    run.update_status(state="finished", pid=os.getpid())
    run.set_phase("analysing", 2, 4)
    run.set_stage(2, len(STAGES), STAGES[2])
    status = run.status()
    assert re.fullmatch(r"analysing checkpoint 2/4: 2-D layouts \(\d+ s\)", run.activity(status))
    assert run.phase_fraction(status) == pytest.approx((1 + 2 / len(STAGES)) / 4)
    monkeypatch.setenv("EXPLORER_RUNS_DIR", str(workdir / "runs"))
    page = AppTest.from_file(str(DASHBOARD / "train_page.py"), default_timeout=120)
    page.session_state["selected_run"] = "staged"
    page.run()
    assert not page.exception, [e.message for e in page.exception]
    bars = [bar for bar in page.get("progress") if "staged" in bar.text]
    assert bars and "now analysing checkpoint 2/4: 2-D layouts (" in bars[0].text
    assert abs(bars[0].value - 100 * (1 + 2 / len(STAGES)) / 4) <= 1  # a whole percent
    lock.release(run.path)
