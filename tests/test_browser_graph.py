"""The Graph page in a real browser (headless Chromium driven by Playwright, as in
tests/test_browser.py): the between-cluster slider, moved with the keyboard, changes the count of
eigenvalues before the largest gap, and Train brings the table's loss to the optimum; on the
840-node shapes graph the metrics answer before the degradation curve (against α, with E(f*) and
its bound), which arrives by itself, and the click on Shapes sets d to its six classes. Times are
printed, not asserted."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from explorer_dashboard.serve import CHROMIUM_ARGS, READY, open_page, start_server, stop_server
from tests.conftest import CHROMIUM, NEEDS_CHROMIUM

pytestmark = NEEDS_CHROMIUM
playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process, url = start_server(tmp_path_factory.mktemp("browser-graph") / "runs")
    yield url
    stop_server(process)


@pytest.fixture(scope="module")
def page(server: str) -> Iterator[object]:
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        tab = chromium.new_page(viewport={"width": 1400, "height": 1400})
        yield tab
        chromium.close()


def near_one(page) -> str:
    """The count of eigenvalues before the largest gap (one per nearly disconnected cluster)."""
    metric = page.locator('[data-testid="stMetric"]', has_text="before the largest gap")
    return metric.locator('[data-testid="stMetricValue"]').inner_text().strip()


def test_the_between_slider_and_train(server: str, page, capsys) -> None:
    loaded = open_page(page, server, "graph")
    assert near_one(page) == "3"  # three clusters joined by weak edges (between = 0.01)
    slider = page.locator('[data-testid="stSlider"]', has_text="between-cluster weight")
    thumb = slider.get_by_role("slider")
    thumb.focus()
    started = time.perf_counter()
    for _ in range(10):  # 0.01 -> 0.11: gamma_2, gamma_3 fall to about 0.53, the gap after 1
        thumb.press("ArrowRight")
    playwright_api.expect(thumb).to_have_value("0.11")
    page.wait_for_function(
        """() => [...document.querySelectorAll('[data-testid="stMetric"]')]
            .some(m => m.innerText.includes('before the largest gap')
                       && m.innerText.trim().endsWith('1'))""",
        timeout=30_000,
    )
    moved = time.perf_counter() - started
    page.wait_for_function(READY, timeout=30_000)
    assert near_one(page) == "1"
    assert not page.query_selector_all('[data-testid="stException"]')

    started = time.perf_counter()
    page.get_by_role("button", name="Train").click()
    report = page.get_by_text(re.compile(r"gap to the optimum: [\d.]+%"))
    gaps: list[float] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if report.count():
            text = report.first.inner_text()
            gaps.append(float(re.search(r"gap to the optimum: ([\d.]+)%", text).group(1)))
            if gaps[-1] < 5.0 and len(gaps) > 1:
                break
        page.wait_for_timeout(250)
    trained = time.perf_counter() - started
    assert gaps and gaps[-1] < 5.0, gaps
    assert not page.query_selector_all('[data-testid="stException"]')
    # the loss curve in the browser starts at the random table, far above the optimum line.
    # While a tick redraws, the DOM can hold the chart of earlier ticks beside the new one:
    # the newest is the one with the most steps.
    newest_curve = """() => {
        const plots = [...document.querySelectorAll('.js-plotly-plot')].filter(
            p => ((p.layout.title || {}).text || '').includes('population loss'));
        if (!plots.length) return null;  // between two redraws: no chart in the DOM yet
        const newest = plots.reduce((a, b) => (b.data[0].x.length > a.data[0].x.length ? b : a));
        return {x: Array.from(newest.data[0].x), y: Array.from(newest.data[0].y),
                optimum: newest.layout.shapes[0].y0};
    }"""
    # the chart is drawn after the report above it: wait until it shows the same closeness
    page.wait_for_function(
        f"""() => {{ const c = ({newest_curve})();
        if (!c) return false;
        const last = c.y.length - 1;
        return last > 0 && c.y[last] - c.optimum < 0.05 * Math.abs(c.optimum); }}""",
        timeout=30_000,
    )
    curve = page.wait_for_function(f"() => ({newest_curve})()", timeout=10_000).json_value()
    optimum = curve["optimum"]
    assert curve["x"][0] == 0 and len(curve["x"]) >= 2
    assert curve["y"][0] - optimum > 0.5 * abs(optimum) > 10 * (curve["y"][-1] - optimum)
    with capsys.disabled():
        print(
            f"\nGraph page: loaded in {loaded:.2f} s; slider moved to a new count in "
            f"{moved:.2f} s; Train reached a {gaps[-1]:.1f}% gap in {trained:.2f} s "
            f"(gaps seen: {', '.join(f'{g:.1f}' for g in gaps[:8])}…)"
        )


def test_shapes_answers_before_its_curve_arrives(server: str, page, capsys) -> None:
    # the 840-node sweep runs beside the page: the metrics answer first, then the page's timer
    # draws the curve by itself (no interaction)
    open_page(page, server, "graph")
    started = time.perf_counter()
    page.get_by_text("Shapes", exact=True).click()
    page.locator('[data-testid="stMetric"]', has_text="nodes").filter(has_text="840").wait_for(
        timeout=60_000
    )
    answered = time.perf_counter() - started
    curve_title = """() => [...document.querySelectorAll('.js-plotly-plot')].some(
        p => ((p.layout.title || {}).text || '').includes('as class changes grow'))"""
    page.wait_for_function(curve_title, timeout=90_000)
    arrived = time.perf_counter() - started
    page.wait_for_function(READY, timeout=30_000)
    assert near_one(page) == "6"  # six classes, no class change
    # the click on Shapes moved d to the six classes (it was 3, the clusters' k)
    d = page.locator('[data-testid="stSlider"]', has_text="features d").get_by_role("slider")
    playwright_api.expect(d).to_have_value("6")
    assert not page.query_selector_all('[data-testid="stException"]')
    with capsys.disabled():
        print(
            f"\nGraph page, Shapes (840 nodes): metrics in {answered:.2f} s; degradation "
            f"curve drawn by itself after {arrived:.2f} s"
        )
