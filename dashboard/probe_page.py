"""Probe: per-class accuracy, the confusion matrix, baselines and other runs."""

from __future__ import annotations

import streamlit as st

from dashboard.common import analyses, chosen_run, runs_dir, show_analysis_errors
from explorer.errors import UserError
from explorer.evaluate import LABELS, split_note
from explorer.figures import confusion_figure, per_class_figure
from explorer.run_tables import csv_text, per_class_table
from explorer.runs import list_runs

st.title("Probe")
st.caption("Linear and kNN classifiers on frozen backbone features of the final checkpoint "
           "(`explorer probe`), beside raw pixels and the same network at its random "
           "initialisation.")

run, config = chosen_run()
try:
    probe = run.probe()
except UserError as err:
    st.error(f"probe.json of `{run.name}` is unreadable: {err}")
    probe = None

source = "probe.json"
if probe is None:  # fall back on the latest analysed checkpoint's probes
    by_epoch, errors = analyses(run)
    show_analysis_errors(errors)
    if not by_epoch:
        st.info(f"`{run.name}` has no probe results yet: run `explorer probe {run.path}`.")
        st.stop()
    latest = by_epoch[max(by_epoch)]
    probe = {"epoch": latest["epoch"], "classes": latest["classes"],
             "methods": {"trained": latest["probes"]}}
    source = f"the analysis of epoch {latest['epoch']} (its evaluation sample)"

classes = probe["classes"]
methods = probe.get("methods", {})
st.markdown(f"Epoch {probe.get('epoch')}, from {source}.")
summary = [
    {"features": LABELS.get(key, key),
     "linear %": round(100 * m["linear"]["accuracy"], 1),
     "kNN %": round(100 * m["knn"]["accuracy"], 1)}
    for key, m in methods.items()
]
st.dataframe(summary, hide_index=True)
if note := split_note(config):
    st.caption(note)

series = {}
for key, m in methods.items():
    for kind in ("linear", "knn"):
        series[f"{LABELS.get(key, key)} {kind}"] = m[kind]["per_class_accuracy"]
st.subheader("Accuracy per class")
st.plotly_chart(per_class_figure(classes, series), key="per-class")
per_class = per_class_table(classes, series)
with st.expander("The table (%)"):
    st.dataframe(per_class, hide_index=True, column_config={
        name: st.column_config.NumberColumn(format="%.1f") for name in series})
st.download_button("Download the accuracy per class (CSV)", csv_text(per_class),
                   file_name=f"{run.name}-per-class-accuracy.csv", mime="text/csv",
                   on_click="ignore", icon=":material/download:")

left, right = st.columns(2)
choice = left.selectbox("Confusion matrix of", list(series))
key = next(k for k in methods if choice.startswith(LABELS.get(k, k)))
kind = "knn" if choice.endswith("knn") else "linear"
right.plotly_chart(confusion_figure(methods[key][kind]["confusion"], classes), key="confusion")
left.caption("Rows are true classes, columns predictions; colour is the share of the row.")

st.subheader("Other runs on the same dataset")
others = {}
for other in list_runs(runs_dir()):
    if other.name == run.name:
        continue
    try:
        if other.config().dataset != config.dataset:
            continue
        trained = (other.probe() or {}).get("methods", {}).get("trained")
    except UserError:
        continue
    if trained:
        others[other.name] = trained
if others:
    comparison = {f"{run.name} linear": methods["trained"]["linear"]["per_class_accuracy"]}
    comparison.update({f"{n} linear": t["linear"]["per_class_accuracy"] for n, t in others.items()})
    st.plotly_chart(per_class_figure(classes, comparison), key="others")
else:
    st.caption("No other probed run of this dataset.")
