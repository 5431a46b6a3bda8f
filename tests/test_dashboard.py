"""Each dashboard page's logic through Streamlit's AppTest (the page scripts, run in-process),
on real runs: one trained and analysed by the package, one synthetic, one half-written."""

from __future__ import annotations

import base64
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from explorer.augment import RECIPES
from explorer.data.shapes import ShapesKernel
from explorer.errors import UserError
from explorer.readings.figures import embedding_traces, projector_features_label
from explorer.rundir.artifacts import analysed_epochs, load_analysis
from explorer.rundir.launch import stop_training, validate_launch
from explorer.rundir.run import Run, open_run
from tests.conftest import DASHBOARD, ROOT, TINY, explorer
from tests.dashboard_runs import (
    corrupt_run,
    opened_groups,
    synthetic_run,
    trace_values,
    vega_charts,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    runs = tmp_path_factory.mktemp("dashboard") / "runs"
    explorer("train", *TINY, "epochs=2", "checkpoint_every=1", "--name", "trained",
             "--runs-dir", str(runs), cwd=runs.parent, check=True)
    explorer("analyze", str(runs / "trained"), "--projection", "pca", "--no-progress",
             cwd=runs.parent, check=True)
    synthetic_run(runs, "synthetic", checkpoints=3, points=300)
    corrupt_run(runs, "half-written")
    return runs


@pytest.fixture
def page(runs_dir: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("EXPLORER_RUNS_DIR", str(runs_dir))

    def load(name: str, run: str | None = None) -> AppTest:
        app = AppTest.from_file(str(DASHBOARD / f"{name}_page.py"), default_timeout=120)
        if run is not None:
            app.session_state["selected_run"] = run
        app.run()
        assert not app.exception, [e.message for e in app.exception]
        return app

    return load


def charts(app: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]


def test_runs_page_lists_every_run_and_flags_the_damaged_one(page) -> None:
    app = page("runs")
    table = app.dataframe[0].value
    states = dict(zip(table["name"], table["state"], strict=True))
    assert states == {"half-written": "corrupt", "synthetic": "finished", "trained": "finished"}
    assert any("half-written" in w.value and "corrupt" in w.value for w in app.warning)
    drawn = {row["run"] for _, data in vega_charts(app) for row in data["rows"]}
    assert drawn & {"trained", "synthetic"}


def test_runs_table_shows_the_probe_accuracy(page, runs_dir: Path) -> None:
    app = page("runs")
    table = app.dataframe[0].value.set_index("name")
    probe = json.loads((runs_dir / "trained" / "probe.json").read_text())
    expected = round(100 * probe["methods"]["trained"]["linear"]["accuracy"], 1)
    assert float(table.loc["trained", "linear %"]) == pytest.approx(expected)
    assert table.loc["trained", "epochs"] == "2/2"


def test_runs_table_tells_runs_apart_and_gives_each_its_own_colour(page, runs_dir: Path) -> None:
    from explorer.config import build_config
    from explorer.rundir.run import create_run

    config = build_config("shapes-demo", None, {"augment": "shapes", "lr": 0.05})
    create_run(runs_dir, config, name="young")  # created, not yet probed or analysed
    try:
        app = page("runs")
    finally:
        shutil.rmtree(runs_dir / "young")
    table = app.dataframe[0].value.set_index("name")
    # what a run reached comes first: visible at 1,400 px without a horizontal scroll
    assert list(table.columns)[:4] == ["state", "linear %", "kNN %", "of optimum %"]
    assert list(table.loc["young", ["linear %", "kNN %", "of optimum %"]]) == ["—"] * 3
    assert list(table.loc["young", ["augment", "lr", "batch"]]) == [
        "shapes", "0.05", str(config.batch_size)]
    assert "None" not in table.astype(str).to_numpy().ravel().tolist()
    trained = Run(runs_dir / "trained").config()
    assert table.loc["trained", "lr"] == f"{trained.lr:g}"
    (spec, data), *_ = vega_charts(app)  # the training curves
    drawn = {row["run"] for row in data["rows"]}
    scale = next(layer["encoding"]["color"]["scale"]
                 for layer in spec["vconcat"][0]["hconcat"][0]["layer"])
    colours = dict(zip(scale["domain"], scale["range"], strict=True))
    assert len(drawn) >= 2 and drawn <= set(colours)
    assert len(set(colours.values())) == len(colours)
    assert not app.get("plotly_chart")  # the first page needs no Plotly in the browser


def test_runs_table_gives_mu_only_to_the_spectral_loss(page, runs_dir: Path) -> None:
    from explorer.config import build_config
    from explorer.rundir.run import create_run

    create_run(runs_dir, build_config("shapes-demo", None, {"loss": "simclr"}), name="no-mu")
    try:
        table = page("runs").dataframe[0].value.set_index("name")
    finally:
        shutil.rmtree(runs_dir / "no-mu")
    assert table.loc["no-mu", "μ"] == "n/a (no μ)"
    assert table.loc["trained", "μ"] == f"{Run(runs_dir / 'trained').config().mu:g}"
    assert "None" not in table["μ"].astype(str).tolist()


def test_train_form_reports_the_command_lines_errors(page, runs_dir: Path) -> None:
    app = page("train")
    app.text_input(key="field-shapes-demo-epochs").set_value("abc")
    app.button[0].click().run()
    with pytest.raises(UserError) as expected:
        validate_launch(runs_dir, "x", "shapes-demo", {"epochs": "abc"})
    assert [e.value for e in app.error] == [str(expected.value)]
    # in the form's words, not the command line's
    assert "in the form" in str(expected.value) and "a whole number" in str(expected.value)
    app.text_input(key="field-shapes-demo-epochs").set_value("3")
    app.text_input(key="run-name").set_value("../outside").run()
    app.button[0].click().run()
    assert "not allowed" in app.error[0].value
    assert not (runs_dir.parent / "outside").exists()


def test_train_page_launches_stops_and_resumes(page, runs_dir: Path) -> None:
    app = page("train")
    for key, is_open in opened_groups().items():  # the fields of folded groups are not drawn
        app.session_state[key] = is_open
    app.run()
    values = dict(item.split("=") for item in TINY)
    values.update(epochs="300", checkpoint_every="1")
    for key, value in values.items():  # text boxes and select boxes alike take the text
        app.get_by_key(f"field-shapes-demo-{key}").set_value(value)
    app.text_input(key="run-name").set_value("from-the-form")
    app.button[0].click().run()
    assert app.success and "from-the-form" in app.success[0].value
    run = Run(runs_dir / "from-the-form")
    try:
        _watch_stop_resume(page, run)
    finally:  # never leave a trainer behind, whatever failed
        if (run.path / "status.json").exists() and run.status().get("state") == "running":
            run.request_stop()


def _watch_stop_resume(page, run: Run) -> None:
    deadline = time.monotonic() + 120
    while not ((run.path / "status.json").exists() and run.status().get("state") == "running"
               and run.weight_checkpoints()):
        assert time.monotonic() < deadline, "the launched run never checkpointed"
        time.sleep(0.5)
    assert run.config().train_limit == 256 and run.config().epochs == 300
    app = page("train", run="from-the-form")
    assert any("from-the-form**: running" in p.proto.text for p in app.get("progress"))
    stop = next(b for b in app.button if b.label == "Stop")
    stop.click().run()
    while run.status().get("state") != "stopped":
        assert time.monotonic() < deadline + 60, "Stop did not stop the run"
        time.sleep(0.5)
    app = page("train", run="from-the-form")
    resume = next(b for b in app.button if b.label == "Resume")
    resume.click().run()
    step = run.status()["step"]
    while not (run.status().get("state") == "running" and run.status()["step"] > step):
        assert time.monotonic() < deadline + 120, "Resume did not continue the run"
        time.sleep(0.5)
    stop_training(run)
    while run.status().get("state") != "stopped":
        assert time.monotonic() < deadline + 180, "the second stop did not stop the run"
        time.sleep(0.5)


def test_embeddings_page_moves_through_checkpoints(page) -> None:
    app = page("embeddings", run="trained")
    assert list(app.select_slider[0].options) == ["1", "2"]
    assert list(_radio(app, "Layout").options) == ["pca"]  # the analysis computed PCA only
    first = charts(app)[0]["data"]
    app.select_slider[0].set_value(1).run()
    assert not app.exception
    assert charts(app)[0]["data"] != first  # another checkpoint, another layout
    assert all(trace["type"] == "scattergl" for trace in first)


def _radio(app: AppTest, label: str):  # noqa: ANN202
    return next(r for r in app.radio if r.label == label)


def _layout_of_chart(chart: dict, labels: np.ndarray, classes: int) -> np.ndarray:
    """The (M, 2) layout an embedding chart draws, rows in the artifact's order."""
    layout = np.full((len(labels), 2), np.nan)
    for trace, (_, rows) in zip(chart["data"], embedding_traces(labels, classes), strict=True):
        layout[rows, 0], layout[rows, 1] = trace_values(trace, "x"), trace_values(trace, "y")
    return layout


def _selected_rows(chart: dict, labels: np.ndarray, classes: int) -> list[int]:
    return sorted(int(rows[i]) for trace, (_, rows) in
                  zip(chart["data"], embedding_traces(labels, classes), strict=True)
                  for i in trace.get("selectedpoints", []))


def test_embeddings_page_shows_the_projector_features_and_keeps_the_selection(
    page, runs_dir: Path
) -> None:
    artifact = load_analysis(open_run(runs_dir / "trained"), 2)
    arrays, classes = artifact["arrays"], len(artifact["classes"])
    labels, indices = arrays["labels"], arrays["indices"]
    app = page("embeddings", run="trained")
    features = _radio(app, "Features")
    # the default: the projector's features, the theorem's f (the backbone's h second)
    assert features.value == "projector output"
    assert list(features.options) == [
        f"projector output f = clip(z) (the theorem's f, μ = {artifact['mu']:g})", "backbone h"]
    chart = charts(app)[0]
    np.testing.assert_allclose(_layout_of_chart(chart, labels, classes), arrays["pca_projector"],
                               rtol=1e-6)
    features.set_value("backbone h").run()
    assert any("groups images by scene" in c.value for c in app.caption)
    chart = charts(app)[0]
    np.testing.assert_allclose(_layout_of_chart(chart, labels, classes), arrays["pca"], rtol=1e-6)
    # a selection kept as test images (what a click or lasso records) follows the choice
    rows = [0, 5, 9]
    app.session_state["embedding-selection"] = {"run": "trained", "epoch": 2,
                                                "images": indices[rows].tolist()}
    app.run()
    assert _selected_rows(charts(app)[0], labels, classes) == rows
    features.set_value("projector output").run()
    assert not app.exception and not app.info
    chart = charts(app)[0]
    assert "PCA of projector output f = clip(z)" in chart["layout"]["title"]["text"]
    np.testing.assert_allclose(_layout_of_chart(chart, labels, classes), arrays["pca_projector"],
                               rtol=1e-6)
    assert not np.allclose(arrays["pca_projector"], arrays["pca"])
    assert _selected_rows(chart, labels, classes) == rows
    app.select_slider[0].set_value(1).run()  # the choice and the selection follow the slider
    assert _radio(app, "Features").value == "projector output"
    earlier = load_analysis(open_run(runs_dir / "trained"), 1)["arrays"]["pca_projector"]
    chart = charts(app)[0]
    np.testing.assert_allclose(_layout_of_chart(chart, labels, classes), earlier, rtol=1e-6)
    assert _selected_rows(chart, labels, classes) == rows


def test_probe_page_plots_the_analysis_probes_over_checkpoints(page, runs_dir: Path) -> None:
    run = open_run(runs_dir / "trained")
    records = {e: load_analysis(run, e) for e in analysed_epochs(run)}
    label = projector_features_label(records[2], short=True)
    assert label == "projector output f = clip(z)"
    app = page("probe", run="trained")
    chart = next(c for c in charts(app)
                 if any(t.get("name") == "linear, backbone h" for t in c["data"]))
    traces = {t["name"]: t for t in chart["data"]}
    assert set(traces) == {"linear, backbone h", "kNN, backbone h", f"linear, {label}",
                           f"kNN, {label}"}
    for key, name in (("probes", "backbone h"), ("probes_projector", label)):
        for kind, shown in (("linear", "linear"), ("knn", "kNN")):
            trace = traces[f"{shown}, {name}"]
            assert trace_values(trace, "x") == [1, 2]
            assert trace_values(trace, "y") == pytest.approx(
                [100 * records[e][key][kind]["accuracy"] for e in (1, 2)])
    table = next(d.value for d in app.dataframe if "epoch" in d.value.columns)
    assert table["epoch"].tolist() == [1, 2]
    assert table[f"{label} kNN %"].tolist() == pytest.approx(
        [round(100 * records[e]["probes_projector"]["knn"]["accuracy"], 1) for e in (1, 2)])
    text = " ".join(c.value for c in app.caption)
    assert "analysis sample" in text and "probe.json" in text
    assert not app.info  # every analysis has the projector probes


def test_pages_say_how_to_get_the_projector_view_of_older_analyses(
    page, runs_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = page("probe", run="synthetic")  # written without the projector keys
    assert any("predate the projector probes" in i.value and "--force" in i.value
               for i in app.info)
    names = {t.get("name") for c in charts(app) for t in c["data"]}
    assert {"linear, backbone h", "kNN, backbone h"} <= names
    assert not any("projector" in str(n) for n in names)
    table = next(d.value for d in app.dataframe if "epoch" in d.value.columns)
    assert list(table.columns) == ["epoch", "backbone h linear %", "backbone h kNN %"]
    app = page("embeddings", run="synthetic")
    backbone = charts(app)[0]["data"]
    _radio(app, "Features").set_value("projector output").run()
    assert not app.exception
    assert any("explorer analyze" in i.value and "--force" in i.value for i in app.info)
    assert charts(app)[0]["data"] == backbone  # the backbone's layout meanwhile
    # the shipped demo runs are analysed with the projector view: no such message there
    shutil.copytree(ROOT / "explorer" / "demo_runs" / "shapes-spectral",
                    tmp_path / "runs" / "shapes-spectral")
    monkeypatch.setenv("EXPLORER_RUNS_DIR", str(tmp_path / "runs"))
    app = AppTest.from_file(str(DASHBOARD / "probe_page.py"), default_timeout=120)
    app.run()
    assert not app.exception
    assert not any("--force" in i.value for i in app.info)
    assert any("projector" in str(t.get("name")) for c in charts(app) for t in c["data"])


def test_spectrum_page_shows_the_exact_distance_to_the_optimum(page, runs_dir: Path) -> None:
    app = page("spectrum", run="trained")
    artifact = load_analysis(open_run(runs_dir / "trained"), 2)
    exact = artifact["exact"]
    # TINY trains `shapes` in image space: the page says it did not train on the graph
    assert not exact["graph"]["own"] and "did not train" in app.warning[0].value
    shown = {m.label: m.value for m in app.metric}
    assert shown["of the provable optimum"] == f"{100 * (1 - exact['gap']):.1f}%"
    guarantee = exact["guarantee"]  # the downstream guarantee, from the record
    assert shown["α (Assumption 3.5)"] == f"{100 * guarantee['alpha']:.1f}%"
    # E as its bracket: one number where both sides meet, 'lower–upper%' where not
    for label, key in (("E(f) of the network", "error"), ("E(f*) of the optimum", "optimum_error")):
        upper, lower = 100 * guarantee[key], 100 * guarantee[f"{key}_lower"]
        expected = f"{upper:.1f}%" if upper - lower < 1e-7 else f"{lower:.1f}–{upper:.1f}%"
        assert shown[label] == expected
    assert guarantee["error_definition"] == "best head"
    assert guarantee["error"] <= guarantee["error_least_squares"] + 1e-12
    # the probe's error beside E(f), and the sentence that tells them apart
    probe = json.loads((runs_dir / "trained" / "probe.json").read_text())
    linear = probe["methods"]["trained"]["linear"]["accuracy"]
    assert shown["linear probe error"] == f"{100 * (1 - linear):.1f}%"
    assert any("answer two questions" in m.value for m in app.markdown)
    assert shown["population loss L(f)"] == f"{exact['loss']:.3f}"
    # the chance level beside the class span, as a delta without an arrow, not in the label
    span = next(m for m in app.metric if m.label == "class span R²")
    assert span.value == f"{exact['class_r2']:.3f}"
    assert span.delta == f"chance {exact['span_chance']:.2f}"
    data = [t for chart in charts(app) for t in chart["data"]]
    by_name = {t.get("name", ""): t for t in data}
    measured = next(t for n, t in by_name.items() if n.startswith("exact: eig E_w"))
    arrays = artifact["arrays"]
    assert trace_values(measured, "y") == pytest.approx(arrays["exact_c_eigs"].tolist())
    gammas = next(t for n, t in by_name.items() if n.startswith("γᵢ of the graph of graph views"))
    assert trace_values(gammas, "y") == pytest.approx(arrays["exact_gammas"].tolist())
    run_mu = next(t for n, t in by_name.items() if n.startswith("the run's μ"))
    assert trace_values(run_mu, "x")[0] == pytest.approx(exact["mu"])
    share = next(t for n, t in by_name.items() if "unconstrained" in n and "share" not in n
                 and t.get("mode") == "lines+markers")
    assert trace_values(share, "y")[-1] == pytest.approx(100 * (1 - exact["gap"]))  # percent
    assert any("RankMe" in json.dumps(chart["layout"]) for chart in charts(app))
    # the page defines its terms and its table reads without raw keys or "None"
    text = " ".join(m.value for m in app.markdown)
    for term in ("RankMe", "α (α-ReQ)", "C₊ = C² residual (stationarity)", "cross",
                 "What a good run looks like", "saddle"):
        assert term in text, term
    assert "optimum gap" not in text  # the residual is not a gap to the optimum
    # the page states the ball's cap at the run's μ: ⌊μ/0.9⌋ eigenvalues at most
    assert f"at most {int(exact['mu'] / 0.9)} eigenvalue" in text
    table = app.dataframe[0].value
    assert len(table) and not any("_" in str(c) for c in table.columns)
    assert "None" not in table.astype(str).to_numpy().ravel().tolist()
    backbone = table[table["features"].str.startswith("backbone")].iloc[0]
    eigs = artifact["arrays"]["backbone_eigs_mean"]
    assert backbone["eigenvalues ≥ 0.9"] == str(int(np.sum(eigs / eigs[0] >= 0.9)))


def test_spectrum_page_reads_the_classes_as_components_from_the_stored_arrays(
    page, runs_dir: Path
) -> None:
    app = page("spectrum", run="trained")
    arrays = load_analysis(open_run(runs_dir / "trained"), 2)["arrays"]
    eigs, cosines = arrays["class_between_eigs"], arrays["class_cosines"]
    classes = len(cosines)
    assert classes == 6  # shapes: six classes, the reading of every one of them
    text = " ".join(m.value for m in app.markdown)
    assert f"{int(np.sum(eigs >= 0.9))} of its {classes} eigenvalues ≥ 0.9" in text
    data = [t for chart in charts(app) for t in chart["data"]]
    bars = next(t for t in data if t.get("type") == "bar" and t.get("name") == "M")
    assert trace_values(bars, "y") == pytest.approx(eigs.tolist())
    heat = next(t for t in data if t.get("type") == "heatmap")
    z = heat["z"]
    z = np.frombuffer(base64.b64decode(z["bdata"]), dtype=z["dtype"]) if "bdata" in z else z
    np.testing.assert_allclose(np.asarray(z, dtype=np.float64).reshape(classes, classes),
                               cosines, atol=1e-6)  # fmt: skip
    older = page("spectrum", run="synthetic")  # analysed before the reading existed
    assert any("explorer analyze" in i.value and "class reading" in i.value for i in older.info)


def test_probe_page_shows_the_runs_results_and_baselines(page, runs_dir: Path) -> None:
    app = page("probe", run="trained")
    probe = json.loads((runs_dir / "trained" / "probe.json").read_text())
    table = app.dataframe[0].value.set_index("features")
    for key, label in (("trained", "trained backbone"), ("raw_pixels", "raw pixels")):
        assert table.loc[label, "kNN %"] == pytest.approx(
            round(100 * probe["methods"][key]["knn"]["accuracy"], 1))
    assert "a classifier of the scene alone is at chance" in " ".join(c.value for c in app.caption)
    bars = charts(app)[0]["data"]
    linear = next(t for t in bars if t["name"] == "trained backbone linear")
    per_class = probe["methods"]["trained"]["linear"]["per_class_accuracy"]
    assert linear["y"] == pytest.approx([100 * v for v in per_class])
    heat = charts(app)[1]["data"][0]
    assert heat["type"] == "heatmap"


def test_probe_page_falls_back_on_the_analysis(page, runs_dir: Path) -> None:
    (runs_dir / "trained" / "probe.json").rename(runs_dir / "probe.json.bak")
    try:
        app = page("probe", run="trained")
        assert any("from the analysis of epoch 2" in m.value for m in app.markdown)
    finally:
        (runs_dir / "probe.json.bak").rename(runs_dir / "trained" / "probe.json")


def test_augmentations_page_draws_positive_pairs_and_its_recipe_as_text(page) -> None:
    app = page("augmentations", run="trained")  # augment=auto: the image recipe 'shapes'
    assert len(app.get("image")) == 1
    assert not app.json  # no folded {...}
    text = " ".join(m.value for m in app.markdown)
    for step, meaning in RECIPES["shapes"].describe(32):
        assert f"| {step} | {meaning} |" in text
    app.button[0].click().run()  # draw again
    assert not app.exception


def test_augmentations_page_shows_graph_views_and_their_kernel(page) -> None:
    app = page("augmentations", run="synthetic")  # the shapes-demo preset: augment=graph
    assert not app.exception and len(app.get("image")) == 1
    assert any("recipe 'graph'" in m.value and m.value.startswith("**original | view 1")
               for m in app.markdown)  # the key above the grid
    assert not app.json
    table = next(m.value for m in app.markdown if m.value.startswith("| redrawn"))
    kernel = ShapesKernel()
    rows = [line.strip("| ").split(" | ") for line in table.splitlines()[2:]]
    assert rows == [["shape", f"{kernel.shape_p:g}"], ["position\u00a0+\u00a0scale",
                    f"{kernel.crop_p:g}"], ["rotation", f"{kernel.rotate_p:g}"],
                    ["fg_color\u00a0+\u00a0bg_color", f"{kernel.color_p:g}"],
                    ["class change (class_change_p)", "0"]]
    assert "The class never changes" in " ".join(c.value for c in app.caption)


def test_a_deleted_run_is_handled_on_every_page(page, runs_dir: Path) -> None:
    shutil.copytree(runs_dir / "synthetic", runs_dir / "doomed")
    for name in ("runs", "train", "embeddings", "spectrum", "probe", "augmentations"):
        app = page(name, run="doomed")
        shutil.rmtree(runs_dir / "doomed", ignore_errors=True)
        app.run()
        assert not app.exception, (name, [e.message for e in app.exception])
        shutil.copytree(runs_dir / "synthetic", runs_dir / "doomed")
    shutil.rmtree(runs_dir / "doomed")


def test_the_app_ships_the_demo_runs_into_an_empty_runs_directory(tmp_path: Path,
                                                                   monkeypatch) -> None:
    monkeypatch.setenv("EXPLORER_RUNS_DIR", str(tmp_path / "runs"))
    app = AppTest.from_file(str(DASHBOARD / "app.py"), default_timeout=120)
    app.run()
    assert not app.exception
    shipped = sorted(p.name for p in (ROOT / "explorer" / "demo_runs").iterdir())
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == shipped
    assert app.title[0].value == "Runs"
    assert [t.value for t in app.toast if "Installed the demo runs" in t.value]
    app.run()  # the next page load: said once is enough
    assert not [t.value for t in app.toast if "Installed the demo runs" in t.value]


def test_every_page_icon_is_a_material_icon() -> None:
    """Emoji icons show as empty boxes where no emoji font is installed; Material icons are
    Streamlit's own font."""
    import ast

    from streamlit.material_icon_names import ALL_MATERIAL_ICONS

    tree = ast.parse((DASHBOARD / "app.py").read_text())
    icons = [kw.value.value for node in ast.walk(tree) if isinstance(node, ast.Call)
             for kw in node.keywords if kw.arg in ("icon", "page_icon")
             and isinstance(kw.value, ast.Constant)]
    assert len(icons) >= 8  # the app's icon and one per page
    for icon in icons:
        assert icon.startswith(":material/") and icon.endswith(":"), icon
        assert icon.removeprefix(":material/").removesuffix(":") in ALL_MATERIAL_ICONS, icon


def test_hover_mode_serves_a_sprite_of_the_points_images(page, runs_dir: Path) -> None:
    import numpy as np
    from PIL import Image

    from explorer.builders import load_splits
    from explorer.rundir.artifacts import load_analysis
    from explorer_dashboard.hover import STATIC

    app = page("embeddings", run="trained")
    pointer = next(r for r in app.radio if "images on hover" in r.options)
    pointer.set_value("images on hover").run()
    assert not app.exception
    html = app.get("iframe")[0].proto.srcdoc
    sprite_url = html.split("background-image:url('")[1].split("'")[0]
    sprite = np.asarray(Image.open(STATIC / sprite_url.removeprefix("/app/static/")))
    run = Run(runs_dir / "trained")
    artifact = load_analysis(run, 2)
    test = load_splits(run.config())[1]
    columns = int(html.split("% ")[1].split(")")[0])
    for row in (0, 7, len(artifact["arrays"]["indices"]) - 1):  # the tile of row r is image r
        r, c = divmod(row, columns)
        tile = sprite[r * 32 : (r + 1) * 32, c * 32 : (c + 1) * 32]
        expected = test.images[artifact["arrays"]["indices"][row]].numpy().transpose(1, 2, 0)
        np.testing.assert_array_equal(tile, expected)


def test_sweeps_page_plots_and_tabulates_a_sweeps_runs(page, runs_dir: Path) -> None:
    from explorer.rundir.run import write_json_atomic
    from explorer.rundir.sweep import display_rows, manifest_path, read_manifest, sweep_table

    # The two finished runs as a sweep over dataset (TINY's shapes, the synthetic run's
    # shapes-subgrid): one analysed on its exact graph, one without an exact record.
    assert [open_run(runs_dir / n).config().dataset for n in ("trained", "synthetic")] == [
        "shapes", "shapes-subgrid"]
    path = manifest_path(runs_dir, "by-dataset")
    path.parent.mkdir(exist_ok=True)
    write_json_atomic(path, {"format_version": 1, "name": "by-dataset", "key": "dataset",
                             "values": ["shapes", "shapes-subgrid"],
                             "runs": ["trained", "synthetic"], "preset": None,
                             "config_file": None, "overrides": {}, "created": time.time()})
    try:
        rows = sweep_table(runs_dir, read_manifest(path))
        app = page("sweep")
    finally:
        path.unlink()
    assert app.title[0].value == "Sweeps" and app.selectbox[0].value == "by-dataset"
    table = app.dataframe[0].value
    shown = table.astype(object).where(table.notna(), None).to_dict("records")
    assert shown == display_rows(rows, "dataset")
    # the figure's values: the trained run's guarantee as its latest artifact holds it, in %
    guarantee = load_analysis(open_run(runs_dir / "trained"), 2)["exact"]["guarantee"]
    traces = {t.get("name", ""): t for chart in charts(app) for t in chart["data"]}
    network = next(t for n, t in traces.items() if n.startswith("E(f) of the network"))
    assert network["x"] == ["shapes", "shapes-subgrid"]
    assert network["y"][0] == pytest.approx(100 * guarantee["error"]) and network["y"][1] is None
    bound = next(t for n, t in traces.items() if n.startswith("bound 8α"))
    assert bound["y"][0] == pytest.approx(100 * rows[0]["bound"])
    linear = traces["linear probe accuracy"]["y"]
    assert linear == pytest.approx([100 * r["linear"] for r in rows])


def test_the_demo_sweep_is_on_the_sweeps_page_of_a_fresh_runs_directory(
    tmp_path: Path, monkeypatch
) -> None:
    from explorer.rundir.demo import install_demo_runs

    runs = tmp_path / "runs"
    installed = install_demo_runs(runs)
    sweep_runs = [f"shapes-class-change-{v}" for v in ("0", "0.05", "0.1", "0.2", "0.3", "0.6",
                                                         "0.9")]
    assert set(sweep_runs) <= set(installed)
    monkeypatch.setenv("EXPLORER_RUNS_DIR", str(runs))
    app = AppTest.from_file(str(DASHBOARD / "sweep_page.py"), default_timeout=60)
    app.run()
    assert not app.exception and app.selectbox[0].value == "shapes-class-change"
    table = app.dataframe[0].value
    assert table["run"].tolist() == sweep_runs and set(table["state"]) == {"finished"}
    # each row's E(f*) bracket and α are those of its run's latest analysis
    for name, optimum_error, alpha in zip(sweep_runs, table["E(f*) %"], table["α %"],
                                          strict=True):  # fmt: skip
        run = open_run(runs / name)
        guarantee = load_analysis(run, analysed_epochs(run)[-1])["exact"]["guarantee"]
        upper, lower = guarantee["optimum_error"], guarantee["optimum_error_lower"]
        assert optimum_error.split("–")[-1] == f"{100 * upper:.1f}"
        assert optimum_error.split("–")[0] == f"{100 * lower:.1f}"
        assert alpha == pytest.approx(round(100 * guarantee["alpha"], 1))
    # the least-squares heads' errors grow with class_change_p; the best head found stays below
    least = []
    for name in sweep_runs:
        run = open_run(runs / name)
        guarantee = load_analysis(run, analysed_epochs(run)[-1])["exact"]["guarantee"]
        least.append(guarantee["optimum_error_least_squares"])
        assert guarantee["optimum_error"] <= least[-1] + 1e-12
    assert least == sorted(least)
    assert table["α %"].iloc[-1] > table["α %"].iloc[1] > 0 == table["α %"].iloc[0]


def test_sweeps_page_says_how_to_start_a_sweep(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("EXPLORER_RUNS_DIR", str(tmp_path))
    app = AppTest.from_file(str(DASHBOARD / "sweep_page.py"), default_timeout=60)
    app.run()
    assert not app.exception and not app.get("plotly_chart")
    assert "explorer sweep --runs-dir" in app.info[0].value
