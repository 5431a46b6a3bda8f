"""The Runs and Train pages' Vega-Lite charts (explorer.readings.curves): every logged number in
its panel, checked against the records given; each spec valid against Vega-Lite's JSON schema
(the one Altair ships); colours derived from names; the rolling median against a plain loop."""

from __future__ import annotations

from typing import Any

import jsonschema
import numpy as np
import pytest
from altair.vegalite.v6.schema import load_schema

from explorer.readings.curves import (
    NO_KNN,
    ROWS,
    SPEED_WINDOW,
    rolling_median,
    run_color,
    run_colors,
    share_overlay,
    training_curves,
)

SCHEMA = jsonschema.Draft7Validator(load_schema())


def valid(spec: dict[str, Any]) -> dict[str, Any]:
    errors = [error.message for error in SCHEMA.iter_errors(spec)]
    assert not errors, errors[:3]
    return spec


def panels(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """loss, kNN, lr, images/s: two rows of two."""
    return [panel for row in spec["vconcat"] for panel in row["hconcat"]]


def series(spec: dict[str, Any], run: str, panel: str, part: str = "loss") -> list[float]:
    return [r["value"] for r in spec["datasets"][ROWS]
            if (r["run"], r["panel"], r["part"]) == (run, panel, part)]


def shown_colours(spec: dict[str, Any]) -> dict[str, str]:
    scale = panels(spec)[0]["layer"][0]["encoding"]["color"]["scale"]
    return dict(zip(scale["domain"], scale["range"], strict=True))


def filters(panel: dict[str, Any]) -> list[dict[str, Any]]:
    return [t["filter"] for t in panel.get("transform", [])]


STEPS = [{"kind": "step", "epoch": e / 2, "loss": -1.0 - e, "positive": -2.0, "negative": 1.0,
          "lr": 0.1, "images_per_s": 100.0} for e in range(4)]


def test_training_curves_keep_every_logged_number_in_its_panel() -> None:
    epochs = [{"kind": "epoch", "epoch": 1, "loss": -1.5, "knn_accuracy": 0.5}]
    simclr = [{"kind": "step", "epoch": 0.5, "loss": 5.0, "lr": 0.1, "images_per_s": 90.0}]
    spec = valid(training_curves({"spec": STEPS + epochs, "simclr": simclr}))
    assert series(spec, "spec", "loss") == [r["loss"] for r in STEPS]  # the epoch record's not
    assert series(spec, "spec", "loss", "positive part") == [-2.0] * 4
    assert series(spec, "spec", "loss", "negative part") == [1.0] * 4
    assert series(spec, "simclr", "loss", "positive part") == []  # SimCLR logs no parts
    assert series(spec, "spec", "knn") == [50.0]  # accuracy in percent, as in the tables
    assert series(spec, "simclr", "lr") == [0.1] and series(spec, "simclr", "speed") == [90.0]
    # every row is drawn by one panel: the panels' filters name every row's panel
    loss, knn, lr, speed = panels(spec)
    drawn = {f["equal"] for p in (knn, lr, speed) for f in filters(p)[:1]}
    drawn |= {filters(layer)[0]["equal"] for layer in loss["layer"]}
    assert {r["panel"] for r in spec["datasets"][ROWS]} == drawn == {"loss", "knn", "lr", "speed"}
    # "epoch" under the bottom row only: under the top row it ran into the lower titles
    assert [layer["encoding"]["x"]["title"] for layer in loss["layer"]] == [None]
    assert knn["encoding"]["x"]["title"] is None
    assert [p["encoding"]["x"]["title"] for p in (lr, speed)] == ["epoch", "epoch"]


def test_a_runs_colour_does_not_change_with_the_selection() -> None:
    runs = {name: STEPS for name in ("a", "b", "c", "d")}

    def colours(names: list[str]) -> dict[str, str]:
        return shown_colours(training_curves({n: runs[n] for n in names}))

    alone = colours(["c"])
    assert alone == {"c": run_color("c")}
    assert colours(["a", "b", "c"])["c"] == alone["c"] == colours(["d", "c"])["c"]


def test_every_run_gets_its_own_colour_from_its_name() -> None:
    everyone = [f"spectral-{i}" for i in range(20)]
    palette = run_colors(everyone)
    assert len(set(palette.values())) == 20  # no two oranges
    # a run keeps its colour when another is added whose colour is free (derived from names)
    demo = ["shapes-spectral", "shapes-simclr", "shapes-simsiam"]
    before = run_colors(demo)
    free = next(f"mine-{i}" for i in range(100)
                if run_color(f"mine-{i}") not in before.values())
    after = run_colors([*demo, free])
    assert all(after[n] == before[n] for n in demo) and after[free] == run_color(free)
    assert run_colors(list(reversed(demo))) == before  # not by place in the list
    spec = training_curves({"spectral-3": STEPS, "spectral-11": STEPS}, palette)
    assert shown_colours(spec) == {n: palette[n] for n in ("spectral-3", "spectral-11")}


def test_rolling_median_matches_a_plain_loop() -> None:
    rng = np.random.default_rng(0)
    for n in (1, 3, SPEED_WINDOW - 1, SPEED_WINDOW, 40):
        values = rng.normal(size=n).tolist()
        half = SPEED_WINDOW // 2
        expected = []
        for i in range(n):
            window = sorted(values[max(0, i - half):min(n, i + half + 1)])
            middle = len(window) // 2
            expected.append(window[middle] if len(window) % 2 else
                            (window[middle - 1] + window[middle]) / 2)
        assert rolling_median(values, SPEED_WINDOW) == pytest.approx(expected)


def test_images_per_second_is_smoothed_and_an_empty_knn_panel_says_why() -> None:
    # a step that waited for a checkpoint every fourth log: the dips are not the speed
    speeds = [100.0, 104.0, 98.0, 12.0] * 10
    steps = [{"kind": "step", "epoch": i / 8, "loss": 1.0, "lr": 0.1, "images_per_s": v}
             for i, v in enumerate(speeds)]
    spec = valid(training_curves({"run": steps}))
    speed = series(spec, "run", "speed")
    assert len(speed) == 40 and min(speed) >= 98.0 and max(speed) <= 104.0
    knn = panels(spec)[1]
    assert knn["mark"]["type"] == "text"
    assert knn["encoding"]["text"]["value"].replace("\n", " ") == NO_KNN
    spec = training_curves({"run": [*steps, {"kind": "epoch", "epoch": 5, "knn_accuracy": 0.4}]})
    assert panels(spec)[1]["mark"]["type"] == "line" and series(spec, "run", "knn") == [40.0]


def test_each_loss_gets_its_own_axis_and_short_runs_start_at_zero() -> None:
    spectral = [{**r, "loss": -0.3} for r in STEPS[:2]]
    simclr = [{**r, "loss": 4.8} for r in STEPS[:2]]
    spec = valid(training_curves({"a": spectral, "b": simclr, "c": spectral},
                                 losses={"a": "spectral", "b": "simclr", "c": "spectral"}))
    loss = panels(spec)[0]
    assert loss["resolve"]["scale"]["y"] == "independent"
    layers = [(filters(layer)[1]["equal"], layer["encoding"]["y"]["title"],
               layer["encoding"]["y"]["axis"]["orient"]) for layer in loss["layer"]]
    assert layers == [("spectral", "spectral loss", "left"), ("simclr", "simclr loss", "right")]
    runs_of = {kind: {r["run"] for r in spec["datasets"][ROWS]
                      if r["panel"] == "loss" and r["loss"] == kind} for kind, _, _ in layers}
    assert runs_of == {"spectral": {"a", "c"}, "simclr": {"b"}}
    drawn = [*loss["layer"], *panels(spec)[2:]]  # the kNN panel holds its note: no epochs yet
    assert all(view["encoding"]["x"]["scale"]["zero"] for view in drawn)


def test_three_losses_axes_stand_side_by_side() -> None:
    """SimCLR's and SimSiam's axes both right of the loss panel, the second set further out
    (Vega-Lite then makes room for both before the kNN panel: checked in the browser)."""
    names = {"a": "spectral", "b": "simclr", "c": "simsiam"}
    spec = valid(training_curves({name: STEPS for name in names}, losses=names))
    axes = [(layer["encoding"]["y"]["title"], layer["encoding"]["y"]["axis"]["orient"],
             layer["encoding"]["y"]["axis"]["offset"]) for layer in panels(spec)[0]["layer"]]
    assert [a[:2] for a in axes] == [("spectral loss", "left"), ("simclr loss", "right"),
                                     ("simsiam loss", "right")]
    assert axes[2][2] > axes[1][2] + 40  # room for the first right axis's tick labels


def test_share_overlay_in_percent_with_zero_and_the_optimum_in_view() -> None:
    spec = valid(share_overlay({"good": [(10, 0.5), (20, 0.9)], "bad": [(10, -0.3)], "none": []},
                               {"good": "#123456"}))
    rows = spec["datasets"][ROWS]
    assert [(r["run"], r["epoch"], r["value"]) for r in rows] == [
        ("good", 10.0, 50.0), ("good", 20.0, 90.0), ("bad", 10.0, pytest.approx(-30.0))]
    line = spec["layer"][-1]["encoding"]
    low, high = line["y"]["scale"]["domain"]
    assert low == pytest.approx(-35.0) and high == pytest.approx(108.0)  # below −30, above 100
    assert line["color"]["scale"]["domain"] == ["good", "bad"]  # a run with no score: no line
    assert line["color"]["scale"]["range"] == ["#123456", run_color("bad")]
    rules = [layer["data"]["values"][0]["value"] for layer in spec["layer"]
             if layer["mark"]["type"] == "rule"]
    assert rules == [0.0, 100.0]
