"""Screenshots of every dashboard page on the shipped demo runs: ``make screenshots`` (into
assets/, for the README). Usage: python -m explorer_dashboard.screenshots OUT_DIR [URL_PATH ...]
(default: every page; needs Playwright and Chromium, as the browser tests do)"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

from explorer.graphs.grid_reading import GRIDS
from explorer.rundir.demo import DEMO_RUNS
from explorer_dashboard.grid_panel import grid_label
from explorer_dashboard.serve import (
    CHROMIUM_ARGS,
    PAGES,
    READY,
    box_select,
    choose,
    open_page,
    start_server,
    stop_server,
)


def main(out: Path, only: list[str] | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        shutil.copytree(DEMO_RUNS, runs)
        process, url = start_server(runs)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                                     args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 2000})
                for path, title in PAGES.items():
                    if only and path not in only:
                        continue
                    # the Graph page is long: a taller window (Streamlit scrolls inside it)
                    page.set_viewport_size({"width": 1400, "height": 2400 if path == "graph"
                                            else 2000})
                    open_page(page, url, path)
                    if path == "embeddings":  # a box selection: its images and class mix
                        box_select(page, (0.02, 0.02), (0.5, 0.98))
                        page.get_by_text("selected images").first.wait_for(timeout=60_000)
                        page.locator('[data-testid="stImage"] img').first.wait_for(timeout=60_000)
                        page.wait_for_function(READY)
                    if path == "graph":  # a trained table: its loss at the optimum line
                        page.get_by_role("button", name="Train").click()
                        # stopped at convergence, or at the last step
                        page.get_by_text(re.compile(r"^Stopped at step|^Step 3,000 of 3,000")) \
                            .first.wait_for(timeout=180_000)
                        page.wait_for_function(READY)
                    page.screenshot(path=str(out / f"{title.lower()}.png"), full_page=True)
                    print(f"saved {out / f'{title.lower()}.png'}")
                    if path == "graph":
                        whole_grid(page, out / "graph-whole-grid.png")
                browser.close()
        finally:
            stop_server(process)


def whole_grid(page: Any, path: Path) -> None:
    """The Graph page's Shapes mode on the whole grid at class-change p 0.7: the matrix-free
    reading of 46,800 images, with class changes inside the look-alike pairs."""
    page.get_by_text("Shapes", exact=True).click()
    page.wait_for_function(READY)
    slider = page.locator('[data-testid="stSlider"]', has_text="class-change p")
    for _ in range(70):  # 0.01 a step
        slider.get_by_role("slider").press("ArrowRight")
    page.wait_for_timeout(1000)
    page.wait_for_function(READY)
    choose(page, "images", grid_label(len(GRIDS) - 1))
    page.get_by_text("W by class").first.wait_for(timeout=120_000)
    page.wait_for_function(READY)
    page.screenshot(path=str(path), full_page=True)
    print(f"saved {path}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "assets"), sys.argv[2:])
