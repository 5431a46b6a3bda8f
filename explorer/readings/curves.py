"""A run's training curves and its share of the optimum, as Vega-Lite specs; each run's colour.

The Runs page is the dashboard's first page, and these are its only charts. As Vega-Lite (a
0.8 MB library in the browser) rather than Plotly (4.7 MB, about 1.2 s to load on 2 busy cores)
they let the first visit draw within its 3 s (issue 28, item 9). Pure functions from metrics
records to a spec (plain JSON, for ``st.vega_lite_chart``); nothing here imports Plotly or
Streamlit.

A spec holds its data as long rows, one per drawn point, in the dataset named :data:`ROWS`
(``spec["datasets"]["rows"]``: ``{"run", "panel", "part", "loss", "epoch", "value"}``); the
panels filter them. (A named dataset, because Streamlit sends it beside the spec as Arrow and
inserts it by name: a concatenated chart's inline top-level data is not found again.)
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: Plotly's and D3's qualitative colours: the 20 run colours, the same in the Plotly charts.
PALETTE = [
    "#636EFA", "#EF553B", "#00CC96", "#AB63FA", "#FFA15A", "#19D3F3", "#FF6692", "#B6E880",
    "#FF97FF", "#FECB52", "#1F77B4", "#FF7F0E", "#2CA02C", "#D62728", "#9467BD", "#8C564B",
    "#E377C2", "#7F7F7F", "#BCBD22", "#17BECF",
]

#: The name of a spec's dataset.
ROWS = "rows"

#: Logged steps in the rolling median of the images/s curve.
SPEED_WINDOW = 9

#: The loss panel's parts and their dashes (solid loss, dashed positive, dotted negative part).
PARTS = {"loss": [1, 0], "positive part": [6, 3], "negative part": [2, 2]}

#: (metrics key, panel, part, record kind): where each logged number is drawn.
SERIES = [("loss", "loss", "loss", "step"), ("positive", "loss", "positive part", "step"),
          ("negative", "loss", "negative part", "step"),
          ("knn_accuracy", "knn", "loss", "epoch"), ("lr", "lr", "loss", "step"),
          ("images_per_s", "speed", "loss", "step")]

NO_KNN = ("no kNN accuracy yet: it is measured at the end of every knn_every-th epoch "
          "(never when 0)")

#: One panel's size in pixels: two side by side fill a 1,400 px window beside the sidebar.
PANEL = {"width": 300, "height": 210}


def run_color(name: str) -> str:
    """A run's colour, from its name alone: the same in every chart, whatever else is shown,
    but two runs may share one (use :func:`run_colors` when every run is known)."""
    return PALETTE[zlib.crc32(name.encode()) % len(PALETTE)]


def run_colors(names: Sequence[str]) -> dict[str, str]:
    """One colour per run, distinct for up to ``len(PALETTE)`` (20) runs, derived from each
    name (:func:`run_color`): a run keeps its colour when runs are added or removed, unless a
    new run's name hashes to the same colour and sorts before it; then the later name moves to
    the next free colour. ``names``: every run, whichever are shown."""
    taken: dict[str, str] = {}
    used: set[int] = set()
    for name in sorted(set(names), key=lambda n: (zlib.crc32(n.encode()) % len(PALETTE), n)):
        slot = zlib.crc32(name.encode()) % len(PALETTE)
        while slot in used and len(used) < len(PALETTE):
            slot = (slot + 1) % len(PALETTE)
        used.add(slot)
        taken[name] = PALETTE[slot]
    return {name: taken[name] for name in names}


def rolling_median(values: Sequence[float], window: int) -> list[float]:
    """The median of each value's centred ``window`` (narrower at the ends): follows the trend,
    not the dips of a step that waited for a checkpoint."""
    data, half = np.asarray(values, dtype=float), window // 2
    if len(data) <= 2 * half:
        return [float(np.median(data[max(0, i - half):i + half + 1])) for i in range(len(data))]
    inner = np.median(np.lib.stride_tricks.sliding_window_view(data, 2 * half + 1), axis=1)
    head = [np.median(data[:i + half + 1]) for i in range(half)]
    tail = [np.median(data[i - half:]) for i in range(len(data) - half, len(data))]
    return [float(v) for v in (*head, *inner, *tail)]


def _color_scale(names: Sequence[str], colors: Mapping[str, str] | None) -> dict[str, Any]:
    """Run name -> its colour, as a Vega-Lite colour channel with one legend under the chart."""
    return {"field": "run", "type": "nominal", "title": "run",
            "scale": {"domain": list(names),
                      "range": [(colors or {}).get(n) or run_color(n) for n in names]},
            "legend": {"orient": "bottom", "columns": 4, "labelLimit": 240}}


def _epoch(title: bool) -> dict[str, Any]:
    # zero: a short run's few points on an axis from 0, not from −2
    return {"field": "epoch", "type": "quantitative", "scale": {"zero": True},
            "title": "epoch" if title else None}


def _tooltip(value_title: str) -> list[dict[str, Any]]:
    return [{"field": "run", "type": "nominal"}, {"field": "part", "type": "nominal"},
            {"field": "epoch", "type": "quantitative", "format": ".2f"},
            {"field": "value", "type": "quantitative", "title": value_title, "format": ".4~g"}]


def _lines(panel: str, y_title: str, color: dict[str, Any], *, points: bool = False,
           bottom: bool = False, extra: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A view of the rows of ``panel`` (and ``extra`` filters), a line per run."""
    return {"transform": [{"filter": {"field": "panel", "equal": panel}}, *(extra or [])],
            "mark": {"type": "line", "point": points},
            "encoding": {"x": _epoch(bottom),
                         "y": {"field": "value", "type": "quantitative", "title": y_title,
                               "scale": {"zero": False}, "axis": {"format": "~r"}},
                         "color": color, "tooltip": _tooltip(y_title)}}


def _panel(panel: str, title: str, y_title: str, color: dict[str, Any],
           **lines: Any) -> dict[str, Any]:
    """One titled panel of :data:`PANEL`'s size: :func:`_lines` of ``panel``."""
    return {**PANEL, "title": title, **_lines(panel, y_title, color, **lines)}


def training_curves(
    metrics_by_run: Mapping[str, Sequence[dict[str, Any]]],
    colors: Mapping[str, str] | None = None,
    losses: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Loss (with the spectral loss's positive and negative parts), the kNN monitor, lr and
    images/s against epochs, one colour per run, as a Vega-Lite spec of four panels.

    Args:
        metrics_by_run: run name -> its ``metrics.jsonl`` records (``kind`` "step" or "epoch").
        colors: run name -> colour (:func:`run_colors` of every run); else :func:`run_color`.
        losses: run name -> its loss ("spectral", "simclr", ...): each loss then gets a y axis
            of its own in the loss panel (SimCLR's ≈ 5 would flatten the spectral ≈ −0.3), the
            first on the left, the others on the right, side by side.
    """
    names = list(metrics_by_run)
    rows: list[dict[str, Any]] = []
    for name, records in metrics_by_run.items():
        loss = (losses or {}).get(name, "")
        for key, panel, part, kind in SERIES:
            kept = [r for r in records if r.get("kind") == kind and key in r]
            scale = 100.0 if key == "knn_accuracy" else 1.0  # accuracy in percent, as in tables
            values = [scale * float(r[key]) for r in kept]
            if key == "images_per_s":  # pauses for checkpoints and kNN make a sawtooth
                values = rolling_median(values, SPEED_WINDOW)
            rows += [{"run": name, "panel": panel, "part": part, "loss": loss,
                      "epoch": float(r["epoch"]), "value": v} for r, v in zip(kept, values,
                                                                              strict=True)]
    color = _color_scale(names, colors)
    kinds = list(dict.fromkeys((losses or {}).get(name, "") for name in names))
    dash = {"field": "part", "type": "nominal", "title": "loss panel",
            "scale": {"domain": list(PARTS), "range": list(PARTS.values())},
            "legend": {"orient": "bottom"}}
    loss_layers = []
    for i, kind in enumerate(kinds):
        layer = _lines("loss", f"{kind} loss" if kind else "loss", color,
                       extra=[{"filter": {"field": "loss", "equal": kind}}])
        layer["encoding"]["strokeDash"] = dash
        # the first loss's axis on the left, each further one on the right, one beside the other
        layer["encoding"]["y"]["axis"].update(orient="left" if i == 0 else "right",
                                              offset=0 if i < 2 else 62 * (i - 1))
        loss_layers.append(layer)
    loss_panel = {**PANEL, "title": "loss (dashed: positive part, dotted: negative part)",
                  "layer": loss_layers, "resolve": {"scale": {"y": "independent"}}}
    if any(row["panel"] == "knn" for row in rows):
        knn = _panel("knn", "kNN accuracy (monitor, %)", "kNN accuracy (%)", color, points=True)
    else:  # an empty panel says why it is empty
        knn = {**PANEL, "title": "kNN accuracy (monitor, %)", "data": {"values": [{}]},
               "mark": {"type": "text", "color": "grey", "lineBreak": "\n", "fontSize": 12},
               "encoding": {"text": {"value": NO_KNN.replace(": ", ":\n")}}}
    panels = [loss_panel, knn,
              _panel("lr", "learning rate", "learning rate", color, bottom=True),
              _panel("speed", f"images / s (median of {SPEED_WINDOW} logged steps)", "images / s",
                     color, bottom=True)]
    # rows of side-by-side panels (Streamlit draws nothing of a wrapped "concat" with "columns")
    return {"datasets": {ROWS: rows}, "data": {"name": ROWS}, "spacing": 24,
            "vconcat": [{"hconcat": panels[:2], "spacing": 36},
                        {"hconcat": panels[2:], "spacing": 36}]}


def share_overlay(
    histories: Mapping[str, Sequence[tuple[int, float]]],
    colors: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The share of the provable optimum, L(f)/L* in %, of several runs against the epoch, as a
    Vega-Lite spec: a line per run (its colour from ``colors``, else :func:`run_color`), the
    axis following the values (a run worse than f = 0 is below the zero line), a grey line at
    0 and a dotted one at the optimum (100%).

    Args:
        histories: run name -> ``(epoch, share)`` of each exactly scored checkpoint
            (:func:`explorer.readings.overview.share_history`).
    """
    names = [name for name, history in histories.items() if history]
    rows = [{"run": name, "epoch": float(epoch), "value": 100 * share}
            for name in names for epoch, share in histories[name]]
    shares = [0.0, 100.0, *(row["value"] for row in rows)]
    y = {"field": "value", "type": "quantitative", "title": "of the optimum, L(f)/L* (%)",
         "scale": {"domain": [min(shares) - 5, max(shares) + 8]}}
    marks = [{"data": {"values": [{"value": 0.0}]}, "mark": {"type": "rule", "color": "grey"},
              "encoding": {"y": {"field": "value", "type": "quantitative"}}},
             {"data": {"values": [{"value": 100.0}]},
              "mark": {"type": "rule", "color": "grey", "strokeDash": [2, 2]},
              "encoding": {"y": {"field": "value", "type": "quantitative"}}},
             {"data": {"values": [{"value": 100.0, "text": "the optimum"}]},
              "mark": {"type": "text", "align": "left", "dy": -8, "color": "grey"},
              "encoding": {"y": {"field": "value", "type": "quantitative"},
                           "x": {"value": 4}, "text": {"field": "text"}}},
             {"mark": {"type": "line", "point": True},
              "encoding": {"x": _epoch(True), "y": y, "color": _color_scale(names, colors),
                           "tooltip": [{"field": "run", "type": "nominal"},
                                       {"field": "epoch", "type": "quantitative"},
                                       {"field": "value", "type": "quantitative",
                                        "title": "share (%)", "format": ".1f"}]}}]
    return {"datasets": {ROWS: rows}, "data": {"name": ROWS}, "height": 300, "layer": marks}
