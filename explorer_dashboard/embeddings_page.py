"""Embeddings: the 2-D layout of a checkpoint's backbone features h or projector features f,
selections and neighbours."""

from __future__ import annotations

import json

import numpy as np
import streamlit as st
from torch import Tensor

from explorer.readings.figures import (
    embedding_figure,
    embedding_traces,
    image_grid,
    per_class_figure,
    projector_features_label,
)
from explorer.readings.gallery import checkpoint_features, class_mix, nearest_neighbours
from explorer.rundir.records import as_analysis
from explorer_dashboard.common import analysed_checkpoints, chosen_run, dataset_splits
from explorer_dashboard.hover import hover_html, sprite_rows, sprite_sheet

st.title("Embeddings")
st.caption("The test sample's backbone features h, or its projector features (for the spectral "
           "loss f = clip(z), the features the theorem is about), projected to 2-D (UMAP or "
           "PCA). Each layout starts from the previous checkpoint's, so points keep their place "
           "as you move the slider.")
st.markdown("**Click a point** to see its image and its 12 nearest neighbours. Drag to zoom in "
            "(double-click zooms out). For a region's images and class mix, pick **Box Select** "
            "or **Lasso Select** in the chart's toolbar (top right) and drag around it.")

run, config = chosen_run(analysed_only=True)
by_epoch = analysed_checkpoints(run)

epochs = sorted(by_epoch)
left, right = st.columns([3, 1])
epoch = (left.select_slider("Checkpoint (epoch)", epochs, value=epochs[-1])
         if len(epochs) > 1 else epochs[0])
artifact = as_analysis(by_epoch[epoch])
arrays, classes = artifact.arrays, list(artifact.classes)
BACKBONE = "backbone h"
stored = any(f"{name}_projector" in arrays for name in ("umap", "pca"))
projector = (projector_features_label(artifact) if stored
             else "projector output (needs explorer analyze --force)")
# keyed: the choice keeps its place across checkpoints, whatever each one's label says. The
# projector's features open the page where the analysis has them: they are what the loss, and
# the theorem, are about
options = ["projector output", BACKBONE] if stored else [BACKBONE, "projector output"]
features = left.radio("Features", options,
                      format_func=lambda name: projector if name != BACKBONE else name,
                      horizontal=True, key="embedding-features",
                      help="backbone h: the features the linear probe reads. Projector output: "
                           "z = projector(h) as the run's loss reads it: f = clip(z) with the "
                           "run's μ for the spectral loss (the theorem's f), z/‖z‖ for SimCLR "
                           "and SimSiam. Analyses made before the projector layouts lack it: "
                           "`explorer analyze RUN --force` recomputes them.")
suffix = "" if features == BACKBONE else "_projector"
layouts = [name for name in ("umap", "pca") if f"{name}{suffix}" in arrays]
if not layouts:
    if suffix:
        st.info(f"The analysis of epoch {epoch} predates the projector layouts: recompute it "
                f"with `explorer analyze {run.path} --force` to see them (the backbone's "
                "layout is shown meanwhile).")
        suffix = ""
        layouts = [name for name in ("umap", "pca") if name in arrays]
    if not layouts:
        st.info("This analysis stored no 2-D layout.")
        st.stop()
projection = right.radio("Layout", layouts, horizontal=True)
if not suffix:
    st.caption("The backbone's h, before the projector, keeps more than the loss asks for: on "
               "`shapes` the scene (position, scale, colours) as well as the class, so its "
               "layout groups images by scene; the projector's features are what the loss "
               "shapes into one cluster per class.")
shown = BACKBONE if not suffix else projector_features_label(artifact, short=True)
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


# The selection is kept as test-image indices, which name the same images at every checkpoint
# and in both layouts: the chart itself is a new widget whenever its figure changes (another
# checkpoint, another layout), which would drop it. Its on_select callback records it.
SELECTION = "embedding-selection"
chart_key = f"embedding-{run.name}-{projection}{suffix}"
traces = embedding_traces(labels, len(classes))


def remember_selection() -> None:
    """The chart's new selection (a click, a box, a lasso; empty when cleared), as images."""
    points = st.session_state[chart_key]["selection"]["points"]
    picked = {int(traces[p["curve_number"]][1][p["point_index"]])
              for p in points if p.get("curve_number", -1) < len(traces)}
    st.session_state[SELECTION] = {"run": run.name, "epoch": epoch,
                                   "images": sorted(int(indices[r]) for r in picked)}


kept = st.session_state.get(SELECTION) or {}
images = kept.get("images", []) if kept.get("run") == run.name else []
rows = np.flatnonzero(np.isin(indices, images)).tolist() if images else []
figure = embedding_figure(arrays[f"{projection}{suffix}"], labels, classes, indices,
                          title=f"{run.name}, epoch {epoch}, {projection.upper()} of {shown}",
                          selected=np.array(rows, dtype=np.int64))
pointer = st.radio("Pointer", ["select points", "images on hover"], horizontal=True,
                   help="select points: click a point, or box/lasso a region (the chart's "
                        "toolbar), to see the images below; images on hover: each point shows "
                        "its image as the pointer passes over it (no selection)")
if pointer == "images on hover":
    if (images_all := images_of_test_split()) is not None:
        sprite, columns = sprite_sheet(images_all[indices].numpy())
        st.iframe(hover_html(figure, sprite, columns, sprite_rows(len(indices), columns)),
                  height=figure.layout.height + 20)
    st.stop()
st.plotly_chart(
    figure,
    key=chart_key,
    on_select=remember_selection,
    selection_mode=("points", "box", "lasso"),
)
if rows and epoch != kept.get("epoch", epoch):
    st.caption(f"The selection made at epoch {kept['epoch']}, followed to epoch {epoch} "
               "(double-click the chart's background to clear it).")


@st.cache_data(max_entries=4, show_spinner="Computing the checkpoint's features…", show_time=True)
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
    given = run.imported() or {}
    if given.get("kind") == "features" or epoch in dict(run.weight_checkpoints()):
        if given.get("kind") == "features":  # explorer import of an .npz: no network to run
            stored = run.load_features()
            features = stored["features"][stored["split"] == 1][indices]
        else:
            features = _features(str(run.path), epoch,
                                 json.dumps(config.to_dict(), sort_keys=True),
                                 indices.astype(np.int64).tobytes())
        nearest = nearest_neighbours(features, row, k=12)
        st.markdown("**Nearest neighbours** (cosine similarity of backbone features h, "
                    "whichever layout is shown; nearest first): "
                    + ", ".join(classes[labels[n]] for n in nearest))
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
