"""Start the dashboard on a free localhost port and drive it in Chromium: shared by the browser
tests and the screenshot script. Playwright is imported by the callers, not here."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# URL path -> the page's title; the default page (Runs) lives at the root.
PAGES = {"": "Runs", "train": "Train", "embeddings": "Embeddings", "spectrum": "Spectrum",
         "probe": "Probe", "augmentations": "Augmentations", "graph": "Graph",
         "sweeps": "Sweeps"}
# A page is drawn when the script is done, no spinner or skeleton is left, every Plotly chart
# holds its plot and every Vega-Lite chart its canvas.
READY = """() => !document.querySelector('[data-testid="stStatusWidget"]')
    && !document.querySelector('[data-testid="stSpinner"]')
    && !document.querySelector('[data-testid="stSkeleton"]')
    && document.querySelectorAll('[data-testid="stPlotlyChart"]').length
       === document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot').length
    && document.querySelectorAll('[data-testid="stVegaLiteChart"]').length
       === document.querySelectorAll('[data-testid="stVegaLiteChart"] canvas, '
                                     + '[data-testid="stVegaLiteChart"] svg.marks').length"""
# What each page draws once ready: a chart, a picture, a table, a message or the Train form.
DRAWN = ('[data-testid="stPlotlyChart"], [data-testid="stVegaLiteChart"], '
         '[data-testid="stImage"], [data-testid="stDataFrame"], '
         'button:has-text("Launch"), [data-testid="stAlert"]')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(runs_dir: Path, timeout: float = 90,
                 python_path: tuple[Path, ...] = ()) -> tuple[subprocess.Popen[str], str]:
    """``python -m explorer_dashboard`` (as ``explorer app`` starts it) on a free
    port of 127.0.0.1, showing ``runs_dir``; the server's output goes to ``server.log`` beside
    ``runs_dir`` (a pipe nobody reads would fill and stall it). ``python_path``: folders
    searched before this repository (a test's ``sitecustomize.py``, say)."""
    port = free_port()
    env = {**os.environ, "EXPLORER_RUNS_DIR": str(runs_dir),
           "PYTHONPATH": os.pathsep.join(map(str, (*python_path, ROOT)))}
    log_path = runs_dir.parent / "server.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "explorer_dashboard", "--server.port", str(port),
             "--server.headless", "true"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                if reply.status == 200:
                    return process, url
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"streamlit did not start:\n{log_path.read_text()}")
        time.sleep(0.5)


def stop_server(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


def open_page(page: Any, url: str, path: str, timeout_ms: int = 60_000) -> float:
    """Load ``url/path`` in a Playwright page and wait until it is drawn; returns the seconds."""
    started = time.perf_counter()
    page.goto(f"{url}/{path}")
    page.locator("h1", has_text=PAGES[path]).first.wait_for(timeout=timeout_ms)
    page.locator(DRAWN).first.wait_for(timeout=timeout_ms)
    page.wait_for_function(READY, timeout=timeout_ms)
    return time.perf_counter() - started


def box_select(page: Any, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Drag a box selection on the page's first Plotly chart, corners as fractions of its plot."""
    area = page.locator('[data-testid="stPlotlyChart"] .nsewdrag').first.bounding_box()
    page.locator("[data-testid='stPlotlyChart'] .modebar-btn[data-val='select']").first.click()
    x0, y0 = area["x"] + area["width"] * start[0], area["y"] + area["height"] * start[1]
    x1, y1 = area["x"] + area["width"] * end[0], area["y"] + area["height"] * end[1]
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x1, y1, steps=8)
    page.mouse.up()


def choose(page: Any, combobox: str, option: str, tries: int = 4) -> None:
    """Pick ``option`` in the select box labelled ``combobox``. A list opened in the instant a
    live fragment reruns can close again, so it is opened again until the option shows."""
    box = page.get_by_role("combobox", name=combobox)
    for attempt in range(tries):
        box.click()
        try:
            page.get_by_role("option", name=option, exact=True).click(timeout=5_000)
            return
        except Exception:  # Playwright's TimeoutError; the list closed before it was drawn
            if attempt == tries - 1:
                raise
            page.keyboard.press("Escape")


def navigate(page: Any, path: str, timeout_ms: int = 60_000) -> None:
    """Go to the page at ``path`` through the sidebar's link, as a user does: the same session
    (what the user set elsewhere is still there), unlike :func:`open_page`'s fresh load."""
    page.locator(f'[data-testid="stSidebarNav"] a[href$="/{path}"]').first.click()
    page.locator("h1", has_text=PAGES[path]).first.wait_for(timeout=timeout_ms)
    page.locator(DRAWN).first.wait_for(timeout=timeout_ms)
    page.wait_for_function(READY, timeout=timeout_ms)
