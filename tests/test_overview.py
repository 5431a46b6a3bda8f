"""The run summaries behind the Runs table and the Train page's summary of a finished run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from explorer.artifacts import load_analysis
from explorer.config import build_config
from explorer.demo import DEMO_RUNS
from explorer.overview import optimum_share, summarize
from explorer.runs import Run, create_run


def test_the_share_of_the_optimum_is_read_from_the_latest_exact_record(tmp_path: Path) -> None:
    run = Run(shutil.copytree(DEMO_RUNS / "shapes-image", tmp_path / "image"))
    share, epoch = optimum_share(run)
    record = load_analysis(run, 450)
    assert epoch == 450 and share == 1 - record["exact"]["gap"] and share < 0  # worse than f = 0
    (run.path / "analysis" / "epoch-0450.json").write_text('{"format_version": 3, "ex')  # torn
    share, epoch = optimum_share(run)
    assert epoch == 360 and share == 1 - load_analysis(run, 360)["exact"]["gap"]
    summary = summarize(run)
    config = run.config()
    assert (summary.share, summary.share_epoch) == (share, 360)
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
