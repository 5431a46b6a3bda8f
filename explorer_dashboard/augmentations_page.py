"""Augmentations: the run's two-view recipe on sample images, as a grid of positive pairs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import streamlit as st

from explorer.augment import RECIPES
from explorer.builders import graph_kernel, recipe_name
from explorer.config import GRAPH_AUGMENT
from explorer.readings.figures import grouped_grid
from explorer.readings.gallery import positive_pairs
from explorer_dashboard.common import chosen_run, dataset_splits

st.title("Augmentations")
st.caption("Each triple: an image, then two views drawn from the run's augmentation recipe. "
           "Two views of one image are a positive pair, an edge of the augmentation graph; the "
           "loss pulls their features together (HaoChen et al. 2021, Section 3.1).")


def markdown_table(header: tuple[str, str], rows: Sequence[tuple[str, str]]) -> str:
    """Two columns as a Markdown table: read as text, nothing folded or wrapped mid-name."""
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    return "\n".join(lines + [f"| {a} | {b} |" for a, b in rows])


run, config = chosen_run()
splits = dataset_splits(config)
if splits is None:
    st.stop()
train = splits[0]

left, right = st.columns([1, 3])
count = left.slider("Images", 4, 32, 12)
columns = left.slider("Images per row", 1, 4, 2,
                      help="each image with its two views: a triple, set apart from the next")
if left.button("Draw again"):
    st.session_state["augment-seed"] = st.session_state.get("augment-seed", 0) + 1
seed = st.session_state.get("augment-seed", 0)
chosen = np.random.default_rng(seed).choice(len(train), size=min(count, len(train)), replace=False)
originals, view1, view2 = positive_pairs(config, train.subset(chosen), seed=seed)
triples = np.stack([originals, view1, view2], axis=1).reshape(-1, *originals.shape[1:])
grid = grouped_grid(triples, 3, columns, pad=3, gap=4 * originals.shape[-1] // 5)
scale = max(1, 192 // originals.shape[-1])
# enlarged by pixel repetition (sharp at any zoom); a grey grid is 2-D and stays one channel
block = np.ones((scale, scale) if grid.ndim == 2 else (scale, scale, 1), dtype=np.uint8)
# the key above the grid, where the eye starts
right.markdown(f"**original | view 1 | view 2**, {columns} triples to a row · recipe "
               f"'{recipe_name(config)}'")
right.image(np.kron(grid, block))
if recipe_name(config) == GRAPH_AUGMENT:  # views drawn from the exact graph's kernel
    kernel = graph_kernel(config)
    changes = (f" Then, where a view is ambiguous (small shapes), a ring, cross or star is "
               f"drawn as circle, square or triangle with probability {kernel.class_change_p:g} "
               "× its ambiguity: the class changes." if kernel.class_change_p > 0
               else " The class never changes (class_change_p = 0).")
    st.caption("augment=graph: each view re-renders the image's factors with nuisance parts "
               "redrawn uniformly, each with its probability." + changes)
    rows = [("\u00a0+\u00a0".join(part), f"{p:g}") for part, p in  # one line each
            zip(kernel.PARTS, kernel.probabilities, strict=True)]
    rows.append(("class change (class_change_p)", f"{kernel.class_change_p:g}"))
    st.markdown(markdown_table(("redrawn", "probability"), rows))
else:  # under the images, at the page's width: each step on a line or two
    st.markdown(f"**Recipe `{recipe_name(config)}`**, applied to each view independently:")
    st.markdown(markdown_table(("step", "what it does"), RECIPES[recipe_name(config)]
                               .describe(view1.shape[-1])))
