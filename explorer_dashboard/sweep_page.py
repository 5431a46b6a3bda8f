"""Sweeps: one sweep's runs side by side, the guarantee and the probes against the swept value.

Thin: :mod:`explorer.rundir.sweep` reads the manifests and runs,
:func:`explorer.readings.figures.sweep_figure` draws.
"""

from __future__ import annotations

import streamlit as st

from explorer.readings.figures import sweep_figure
from explorer.rundir.sweep import display_rows, format_value, list_sweeps, sweep_table
from explorer_dashboard.common import runs_dir

st.title("Sweeps")

sweeps = list_sweeps(runs_dir())
readable = {name: manifest for name, manifest, _ in sweeps if manifest is not None}
for name, manifest, error in sweeps:
    if manifest is None:
        st.warning(f"Sweep `{name}` is unreadable: {error}")
if not readable:
    st.info(f"No sweeps in `{runs_dir()}` yet. Start one from a terminal, one run per value, "
            f"e.g.:\n\n`explorer sweep --runs-dir {runs_dir()} --preset shapes-demo "
            "class_change_p=0,0.05,0.1,0.2`")
    st.stop()

name = st.selectbox("Sweep (newest first)", list(readable), index=0, key="sweep-picker")
manifest = readable[name]
key = manifest["key"]
rows = sweep_table(runs_dir(), manifest)
values = ", ".join(format_value(v) for v in manifest["values"])
fixed = ", ".join(f"{k}={format_value(v)}" for k, v in manifest["overrides"].items())
st.markdown(f"**{key}** = {values} · preset `{manifest['preset'] or 'none'}`"
            + (f" · fixed {fixed}" if fixed else ""))

st.plotly_chart(sweep_figure(rows, key), key="sweep-figure")
st.caption("From each run's latest analysed checkpoint (its exact graph, `shapes` runs only) and "
           "its probe.json. E(f) is the paper's downstream error: the best linear head on f, "
           "each natural datum classified by the majority vote over its augmented views of the "
           "training graph. It is bracketed: the marker is the best head found (an upper "
           "bound), the bar reaches down to a bound that holds for every head (one number "
           "where the two meet). The linear probe is another error: a head fitted on training "
           "images and tested on held-out scenes. E(f*): the same for the optimum. The bound "
           "8α/(1 − γ_{k+1}) + 2α, proven in docs/THEORY.md, holds for f* and is above 100% "
           "(says nothing) once α passes about (1 − γ_{k+1})/8: the axis stops at 100% and "
           "marks those values ▲. Share of the optimum: 100·(1 − gap) of the population loss. "
           "A run still training or not analysed leaves gaps.")
st.dataframe(display_rows(rows, key), hide_index=True)
st.caption(f"Continue this sweep: `explorer sweep --resume {runs_dir()}/.sweeps/{name}.json`")
