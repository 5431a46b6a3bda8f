"""A Plotly scatter that shows each point's image on hover: ``st.plotly_chart`` cannot (hover
labels take no images), so this draws the same figure with plotly.js in an HTML component.

plotly.js (from the plotly package) and a sprite sheet of the thumbnails (one PNG, tiles in the
layout's row order) are served by Streamlit's static file server from ``static/`` beside app.py,
so the browser caches them and a page rerun sends only the figure.
"""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import plotly
import plotly.graph_objects as go
from PIL import Image

from explorer.readings.figures import image_grid

STATIC = Path(__file__).resolve().parent / "static"
URL = "/app/static"
TILE = 96  # pixels of the hover thumbnail


def _served(relative: str, payload: Callable[[], bytes], mime: str) -> str:
    """The URL of ``static/relative``, written once from ``payload()``. Where the package's
    folder cannot be written (an installation owned by another user), a ``data:`` URL instead:
    the page carries the bytes itself, uncached, and still fetches nothing from elsewhere."""
    target = STATIC / relative
    try:
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(".tmp")
            tmp.write_bytes(payload())
            tmp.replace(target)
        return f"{URL}/{relative}"
    except OSError:
        return f"data:{mime};base64,{base64.b64encode(payload()).decode()}"


def ensure_plotly_js() -> str:
    """plotly.min.js from static/ (copied there once); returns its URL."""
    source = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    return _served("plotly.min.js", source.read_bytes, "text/javascript")


def sprite_sheet(images: np.ndarray) -> tuple[str, int]:
    """Uint8 thumbnails (M, C, H, W) as one PNG in static/; returns (URL, columns)."""
    columns = int(np.ceil(np.sqrt(len(images))))
    digest = hashlib.sha1(images.tobytes()).hexdigest()[:16]

    def png() -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(image_grid(images, columns, pad=0)).save(buffer, format="PNG")
        return buffer.getvalue()

    return _served(f"sprites/{digest}.png", png, "image/png"), columns


def hover_html(figure: go.Figure, sprite_url: str, columns: int, rows: int) -> str:
    """The figure in plotly.js; hovering a point shows tile ``customdata[0]`` of the sprite."""
    size = f"{columns * TILE}px {rows * TILE}px"
    # Class and run names end up in a <script>: no "</script>" may close it early.
    data = figure.to_json().replace("</", "<\\/")
    return f"""
<div id="wrap" style="position:relative;font-family:sans-serif">
  <div id="plot"></div>
  <div id="tip" style="position:absolute;display:none;pointer-events:none;background:#fff;
       border:1px solid #444;padding:3px;font-size:12px;z-index:10">
    <div id="thumb" style="width:{TILE}px;height:{TILE}px;image-rendering:pixelated;
         background-image:url('{sprite_url}');background-size:{size}"></div>
    <div id="label"></div>
  </div>
</div>
<script src="{ensure_plotly_js()}"></script>
<script>
const figure = {data};
const plot = document.getElementById("plot");
const tip = document.getElementById("tip");
// The tip below says what Plotly's label would (class, test image): no label under it.
figure.data.forEach((trace) => {{ trace.hoverinfo = "none"; delete trace.hovertemplate; }});
Plotly.newPlot(plot, figure.data, figure.layout, {{responsive: true, displaylogo: false}});
plot.on("plotly_hover", (event) => {{
  const point = event.points[0];
  const row = point.customdata[0];
  const x = (row % {columns}) * {TILE}, y = Math.floor(row / {columns}) * {TILE};
  document.getElementById("thumb").style.backgroundPosition = `-${{x}}px -${{y}}px`;
  document.getElementById("label").textContent =
    `${{point.data.name}} · test image ${{point.customdata[1]}}`;
  const box = plot.getBoundingClientRect();
  tip.style.left = Math.min(event.event.clientX - box.left + 12, box.width - {TILE} - 10) + "px";
  tip.style.top = (event.event.clientY - box.top + 12) + "px";
  tip.style.display = "block";
}});
plot.on("plotly_unhover", () => {{ tip.style.display = "none"; }});
</script>
"""


def sprite_rows(count: int, columns: int) -> int:
    return int(np.ceil(count / columns))

