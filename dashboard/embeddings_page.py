"""Embeddings: the 2-D layout of a checkpoint's backbone features, selections and neighbours."""

from __future__ import annotations

import json

import numpy as np
import streamlit as st
from torch import Tensor

from dashboard.common import analysed_checkpoints, chosen_run, dataset_splits
from dashboard.hover import hover_html, sprite_rows, sprite_sheet
from explorer.figures import embedding_figure, embedding_traces, image_grid, per_class_figure
from explorer.gallery import checkpoint_features, class_mix, nearest_neighbours

st.title("Embeddings")
st.caption("Backbone features of the test sample, projected to 2-D (UMAP or PCA). Each layout "
           "starts from the previous checkpoint's, so points keep their place as you move the "
           "slider.")
st.markdown("**Click a point** to see its image and its 12 nearest neighbours. Drag to zoom in "
            "(double-click zooms out). For a region's images and class mix, pick **Box Select** "
            "or **Lasso Select** in the chart's toolbar (top right) and drag around it.")

run, config = chosen_run(analysed_only=True)
by_epoch = analysed_checkpoints(run)

epochs = sorted(by_epoch)
left, right = st.columns([3, 1])
epoch = (left.select_slider("Checkpoint (epoch)", epochs, value=epochs[-1])
         if len(epochs) > 1 else epochs[0])
artifact = by_epoch[epoch]
arrays, classes = artifact["arrays"], artifact["classes"]
layouts = [name for name in ("umap", "pca") if name in arrays]
if not layouts:
    st.info("This analysis stored no 2-D layout.")
    st.stop()
projection = right.radio("Layout", layouts, horizontal=True)
labels, indices = arrays["labels"], arrays["indices"]


def images_of_test_split() -> Tensor | None:
    """The test split's images, loaded on first need (hover or selection), not for the plot."""
    splits = dataset_splits(config)
    if splits is None:
        return None
    if len(indices) and indices.max() >= len(splits[1]):
        st.error(f"The analysis of epoch {epoch} names test images beyond the {len(splits[1])} "
                 f"of this dataset; recompute it with: explorer analyze {run.path} --force")
        st.stop()
    return splits[1].images


figure = embedding_figure(arrays[projection], labels, classes, indices,
                          title=f"{run.name}, epoch {epoch}, {projection.upper()}")
pointer = st.radio("Pointer", ["select points", "images on hover"], horizontal=True,
                   help="select points: click a point, or box/lasso a region (the chart's "
                        "toolbar), to see the images below; images on hover: each point shows "
                        "its image as the pointer passes over it (no selection)")
if pointer == "images on hover":
    if (images := images_of_test_split()) is not None:
        sprite, columns = sprite_sheet(images[indices].numpy())
        st.iframe(hover_html(figure, sprite, columns, sprite_rows(len(indices), columns)),
                  height=figure.layout.height + 20)
    st.stop()
event = st.plotly_chart(
    figure,
    key=f"embedding-{run.name}-{projection}",
    on_select="rerun",
    selection_mode=("points", "box", "lasso"),
)
traces = embedding_traces(labels, len(classes))
rows = sorted({int(traces[p["curve_number"]][1][p["point_index"]])
               for p in event.selection.points if p.get("curve_number", -1) < len(traces)})


@st.cache_data(max_entries=4, show_spinner="Computing the checkpoint's features…")
def _features(run_path: str, epoch: int, config_json: str, indices_key: bytes) -> np.ndarray:
    del config_json  # part of the key: another config, other features
    splits = dataset_splits(config)
    assert splits is not None
    index = np.frombuffer(indices_key, dtype=np.int64)
    return checkpoint_features(run, config, epoch, splits[1], index)


def thumbnails(selected: np.ndarray, columns: int = 12) -> np.ndarray | None:
    images = images_of_test_split()
    return None if images is None else image_grid(images[indices[selected]].numpy(), columns)


if len(rows) == 1:
    row = rows[0]
    st.subheader(f"Test image {indices[row]}: {classes[labels[row]]}")
    picture = thumbnails(np.array([row]), 1)
    if picture is not None:
        st.image(picture, width=128)
    if epoch in dict(run.weight_checkpoints()):
        features = _features(str(run.path), epoch, json.dumps(config.to_dict(), sort_keys=True),
                             indices.astype(np.int64).tobytes())
        nearest = nearest_neighbours(features, row, k=12)
        st.markdown("**Nearest neighbours** (cosine similarity of backbone features, nearest "
                    "first): " + ", ".join(classes[labels[n]] for n in nearest))
        grid = thumbnails(nearest, 12)
        if grid is not None:
            st.image(grid, width=min(12 * 64, 900))
    else:
        st.info(f"No weights of epoch {epoch} in the run: neighbours need its checkpoint.")
elif rows:
    st.subheader(f"{len(rows)} selected images")
    mix = class_mix(labels[rows], classes)
    shares = {"share of the selection": [count / len(rows) for count in mix.values()]}
    st.plotly_chart(per_class_figure(list(mix), shares, "share of the selection (%)"), key="mix")
    shown = np.array(rows[:96])
    grid = thumbnails(shown, 16)
    if grid is not None:
        st.image(grid, caption=f"the first {len(shown)} selected images", width=900)
