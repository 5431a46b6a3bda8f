"""The run summaries behind the Runs table and the Train page's summary of a finished run."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from explorer.config import build_config
from explorer.readings.overview import optimum_share, share_history, summarize
from explorer.rundir.artifacts import analysed_epochs, load_analysis
from explorer.rundir.demo import DEMO_RUNS
from explorer.rundir.run import Run, create_run
from tests.conftest import DASHBOARD
from tests.dashboard_runs import vega_charts


def test_the_share_of_the_optimum_is_read_from_the_latest_exact_record(tmp_path: Path) -> None:
    run = Run(shutil.copytree(DEMO_RUNS / "shapes-image", tmp_path / "image"))
    *earlier, last = analysed_epochs(run)
    assert earlier  # a torn latest artifact falls back to the one before
    share, epoch = optimum_share(run)
    record = load_analysis(run, last)
    assert epoch == last and share == 1 - record["exact"]["gap"] and share < 0  # worse than f = 0
    (run.path / "analysis" / f"epoch-{last:04d}.json").write_text('{"format_version": 3, "ex')
    share, epoch = optimum_share(run)
    assert epoch == earlier[-1] and share == 1 - load_analysis(run, earlier[-1])["exact"]["gap"]
    summary = summarize(run)
    config = run.config()
    assert (summary.share, summary.share_epoch) == (share, earlier[-1])
    assert (summary.augment, summary.lr, summary.batch_size) == (
        config.augment,
        config.lr,
        config.batch_size,
    )


def test_a_run_without_an_exact_analysis_has_no_share(tmp_path: Path) -> None:
    run = create_run(tmp_path, build_config("shapes-demo"), name="fresh")
    assert optimum_share(run) == (None, None)
    (run.path / "analysis").mkdir()
    (run.path / "analysis" / "epoch-0001.json").write_text(json.dumps({"format_version": 3}))
    assert optimum_share(run) == (None, None) and summarize(run).share is None


def test_the_runs_page_overlays_the_share_of_the_optimum_of_the_chosen_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = tmp_path / "runs"
    for demo in ("shapes-image", "shapes-spectral"):  # one below f = 0, one near the optimum
        shutil.copytree(
            DEMO_RUNS / demo, runs / demo, ignore=shutil.ignore_patterns("*.safetensors")
        )
    monkeypatch.setenv("EXPLORER_RUNS_DIR", str(runs))
    main = sys.modules["__main__"]  # AppTest replaces it with the page script
    try:
        app = AppTest.from_file(str(DASHBOARD / "runs_page.py"), default_timeout=60)
        app.run()
    finally:
        sys.modules["__main__"] = main
    assert not app.exception, [e.message for e in app.exception]
    assert not app.get("plotly_chart")  # the first page's charts are Vega-Lite
    spec, data = next((spec, data) for spec, data in vega_charts(app) if "layer" in spec
                      and "share" in json.dumps(spec))  # the curves are panels: vconcat
    rows = data["rows"]
    line = spec["layer"][-1]["encoding"]
    colours = dict(zip(line["color"]["scale"]["domain"], line["color"]["scale"]["range"],
                       strict=True))
    assert set(colours) == {r["run"] for r in rows} == {"shapes-image", "shapes-spectral"}
    assert colours["shapes-image"] != colours["shapes-spectral"]
    for name in colours:
        history = share_history(Run(runs / name))
        assert history
        drawn = [r for r in rows if r["run"] == name]
        assert [r["epoch"] for r in drawn] == [epoch for epoch, _ in history]
        assert [r["value"] for r in drawn] == pytest.approx([100 * s for _, s in history])
    low, high = line["y"]["scale"]["domain"]
    values = [r["value"] for r in rows]
    assert low < min(values) < 0 and max(values) < 100 < high


def test_the_overlay_opens_on_the_demo_trio_and_the_newest_run(tmp_path) -> None:
    import os

    from explorer.readings.overview import overlay_default

    names = ["a-mine", "shapes-image", "shapes-simclr", "shapes-simsiam", "shapes-spectral",
             "z-older"]
    for age, name in enumerate(names):  # a-mine is the newest, z-older the oldest
        (tmp_path / name).mkdir()
        config = tmp_path / name / "config.json"
        config.write_text("{}")
        os.utime(config, (1_000_000 - age, 1_000_000 - age))
    chosen = overlay_default(names, tmp_path)
    assert chosen == ["shapes-spectral", "shapes-simclr", "shapes-simsiam", "a-mine"]
    # without the demo runs: the three newest
    mine = ["a-mine", "z-older", "shapes-image"]
    assert overlay_default(mine, tmp_path) == ["z-older", "shapes-image", "a-mine"]
