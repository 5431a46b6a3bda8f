"""The demo runs shipped as package data (``explorer/demo_runs/``): real runs of the
``shapes-demo`` presets, produced by this package (``make demo-runs`` rebuilds them), so the
dashboard has something to show at once."""

from __future__ import annotations

import shutil
from pathlib import Path

from explorer.rundir.run import list_runs
from explorer.rundir.sweep import sweeps_dir

DEMO_RUNS = Path(__file__).resolve().parents[1] / "demo_runs"


def install_demo_runs(runs_dir: str | Path, source: Path = DEMO_RUNS) -> list[str]:
    """Copy the demo runs, and the manifests of the demo sweeps (``.sweeps/*.json``, so the
    Sweeps page has its sweep on first load), into an empty ``runs_dir``; returns the run names
    copied.

    A runs directory that already holds a run is left alone (the user's runs are theirs).
    """
    runs_dir = Path(runs_dir)
    if list_runs(runs_dir) or not source.is_dir():
        return []
    runs_dir.mkdir(parents=True, exist_ok=True)
    copied = []
    for run in list_runs(source):
        target = runs_dir / run.name
        if not target.exists():
            shutil.copytree(run.path, target)
            copied.append(run.name)
    copy_demo_sweeps(runs_dir, source)
    return copied


def copy_demo_sweeps(runs_dir: Path, source: Path = DEMO_RUNS) -> None:
    """Copy the demo sweeps' manifests (``.sweeps/*.json``) that ``runs_dir`` lacks; never over
    one it has."""
    manifests = sweeps_dir(source)
    if manifests.is_dir():
        sweeps_dir(runs_dir).mkdir(exist_ok=True)
        for manifest in sorted(manifests.glob("*.json")):
            target = sweeps_dir(runs_dir) / manifest.name
            if not target.exists():
                shutil.copyfile(manifest, target)
