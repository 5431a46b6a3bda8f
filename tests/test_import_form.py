"""The Runs page's import form (issue 29): a features file imported from the browser becomes a
run the other pages read, its stages shown while it works; a mistake is one line and no run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from explorer.rundir.artifacts import load_analysis
from explorer.rundir.run import list_runs
from explorer_dashboard.import_form import FEATURES
from tests.conftest import DASHBOARD
from tests.test_import_encoder import features_file


def runs_page(runs: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("EXPLORER_RUNS_DIR", str(runs))
    app = AppTest.from_file(str(DASHBOARD / "runs_page.py"), default_timeout=180)
    app.session_state["import-open"] = True  # the expander, opened
    app.run()
    assert not app.exception, [e.message for e in app.exception]
    return app


def fill(app: AppTest, path: str, arch: str, settings: str, name: str) -> AppTest:
    app.text_input(key="import-file").set_value(path)
    app.selectbox(key="import-arch").set_value(arch)
    app.text_input(key="import-set").set_value(settings)
    app.text_input(key="import-name").set_value(name)
    return app.button(key="import-go").click().run()


def test_a_features_file_imported_from_the_page_is_read_by_the_other_pages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, data = features_file(tmp_path)
    runs = tmp_path / "runs"
    app = fill(runs_page(runs, monkeypatch), str(path), FEATURES,
               "analysis_projection=pca knn_k=5", "from-the-page")
    assert not app.exception, [e.message for e in app.exception]
    said = [m.value for m in app.markdown]
    assert f"reading {path.name}…" in said
    assert "analysing the features: spectra, probes, layouts…" in said
    assert any(s.value.startswith("Imported `from-the-page`") for s in app.success)
    assert [r.name for r in list_runs(runs)] == ["from-the-page"]
    arrays = load_analysis(list_runs(runs)[0], 1)["arrays"]
    test_rows = np.flatnonzero(data["split"] == 1)
    np.testing.assert_array_equal(arrays["labels"], data["labels"][test_rows])

    for name in ("embeddings_page", "spectrum_page", "probe_page"):
        page = AppTest.from_file(str(DASHBOARD / f"{name}.py"), default_timeout=180)
        page.session_state["selected_run"] = "from-the-page"
        page.run()
        assert not page.exception, (name, [e.message for e in page.exception])
        assert any(i.value.startswith("Imported features (`embeddings.npz`") and "no views" in
                   i.value for i in page.info), name  # what this run cannot show, said

    # a clicked point's neighbours come from the file's features (there is no network)
    test_features = data["features"][test_rows].astype(np.float64)
    unit = test_features / np.linalg.norm(test_features, axis=1, keepdims=True)
    similarity = unit @ unit[0]
    similarity[0] = -np.inf
    nearest = np.argsort(-similarity, kind="stable")[:12]
    page = AppTest.from_file(str(DASHBOARD / "embeddings_page.py"), default_timeout=180)
    page.session_state["selected_run"] = "from-the-page"
    page.session_state["embedding-selection"] = {"run": "from-the-page", "epoch": 1,
                                                 "images": [0]}
    page.run()
    assert not page.exception, [e.message for e in page.exception]
    said = next(m.value for m in page.markdown if m.value.startswith("**Nearest neighbours**"))
    classes = [str(c) for c in data["classes"]]
    want = ", ".join(classes[data["labels"][test_rows][n]] for n in nearest)
    assert said.endswith(want), (said, want)

    runs_table = AppTest.from_file(str(DASHBOARD / "runs_page.py"), default_timeout=180)
    runs_table.run()
    assert any("imported runs were trained elsewhere (from-the-page)" in i.value
               for i in runs_table.info)


def test_a_mistake_in_the_form_is_one_line_and_makes_no_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = tmp_path / "runs"
    app = runs_page(runs, monkeypatch)
    cases = {str(tmp_path / "model.h5"): "not '.h5'", "": "Name the file to import"}
    assert cases
    for path, words in cases.items():
        fill(app, path, FEATURES, "", "")
        errors = [e.value for e in app.error]
        assert any(words in e for e in errors), errors
        assert all("\n" not in e for e in errors) and not app.exception
    assert not runs.exists() or list_runs(runs) == []
