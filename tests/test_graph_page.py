"""The Graph page through Streamlit's AppTest: it renders, its sliders change what the spectrum
counts (checked against NumPy on the same augmentation graph written out here), its eigenvector
chart draws f = v / sqrt(w), and Train trains."""

from __future__ import annotations

import base64
import json
import re
import sys
import time
from typing import Any

import numpy as np
import pytest
from scipy.sparse.csgraph import connected_components
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


def page_graph(sizes: tuple[int, ...], within: float, between: float, degree: int) -> np.ndarray:
    """The page's documented cluster graph written out with NumPy: one natural datum per node
    (p = 1/n); its augmentation lands on ``degree`` nodes of its cluster (itself, its ring
    neighbour j + 1, and offsets j + t for the first degree - 2 of a seeded random order) with
    weight ``within``, and on every node of another cluster c' with weight between * m' / s'
    (m' = min(degree, s')); each row normalised; W = K^T diag(p) K."""
    n = sum(sizes)
    labels = np.repeat(np.arange(len(sizes)), sizes)
    m = np.minimum(degree, sizes)
    K = np.zeros((n, n))
    rng, start = np.random.default_rng(0), 0
    for s in sizes:
        order = np.c_[
            np.zeros((s, 1), int),
            np.ones((s, 1), int),
            np.argsort(rng.random((s, s - 2)), axis=1) + 2,
        ]  # every size here > 2
        for j in range(s):
            K[start + j, start + (j + order[j, : min(degree, s)]) % s] = within
        start += s
    spread = (between * m / np.asarray(sizes))[labels]  # (n,) per column
    K += np.where(labels[:, None] != labels[None, :], spread[None, :], 0.0)
    K /= K.sum(1, keepdims=True)
    return K.T @ (K / n)


def near_one_count(sizes: tuple[int, ...], within: float, between: float, degree: int) -> int:
    """Eigenvalues of D^-1/2 W D^-1/2 above 0.9 for :func:`page_graph`."""
    W = page_graph(sizes, within, between, degree)
    w = W.sum(1)
    return int((np.linalg.eigvalsh(W / np.sqrt(np.outer(w, w))) > 0.9).sum())


def figure_titled(page: AppTest, start: str) -> dict[str, Any]:
    figures = [json.loads(chart.proto.spec) for chart in page.get("plotly_chart")]
    return next(
        f for f in figures if f["layout"].get("title", {}).get("text", "").startswith(start)
    )


def heatmap_values(trace: dict[str, Any]) -> np.ndarray:
    """A heatmap's z (rows, columns): a list of lists, or a base64 typed array with its shape."""
    z = trace["z"]
    if isinstance(z, dict) and "bdata" in z:
        shape = tuple(int(d) for d in str(z["shape"]).split(","))
        return np.frombuffer(base64.b64decode(z["bdata"]), dtype=z["dtype"]).reshape(shape)
    return np.asarray(z, dtype=np.float64)


def metric(page: AppTest, label: str) -> str:
    values = [m.value for m in page.metric if m.label.startswith(label)]
    assert len(values) == 1, [m.label for m in page.metric]
    return values[0]


def degradation_figure(page: AppTest) -> dict[str, Any] | None:
    """The page's degradation chart (titled "as ... grows") as a Plotly dict, if drawn."""
    figures = [json.loads(chart.proto.spec) for chart in page.get("plotly_chart")]
    return next(
        (f for f in figures if f["layout"].get("title", {}).get("text", "").startswith("as ")), None
    )


def gap_percent(page: AppTest) -> float:
    texts = [m.value for m in page.markdown if "gap to the optimum" in m.value]
    assert texts, "no training report on the page"
    return float(re.search(r"gap to the optimum: (-?[\d.]+)%", texts[-1]).group(1))


def test_default_graph_and_the_between_slider(app: AppTest) -> None:
    assert app.title[0].value == "Graph"
    default = near_one_count((40, 40, 40), 1.0, 0.01, 10)
    assert metric(app, "γᵢ above 0.9") == str(default) == "3"
    assert len(app.get("plotly_chart")) == 4
    app.slider(key="between").set_value(0.3).run()
    assert not app.exception
    moved = near_one_count((40, 40, 40), 1.0, 0.3, 10)
    assert moved != default
    assert metric(app, "γᵢ above 0.9") == str(moved)
    app.slider(key="k").set_value(5)
    app.slider(key="between").set_value(0.0).run()
    assert (
        metric(app, "γᵢ above 0.9") == str(near_one_count((40,) * 5, 1.0, 0.0, 10)) == "5"
    )  # 5 disconnected clusters


def test_at_three_augmentations_and_no_between_weight_the_clusters_are_the_components(
    app: AppTest,
) -> None:
    app.slider(key="degree").set_value(3)
    app.slider(key="between").set_value(0.0).run()
    assert not app.exception
    W = page_graph((40, 40, 40), 1.0, 0.0, 3)
    assert connected_components(W > 0, directed=False)[0] == 3
    w = W.sum(1)
    gammas = np.linalg.eigvalsh(W / np.sqrt(np.outer(w, w)))
    assert int((gammas > 1 - 1e-9).sum()) == 3 and gammas.min() > -1e-10
    assert metric(app, "γᵢ above 0.9") == "3" and metric(app, "clustering ARI") == "1.000"
    # the heatmap draws f = v / sqrt(w): constant on each cluster, as the caption says
    drawn = heatmap_values(figure_titled(app, "f = D^-1/2 v")["data"][0])
    labels = np.repeat([0, 1, 2], 40)
    assert drawn.shape == (120, 3)
    assert max(drawn[labels == c].std(0).max() for c in range(3)) < 1e-9
    assert any(
        "f = D^-1/2 v" in c.value and "constant on every cluster" in c.value for c in app.caption
    )


def test_train_approaches_the_optimum(app: AppTest) -> None:
    app.button(key="train").click().run()
    assert not app.exception, [e.message for e in app.exception]
    for _ in range(17):  # every rerun while training takes one more chunk: 10 x 20, then 100s
        app.run()
    assert not app.exception
    assert "Step 1,000 of" in next(m.value for m in app.markdown if "gap to the optimum" in m.value)
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
    assert metric(app, "clustering ARI") == "1.000"  # the class eigenvectors are unchanged
    app.slider(key="shape").set_value(0.55).run()  # (1 - 0.55)^2 < 0.25: the classes drop out
    assert not app.exception
    assert metric(app, "γ_k") == "0.250" and float(metric(app, "clustering ARI")) < 0.05
    assert any(c.value.startswith("A step, not a graceful decline") for c in app.caption)


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
    # and the recovery is a step there, sampled densely on both sides
    ari = next(t for t in figure["data"] if t["name"] == "spectral clustering ARI")
    ari = np.array(trace_values(ari, "y"))
    assert ((x > 0.4) & (x < 0.5)).sum() >= 3 and ((x > 0.5) & (x < 0.6)).sum() >= 3
    assert (ari[x < 0.5] == 1.0).all() and (ari[x > 0.5] < 0.05).all()
