"""Streamlit's chart and table code fetched by the browser before a page asks for it.

Streamlit's browser side loads the code of each kind of element when the first element of that
kind arrives. On a first visit that is late: the Runs page's table and Vega-Lite curves (about
2 MB of JavaScript) arrive only once the server has read every run, and Plotly (4.7 MB, about
1.2 s to load and run on 2 busy cores) is loaded by whichever page draws the first Plotly
chart. So the first
thing the Runs page draws is a script that imports the page's code at once, while the server
reads the runs; and whichever page a session opens on, once drawn, imports the code the others
need when the browser is idle, so that the next page finds it loaded (issue 28, item 9: the
first visit within 3 s). Not at once on other pages: there it would slow their own drawing.

Streamlit names these files after their content's hash; they are found in the installed
Streamlit by their stem. With a Streamlit whose files are named otherwise, nothing is preloaded
and every page still draws, only later.
"""

from __future__ import annotations

import json
from pathlib import Path

import streamlit as st

#: Streamlit's own JavaScript files, as its server serves them under ``static/js/``.
STATIC_JS = Path(st.__file__).resolve().parent / "static" / "static" / "js"

#: What the Runs page draws (the Train page too): tables (Glide Data Grid), Vega-Lite curves.
TABLES_AND_CURVES = ("DataFrame", "ArrowVegaLiteChart", "embed")
#: What most other pages draw.
PLOTLY = ("PlotlyChart",)


def chunk_files(stems: tuple[str, ...], folder: Path = STATIC_JS) -> list[str]:
    """The file name of each stem's chunk (``DataFrame`` -> ``DataFrame.-f9-1zS0.js``); a stem
    that names no file, or more than one, is left out."""
    names = []
    for stem in stems:
        found = sorted(p.name for p in folder.glob(f"{stem}.*.js") if p.name.count(".") == 2)
        if len(found) == 1:
            names.append(found[0])
    return names


def preload_script(files: list[str], *, after_drawn: bool) -> str:
    """A script that imports ``files`` from beside Streamlit's own ``index`` script (wherever the
    server mounts it): at once, or once the page is drawn (no run in progress, every chart
    holding its marks) and the browser is next idle, so as not to slow the page itself."""
    load = (f"const load = () => {json.dumps(files)}.forEach("
            "f => import(index.src.replace(/[^/]*$/, f)).catch(() => {}));")
    drawn = ("const drawn = () => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
             " && [...document.querySelectorAll('[data-testid=\"stVegaLiteChart\"]')]"
             ".every(c => c.querySelector('canvas, svg.marks'))"
             " && [...document.querySelectorAll('[data-testid=\"stPlotlyChart\"]')]"
             ".every(c => c.querySelector('.js-plotly-plot'));"
             "const wait = () => drawn() ? (window.requestIdleCallback || setTimeout)(load)"
             " : setTimeout(wait, 250);")
    return ("<script>(() => {"
            "const index = document.querySelector('script[src*=\"static/js/index\"]');"
            "if (!index) return;" + load + (drawn + "setTimeout(wait, 250);" if after_drawn
                                            else "load();")
            + "})()</script>")


def preload(stems: tuple[str, ...], *, after_drawn: bool = False) -> None:
    """Draw (in the sidebar, where it takes no room) the script that imports ``stems``' code."""
    files = chunk_files(stems)
    if files:
        st.sidebar.html(preload_script(files, after_drawn=after_drawn),
                        unsafe_allow_javascript=True)
