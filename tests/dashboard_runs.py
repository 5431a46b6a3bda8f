"""Runs for the dashboard's tests, written through the package's own writers (no mocks).

``synthetic_run`` fills a run with 20 checkpoints' analysis artifacts of 5,000 points (the size the
speed goal names) from a seeded generator: what the pages must draw quickly, whatever the numbers.
``trace_values`` reads a chart's data back from the figure JSON a page sent.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from explorer.config import build_config
from explorer.data import load_dataset
from explorer.rundir.artifacts import save_analysis
from explorer.rundir.run import Run, create_run


def trace_values(trace: dict, key: str) -> list[float]:
    """A Plotly trace's data as a list: Plotly writes NumPy arrays as base64 typed arrays."""
    data = trace[key]
    if isinstance(data, dict) and "bdata" in data:
        return np.frombuffer(base64.b64decode(data["bdata"]), dtype=data["dtype"]).tolist()
    return list(data)


def vega_charts(app: Any) -> list[tuple[dict, dict[str, list[dict]]]]:
    """Each Vega-Lite chart an AppTest page drew: its spec, and its named datasets as rows
    (Streamlit takes them out of the spec and sends them beside it as Arrow)."""
    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

    return [(json.loads(chart.proto.spec),
             {data.name: convert_arrow_bytes_to_pandas_df(data.data.data).to_dict("records")
              for data in chart.proto.datasets})
            for chart in app.get("vega_lite_chart")]


CLASSES = ["circle", "square", "triangle", "cross", "ring", "star"]


def _probe(rng: np.random.Generator, n: int = 6) -> dict:
    confusion = rng.integers(0, 50, (n, n)) + np.diag(rng.integers(200, 300, n))
    per_class = (np.diag(confusion) / confusion.sum(1)).tolist()
    accuracy = float(np.trace(confusion) / confusion.sum())
    return {"accuracy": accuracy, "per_class_accuracy": per_class, "confusion": confusion.tolist()}


def synthetic_run(runs_dir: Path, name: str, *, checkpoints: int = 20, points: int = 5000,
                  dim: int = 128, seed: int = 0) -> Run:
    rng = np.random.default_rng(seed)
    config = build_config("shapes-demo", None, {"epochs": checkpoints, "checkpoint_every": 1})
    run = create_run(runs_dir, config, name=name)
    test_images = len(load_dataset(config.dataset, "test"))  # what the thumbnails index
    steps_per_epoch = 20
    for epoch in range(1, checkpoints + 1):
        for step in range(steps_per_epoch * (epoch - 1), steps_per_epoch * epoch, 5):
            positive = -2 + 1 / (1 + step / 50)
            run.append_metrics({"kind": "step", "epoch": step / steps_per_epoch, "step": step,
                                "loss": positive + 0.3, "positive": positive, "negative": 0.3,
                                "lr": 0.2, "images_per_s": 1500.0, "time": time.time()})
        run.append_metrics({"kind": "epoch", "epoch": epoch, "step": steps_per_epoch * epoch,
                            "loss": -1.0, "knn_accuracy": min(0.9, 0.2 + epoch / 25)})
        labels = rng.integers(0, len(CLASSES), points)
        centres = rng.normal(size=(len(CLASSES), 2)) * 5
        layout = (centres[labels] + rng.normal(size=(points, 2))).astype(np.float32)
        eigs = np.sort(rng.random(dim))[::-1] ** (1 + epoch / 10)
        record = {"classes": CLASSES, "n_train": points, "n_test": points, "n_views": 2560,
                  "projected_split": "test", "batch_size": 256, "mu": 10.0, "seed": 1,
                  "projections": ["pca", "umap"],
                  "metrics": {part: {"rankme": float(dim * 0.5), "alpha": 1.0 + epoch / 20,
                                     "n_above_0.5": 3, "n_above_0.9": 1}
                              for part in ("projector", "backbone", "cross", "graph")},
                  "probes": {"knn": _probe(rng), "linear": _probe(rng)}}
        record["metrics"]["graph"]["stationarity_residual"] = 1 / epoch
        arrays = {"projector_eigs_mean": eigs, "projector_eigs_std": eigs / 10,
                  "backbone_eigs_mean": eigs, "backbone_eigs_std": eigs / 10,
                  "cross_eigs_mean": eigs, "cross_eigs_std": eigs / 10, "graph_c_eigs": eigs,
                  "graph_c_plus_eigs": eigs ** 2, "pca": layout, "umap": layout[:, ::-1].copy(),
                  "labels": labels.astype(np.int64),
                  # indices into the preset's test split, repeated: synthetic points
                  "indices": np.arange(points, dtype=np.int64) % test_images}
        save_analysis(run, epoch, record, arrays)
    run.save_probe({"epoch": checkpoints, "classes": CLASSES, "n_train": points, "n_test": points,
                    "methods": {key: {"linear": _probe(rng), "knn": _probe(rng)}
                                for key in ("trained", "raw_pixels", "random_init")}})
    run.update_status(state="finished", epoch=checkpoints, step=steps_per_epoch * checkpoints,
                      progress=1.0)
    return run


def corrupt_run(runs_dir: Path, name: str) -> Run:
    """A run whose config.json was cut short by a crash (a half-written run)."""
    run = create_run(runs_dir, build_config("shapes-demo"), name=name)
    (run.path / "config.json").write_text('{"format_version": 1, "config": {"data')
    return run


def opened_groups(*groups: str) -> dict[str, bool]:
    """Session state that opens these folded groups of the Train form (default: all of them):
    the keys of their expanders. A folded group draws none of its fields."""
    from explorer.config_docs import GROUPS

    return {"train-group-" + group.replace(" ", "-"): True for group in groups or GROUPS}
