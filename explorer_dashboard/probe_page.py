"""Probe: per-class accuracy, the confusion matrix, baselines, the analysis sample's probes over
the checkpoints (backbone and projector features), and other runs."""

from __future__ import annotations

from dataclasses import asdict

import streamlit as st

from explorer.analysis.probe_run import LABELS, split_note
from explorer.errors import UserError
from explorer.readings.figures import (
    confusion_figure,
    per_class_figure,
    probe_history,
    probe_history_figure,
    projector_features_label,
)
from explorer.readings.run_tables import csv_text, per_class_table
from explorer.rundir.records import as_analysis
from explorer.rundir.run import list_runs
from explorer_dashboard.common import analyses, chosen_run, runs_dir, show_analysis_errors

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
    latest = as_analysis(by_epoch[max(by_epoch)])
    probe = {"epoch": latest.epoch, "classes": list(latest.classes),
             "methods": {"trained": {kind: asdict(scores)
                                     for kind, scores in latest.probes.items()}}}
    source = f"the analysis of epoch {latest.epoch} (its evaluation sample)"

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

st.subheader("Probe accuracy over checkpoints")
loaded, errors = analyses(run)
by_epoch = {e: as_analysis(a) for e, a in loaded.items()}
if source == "probe.json":  # else shown above already
    show_analysis_errors(errors)
if not by_epoch:
    st.caption(f"No analysed checkpoint yet: `explorer analyze {run.path}` probes each one.")
else:
    with_projector = [e for e in sorted(by_epoch) if by_epoch[e].probes_projector]
    projector = (projector_features_label(by_epoch[with_projector[-1]], short=True)
                 if with_projector else "projector output")
    st.caption("The analysis sample's probes (`explorer analyze`), at every analysed checkpoint: "
               "linear and kNN classifiers fitted on the training sample's clean images and "
               "scored on the test sample, on the backbone features h (solid) and on the "
               f"projector features, {projector} (dashed). The final probe (`explorer probe`, "
               "probe.json) is separate: it is fitted on the whole training split and scored "
               "on the whole test split.")
    if len(with_projector) < len(by_epoch):
        old = [e for e in sorted(by_epoch) if e not in with_projector]
        st.info(f"The analyses of epoch{'s' if len(old) > 1 else ''} "
                f"{', '.join(map(str, old))} predate the projector probes: "
                f"`explorer analyze {run.path} --force` recomputes them with the projector probes.")
    st.plotly_chart(probe_history_figure(by_epoch, projector), key="probe-history")
    history = []
    for row in probe_history(by_epoch):
        shown = {"epoch": row.pop("epoch")}
        for name, value in row.items():
            if with_projector or not name.startswith("projector"):
                shown[f"{name.replace('projector output', projector)} %"] = (
                    None if value is None else round(100 * value, 1))
        history.append(shown)
    with st.expander("The numbers (%)", expanded=False):
        st.dataframe(history, hide_index=True, column_config={
            name: st.column_config.NumberColumn(format="%.1f") for name in history[0]
            if name != "epoch"})
    st.download_button("Download the probe accuracy over checkpoints (CSV)", csv_text(history),
                       file_name=f"{run.name}-probe-history.csv", mime="text/csv",
                       on_click="ignore", icon=":material/download:", key="history-csv")

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
