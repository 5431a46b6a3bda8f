"""Render time of every dashboard page in Chromium, now and at a baseline commit, one after the
other on the same machine (issue 28, item 9: every page within 2 s, the first visit within 3 s).

For each side (the baseline commit, checked out into a temporary git worktree, and this working
tree) the side's own code writes the runs the browser test uses (20 checkpoints x 5,000 points
from ``tests/dashboard_runs.py``, plus the shipped ``shapes-spectral`` demo run), serves the
dashboard as that commit served it, and a fresh Chromium page opens the Runs page (the first
visit, which pays the server's imports; ``--rounds`` times, each on a server just started),
then every page ``--rounds`` times. A page is timed
from navigation until it is drawn (``explorer_dashboard.serve.open_page``: its title, its first
chart, table or message, no spinner left). The table gives the median per page and the ratio
now / baseline: the machines' speed varies, a ratio measured in one run holds where a time does
not.

    .venv/bin/python benchmarks/bench_pages.py                       # baseline: b84f1d7
    .venv/bin/python benchmarks/bench_pages.py --baseline HEAD~5 --rounds 5

Needs Playwright and Chromium (``make browser``), as the browser tests do.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from explorer_dashboard.serve import (  # noqa: E402
    CHROMIUM_ARGS,
    PAGES,
    free_port,
    open_page,
    stop_server,
)

#: The commit before issue 28's work on the dashboard (its render times are the issue's).
BASELINE = "b84f1d7"
CHROMIUM = Path(os.environ.get("EXPLORER_CHROMIUM", "/usr/bin/chromium"))
WRITE_RUNS = """
import shutil, sys
from pathlib import Path
from explorer.rundir.demo import DEMO_RUNS
from tests.dashboard_runs import synthetic_run
runs = Path(sys.argv[1])
synthetic_run(runs, "synthetic-20x5000")
shutil.copytree(DEMO_RUNS / "shapes-spectral", runs / "demo-spectral")
"""


def serve(tree: Path, runs: Path) -> tuple[subprocess.Popen[str], str]:
    """The dashboard of the code in ``tree``, as that code is started, on a free port."""
    package = "explorer_dashboard" if (tree / "explorer_dashboard").is_dir() else "dashboard"
    port = free_port()
    env = {**os.environ, "EXPLORER_RUNS_DIR": str(runs), "PYTHONPATH": str(tree)}
    log = open(runs.parent / "server.log", "w")  # noqa: SIM115 (the server's lifetime)
    process = subprocess.Popen(
        [sys.executable, "-m", package, "--server.port", str(port), "--server.headless", "true"],
        cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                return process, url
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server of {tree} did not start; see {log.name}") from None
            time.sleep(0.5)


def measure(tree: Path, work: Path, rounds: int, browser: object) -> dict[str, list[float]]:
    """Seconds per page (and the first visit) of the dashboard in ``tree``: each first visit on
    a server just started and in a fresh browser context, ``rounds`` of them."""
    runs = work / "runs"
    subprocess.run([sys.executable, "-c", WRITE_RUNS, str(runs)], cwd=tree, check=True,
                   env={**os.environ, "PYTHONPATH": str(tree)})
    times: dict[str, list[float]] = {"first visit (Runs)": []}
    for round_ in range(rounds):
        process, url = serve(tree, runs)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
            times["first visit (Runs)"].append(open_page(page, url, "", timeout_ms=180_000))
            if round_ == rounds - 1:  # every page, on the last server
                for _ in range(rounds):
                    for path, title in PAGES.items():
                        times.setdefault(title, []).append(
                            open_page(page, url, path, timeout_ms=180_000))
            page.close()
        finally:
            stop_server(process)
    return times


@contextlib.contextmanager
def beside_baseline(commit: str, prefix: str) -> Iterator[tuple[Path, Path, Any]]:
    """A work folder, ``commit`` checked out in a git worktree inside it, and a headless
    Chromium: ``(work, baseline_tree, browser)``; all removed afterwards."""
    if not CHROMIUM.exists():
        raise SystemExit(f"no Chromium at {CHROMIUM}: run `make browser` (apt-get install "
                         "chromium) or set EXPLORER_CHROMIUM")
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix=prefix))
    tree = work / "baseline"
    subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(tree), commit],
                   cwd=ROOT, check=True)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                                 args=CHROMIUM_ARGS)
            yield work, tree, browser
            browser.close()
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT,
                       check=False)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default=BASELINE, help=f"commit (default {BASELINE})")
    parser.add_argument("--rounds", type=int, default=3,
                        help="visits per page, and first visits (default 3)")
    args = parser.parse_args()
    with beside_baseline(args.baseline, "bench-pages-") as (work, old_tree, browser):
        (work / "old").mkdir()
        (work / "new").mkdir()
        old = measure(old_tree, work / "old", args.rounds, browser)
        new = measure(ROOT, work / "new", args.rounds, browser)

    print(f"render time per page, median of {args.rounds} visits (the first visit: each on a "
          f"server just started, {args.rounds} servers); "
          f"20 checkpoints x 5,000 points; baseline {args.baseline}")
    print(f"{'page':<22}{'baseline s':>12}{'now s':>10}{'now/base':>10}  goal")
    for name in new:
        before, after = statistics.median(old[name]), statistics.median(new[name])
        goal = 3.0 if name.startswith("first") else 2.0
        verdict = "met" if after <= goal else "missed"
        print(f"{name:<22}{before:>12.2f}{after:>10.2f}{after / before:>10.2f}  "
              f"<= {goal:.0f} s {verdict}")


if __name__ == "__main__":
    main()
