"""The dashboard in a real browser: headless Chromium (Debian's) driven by Playwright, against
``streamlit run app.py`` on a free localhost port.

Every page loads without an exception on a run of 20 checkpoints × 5,000 points (the time each
takes to render is printed, not asserted: machines are noisy); a run launched from the Train page
shows its progress and first checkpoint, and Stop stops it with a checkpoint. Set
``EXPLORER_SCREENSHOTS=DIR`` to save a screenshot of each page there (``make screenshots``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from explorer.runs import Run, list_runs
from tests.conftest import ROOT
from tests.dashboard_runs import corrupt_run, synthetic_run

CHROMIUM = Path(os.environ.get("EXPLORER_CHROMIUM", "/usr/bin/chromium"))
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"no Chromium at {CHROMIUM}: install it with `apt-get install -y chromium` "
        "(make test does when it can) or point EXPLORER_CHROMIUM at one",
    ),
]
playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")

# URL path -> the page's title; the default page (Runs) lives at the root.
PAGES = {"": "Runs", "train": "Train", "embeddings": "Embeddings", "spectrum": "Spectrum",
         "probe": "Probe", "augmentations": "Augmentations"}
READY = """() => !document.querySelector('[data-testid="stStatusWidget"]')
    && !document.querySelector('[data-testid="stSpinner"]')
    && !document.querySelector('[data-testid="stSkeleton"]')
    && document.querySelectorAll('[data-testid="stPlotlyChart"]').length
       === document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot').length"""

# What each page draws once ready: a chart, a picture, a table, or the Train page's form.
DRAWN = ('[data-testid="stPlotlyChart"], [data-testid="stImage"], [data-testid="stDataFrame"], '
         'button:has-text("Launch"), [data-testid="stAlert"]')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    runs = tmp_path_factory.mktemp("browser") / "runs"
    synthetic_run(runs, "synthetic-20x5000")
    corrupt_run(runs, "half-written")
    return runs


@pytest.fixture(scope="module")
def server(runs_dir: Path) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "EXPLORER_RUNS_DIR": str(runs_dir), "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port",
         str(port), "--server.headless", "true"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                if reply.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"streamlit did not start:\n{process.stdout.read()}")
        time.sleep(0.5)
    yield url
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
    for run in list_runs(runs_dir):  # a trainer the tests left behind lives in its own session
        pid = run.status().get("pid")
        if run.status().get("state") == "running" and pid:
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"],
        )
        yield chromium
        chromium.close()


def _open(page, url: str, path: str) -> float:
    """Load a page and wait until it is drawn; returns the seconds it took."""
    started = time.perf_counter()
    page.goto(f"{url}/{path}")
    page.locator("h1", has_text=PAGES[path]).first.wait_for(timeout=60_000)
    page.locator(DRAWN).first.wait_for(timeout=60_000)
    page.wait_for_function(READY, timeout=60_000)
    return time.perf_counter() - started


def _exceptions(page) -> list[str]:
    return [e.inner_text()[:500] for e in page.query_selector_all('[data-testid="stException"]')]


def test_every_page_loads_without_an_exception(server: str, browser) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    _open(page, server, "")  # the first visit pays the server's imports: not counted
    shots = os.environ.get("EXPLORER_SCREENSHOTS")
    timings = {}
    for path, title in PAGES.items():
        timings[title] = _open(page, server, path)
        assert _exceptions(page) == [], f"{title} raised"
        if shots:
            Path(shots).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(shots) / f"{title.lower()}.png"), full_page=True)
    print("\nrender time per page (20 checkpoints x 5,000 points): " +
          ", ".join(f"{t} {s:.2f} s" for t, s in timings.items()))
    page.close()


def test_damaged_and_deleted_runs_do_not_break_pages(server: str, browser,
                                                     runs_dir: Path) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    _open(page, server, "")
    assert page.get_by_text("half-written is corrupt").count() == 1
    doomed = runs_dir / "doomed"
    shutil.copytree(runs_dir / "synthetic-20x5000", doomed)
    _open(page, server, "probe")
    shutil.rmtree(doomed)
    for path in PAGES:
        _open(page, server, path)
        assert _exceptions(page) == [], f"/{path} raised after a run was deleted"
    page.close()


def test_launch_watch_and_stop_a_run(server: str, browser, runs_dir: Path) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    _open(page, server, "train")
    name = "browser-launched"
    box = page.get_by_role("textbox", name="Run name")
    box.fill(name)
    box.press("Enter")
    page.wait_for_function(READY)
    page.get_by_text("Every config field").click()
    page.get_by_role("textbox", name="train_limit", exact=True).wait_for()
    settings = {"train_limit": "512", "test_limit": "128", "epochs": "200",
                "checkpoint_every": "1", "knn_every": "0", "batch_size": "64",
                "projector_hidden_dim": "64", "projector_out_dim": "32", "device": None}
    for field, value in settings.items():
        if value is not None:
            box = page.get_by_role("textbox", name=field, exact=True)
            box.fill(value)
            box.press("Enter")
            page.wait_for_function(READY)
    page.get_by_role("button", name="Launch").click()
    page.get_by_text(f"Launched {name}").wait_for(timeout=30_000)
    page.get_by_text("checkpoints: epochs 1").first.wait_for(timeout=120_000)
    assert page.get_by_text(f"{name}: running").count() >= 1
    run = Run(runs_dir / name)
    assert run.status()["state"] == "running" and run.weight_checkpoints()
    page.get_by_role("button", name="Stop").first.click()
    page.get_by_text(f"{name}: stopped").first.wait_for(timeout=60_000)
    assert run.status()["state"] == "stopped" and run.has_resume_state()
    assert run.config().epochs == 200 and run.config().train_limit == 512
    assert _exceptions(page) == []
    page.close()
