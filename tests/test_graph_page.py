"""The Graph page through Streamlit's AppTest: it renders, its sliders change what the spectrum
counts (checked against NumPy on the same graph written out here), and Train trains."""

from __future__ import annotations

import json
import re
import sys
import time
from typing import Any

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT
from tests.dashboard_runs import trace_values

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def keep_main_module():
    """AppTest leaves the page script as ``sys.modules["__main__"]``; put the real one back."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture
def app() -> AppTest:
    page = AppTest.from_file(str(ROOT / "dashboard" / "graph_page.py"), default_timeout=120)
    page.run()
    assert not page.exception, [e.message for e in page.exception]
    return page


def near_one_count(sizes: tuple[int, ...], within: float, between: float, degree: float) -> int:
    """Eigenvalues of D^-1/2 W D^-1/2 above 0.9 for the page's documented cluster graph: each
    pair an edge with probability degree * k / n (seed 0), self-loops, weights within/between."""
    n, k = sum(sizes), len(sizes)
    labels = np.repeat(np.arange(k), sizes)
    upper = np.triu(np.random.default_rng(0).random((n, n)) < degree * k / n, 1)
    edges = upper | upper.T | np.eye(n, dtype=bool)
    W = np.where(labels[:, None] == labels[None, :], within, between) * edges
    w = W.sum(1)
    return int((np.linalg.eigvalsh(W / np.sqrt(np.outer(w, w))) > 0.9).sum())


def metric(page: AppTest, label: str) -> str:
    values = [m.value for m in page.metric if m.label.startswith(label)]
    assert len(values) == 1, [m.label for m in page.metric]
    return values[0]


def degradation_figure(page: AppTest) -> dict[str, Any] | None:
    """The page's degradation chart (titled "as ... grows") as a Plotly dict, if drawn."""
    figures = [json.loads(chart.proto.spec) for chart in page.get("plotly_chart")]
    return next((f for f in figures
                 if f["layout"].get("title", {}).get("text", "").startswith("as ")), None)


def gap_percent(page: AppTest) -> float:
    texts = [m.value for m in page.markdown if "gap to the optimum" in m.value]
    assert texts, "no training report on the page"
    return float(re.search(r"gap to the optimum: (-?[\d.]+)%", texts[-1]).group(1))


def test_default_graph_and_the_between_slider(app: AppTest) -> None:
    assert app.title[0].value == "Graph"
    default = near_one_count((40, 40, 40), 1.0, 0.02, 10.0)
    assert metric(app, "γᵢ above 0.9") == str(default) == "3"
    assert len(app.get("plotly_chart")) == 4
    app.slider(key="between").set_value(0.3).run()
    assert not app.exception
    moved = near_one_count((40, 40, 40), 1.0, 0.3, 10.0)
    assert moved != default
    assert metric(app, "γᵢ above 0.9") == str(moved)
    app.slider(key="k").set_value(5)
    app.slider(key="between").set_value(0.0).run()
    assert metric(app, "γᵢ above 0.9") == str(
        near_one_count((40,) * 5, 1.0, 0.0, 10.0)) == "5"  # 5 disconnected clusters


def test_train_approaches_the_optimum(app: AppTest) -> None:
    app.button(key="train").click().run()
    assert not app.exception, [e.message for e in app.exception]
    for _ in range(17):  # every rerun while training takes one more chunk: 10 x 20, then 100s
        app.run()
    assert not app.exception
    assert "Step 1,000 of" in next(m.value for m in app.markdown
                                   if "gap to the optimum" in m.value)
    assert gap_percent(app) < 5.0
    # the loss curve starts at the random table, far from the optimum line, and its descent is
    # drawn in small steps (the first 200 steps in chunks of 20)
    figure = json.loads(app.get("plotly_chart")[4].proto.spec)
    loss = next(t for t in figure["data"] if t["name"] == "L(f), exact")
    optimum = figure["layout"]["shapes"][0]["y0"]
    assert loss["x"][:3] == [0, 20, 40] and loss["x"][-1] == 1000
    assert loss["y"][0] - optimum > 0.5 * abs(optimum) > 20 * (loss["y"][-1] - optimum)


def test_a_small_mu_trains_towards_the_ball_optimum(app: AppTest) -> None:
    app.select_slider(key="mu").set_value(0.5).run()
    app.button(key="train").click().run()
    for _ in range(4):
        app.run()
    assert not app.exception
    assert any("cuts the optimum off" in c.value for c in app.caption)
    assert any("the best loss inside the ball" in m.value for m in app.markdown)


def test_shapes_graph_counts_its_classes(app: AppTest) -> None:
    app.radio(key="kind").set_value("Shapes").run()
    assert not app.exception
    assert metric(app, "nodes") == "840"
    assert metric(app, "γᵢ above 0.9") == "6"  # six classes, no shape change
    app.slider(key="shape").set_value(0.1).run()  # closed form: (1 - 0.1)^2 = 0.81 < 0.9
    assert metric(app, "γᵢ above 0.9") == "1"


def test_shapes_degradation_curve_arrives_after_the_page(app: AppTest) -> None:
    # 840 nodes: the sweep runs beside the page, which answers first and draws the curve when it
    # is done (a timer looks for it; AppTest runs the page again instead)
    app.radio(key="kind").set_value("Shapes").run()
    assert not app.exception
    deadline = time.monotonic() + 90
    while (figure := degradation_figure(app)) is None:
        assert time.monotonic() < deadline, "the degradation curve never arrived"
        assert any("degradation curve" in i.value for i in app.info)  # the note while it sweeps
        time.sleep(0.5)
        app.run()
        assert not app.exception, [e.message for e in app.exception]
    gamma_k = next(t for t in figure["data"] if t["name"] == "γ_k")
    x, y = np.array(trace_values(gamma_k, "x")), np.array(trace_values(gamma_k, "y"))
    assert len(x) == len(y) >= 5
    # closed form: each view redraws the shape with probability p, so the five class-joining
    # eigenvalues are (1 - p)^2; below 0.25 = (1 - 0.5)^2, crop's and rotation's come first
    np.testing.assert_allclose(y, np.maximum((1 - x) ** 2, 0.25), atol=1e-8)

