"""explorer_dashboard.preload: the chunk files it names exist in the installed Streamlit (a
Streamlit that renames them makes this fail, rather than silently slowing the first visit), and
a stem that names no file, or several, is left out. The browser side is tested in
tests/test_browser.py (the files fetched by a page that draws none of them)."""

from __future__ import annotations

from pathlib import Path

from explorer_dashboard.preload import PLOTLY, STATIC_JS, TABLES_AND_CURVES, chunk_files


def test_every_preloaded_stem_names_one_file_of_the_installed_streamlit() -> None:
    stems = TABLES_AND_CURVES + PLOTLY
    files = chunk_files(stems)
    assert len(files) == len(stems) == 4
    for stem, name in zip(stems, files, strict=True):
        assert name.startswith(f"{stem}.") and (STATIC_JS / name).is_file()
        assert (STATIC_JS / name).stat().st_size > 1000  # code, not a stub


def test_a_stem_with_no_file_or_several_is_left_out(tmp_path: Path) -> None:
    for name in ("DataFrame.abc.js", "embed.x1.js", "embed.x2.js", "embedded.y.js",
                 "PlotlyChart.z.js.map"):
        (tmp_path / name).write_text("//")
    assert chunk_files(("DataFrame", "embed", "PlotlyChart", "Missing"), tmp_path) == [
        "DataFrame.abc.js"]
