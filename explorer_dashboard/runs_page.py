"""Runs: every run in a table, the training curves of the chosen runs overlaid, and the
management of one run (its full config and resume changes, a copy into the Train form, rename,
delete, and the demo runs reinstalled)."""

from __future__ import annotations

import time
from typing import Any

import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from explorer.config_docs import label
from explorer.errors import UserError
from explorer.readings.curves import run_colors, share_overlay, training_curves
from explorer.readings.overview import RunSummary, overlay_default, share_history, summaries
from explorer.rundir.admin import (
    closest_preset,
    config_history,
    copy_name,
    delete_run,
    reinstall_demo_runs,
    rename_run,
    writer_pid,
)
from explorer.rundir.run import Run
from explorer_dashboard.common import (
    READ_ONLY_HELP,
    pick_run,
    read_only,
    refusal,
    run_names,
    runs_dir,
)
from explorer_dashboard.import_form import import_form
from explorer_dashboard.memory import drop_missing, kept

st.title("Runs")


def was_imported(run: Run) -> bool:
    """Whether ``run`` came from ``explorer import`` (False for a damaged or vanished run)."""
    try:
        return run.imported() is not None
    except (UserError, OSError):
        return False


def _state(summary: RunSummary) -> str:
    """A finished run may still be probed and analysed by its live process: say so."""
    if summary.activity in (None, "training"):
        return summary.state
    return f"{summary.state}, now {summary.activity}"


def _percent(value: float | None) -> str:
    """A fraction in percent, or — where there is none yet (a run still training)."""
    return "—" if value is None else f"{100 * value:.1f}"


@st.fragment(run_every=3)
def runs_table() -> None:
    rows = summaries(runs_dir())
    if not rows:
        st.info(f"No runs in `{runs_dir()}` yet: launch one on the **Train** page.")
        return
    st.dataframe(
        [
            {
                # what a run reached first (visible without scrolling), then how it was set up
                "name": s.name,
                "state": _state(s),
                "linear %": _percent(s.linear),
                "kNN %": _percent(s.knn),
                "of optimum %": _percent(s.share),
                "loss": s.loss,
                "epochs": s.epochs_text if s.state != "corrupt" else "?",
                "progress": s.progress,
                "dataset": s.dataset,
                "backbone": s.backbone,
                "augment": s.augment or "—",
                "μ": "n/a (no μ)" if s.mu is None else f"{s.mu:g}",  # SimCLR, SimSiam
                "lr": "—" if s.lr is None else f"{s.lr:g}",
                "batch": "—" if s.batch_size is None else str(s.batch_size),
            }
            for s in rows
        ],
        hide_index=True,
        column_config={
            "progress": st.column_config.ProgressColumn("progress", min_value=0, max_value=1),
            "of optimum %": st.column_config.TextColumn(
                help="L(f)/L* at the latest analysed checkpoint, on the exact augmentation "
                     "graph (shapes runs): 100 at the provable optimum, 0 for f = 0, below 0 "
                     "for features worse than f = 0; — before an analysis"),
        },
    )
    for s in rows:
        if s.state in ("corrupt", "failed", "died") and s.error:
            st.warning(f"`{s.name}` is {s.state}: {s.error}")


runs_table()

rows = [s for s in summaries(runs_dir()) if s.state != "corrupt"]
if rows:
    st.subheader("Training curves")
    names = [s.name for s in rows]
    # The first visit shows the run picked elsewhere, else the demo trio beside the newest run;
    # after that, the user's own choice, whatever is picked on other pages.
    default = [n for n in names if n == st.session_state.get("selected_run")] or overlay_default(
        names, runs_dir())
    drop_missing("runs-overlay", names)
    chosen = kept("runs-overlay", default, st.multiselect,
                  "Overlay runs (spectral beside SimCLR and SimSiam)", names)
    metrics = {}
    for name in chosen:
        try:
            metrics[name] = Run(runs_dir() / name).metrics()
        except (OSError, UserError):  # deleted since the listing
            st.warning(f"Run `{name}` is gone.")
    if any(metrics.values()):
        # Colours by place among every run (the Train page's too), not by the chosen ones.
        losses = {s.name: s.loss or "" for s in rows}
        st.vega_lite_chart(training_curves(metrics, run_colors(run_names()), losses),
                           key="curves")
        st.caption("The spectral loss is −2·E[z·z⁺] + E[(z·z′)²] (HaoChen et al. 2021, eq. 5): "
                   "its positive part pulls two views of one image together, its negative part "
                   "pushes apart views of different images. SimCLR and SimSiam losses sit on "
                   "their own scales, each on its own axis (right of the loss panel).")
    elif chosen:
        imported = [n for n in chosen if was_imported(Run(runs_dir() / n))]
        st.info("No training curves: " + ("imported runs were trained elsewhere "
                f"({', '.join(imported)}); their readings are on the other pages."
                if imported else "no metrics logged yet."))
    histories = {name: share_history(Run(runs_dir() / name)) for name in chosen}
    histories = {name: history for name, history in histories.items() if history}
    if histories:
        st.subheader("Share of the provable optimum")
        st.vega_lite_chart(share_overlay(histories, run_colors(run_names())), key="shares")
        st.caption("L(f)/L* on each run's exact augmentation graph (shapes runs, analysed "
                   "checkpoints): 100% at the optimum −Σγᵢ², 0% for f = 0. A run scored on a "
                   "graph it did not train on (the image-space run) can sit below 0. The "
                   "Spectrum page reads each run's in full.")


# -- managing one run --------------------------------------------------------------------------
NOTICE = "manage-notice"  # (kind, text) of the last action, said once at the section's top
CONFIRM = "manage-confirm"  # the run a first Delete click asked to confirm
NEW_NAME = "manage-new-name"


def _say(kind: str, text: str) -> None:
    st.session_state[NOTICE] = (kind, text)


def _rename(old: str) -> None:
    if message := refusal("rename runs"):
        _say("error", message)
        return
    new = str(st.session_state.get(NEW_NAME, "")).strip()
    try:
        rename_run(runs_dir(), old, new)
    except UserError as err:
        _say("error", str(err))
        return
    st.session_state["selected_run"] = new
    st.session_state.pop("manage-picker", None)  # drawn again at the new name
    st.session_state[NEW_NAME] = ""
    for key in ("runs-overlay", "kept:runs-overlay"):  # the overlay keeps showing the run
        chosen = st.session_state.get(key)
        if isinstance(chosen, list):
            st.session_state[key] = [new if n == old else n for n in chosen]
    _say("success", f"Renamed `{old}` to `{new}`.")


def _ask_delete(name: str) -> None:
    st.session_state[CONFIRM] = name


def _delete(name: str) -> None:
    st.session_state.pop(CONFIRM, None)
    if message := refusal("delete runs"):
        _say("error", message)
        return
    try:
        delete_run(runs_dir(), name)
    except UserError as err:
        _say("error", str(err))
        return
    if st.session_state.get("selected_run") == name:
        st.session_state.pop("selected_run")
    st.session_state.pop("manage-picker", None)
    _say("success", f"Deleted `{name}`.")


def _cancel() -> None:
    st.session_state.pop(CONFIRM, None)


def _reinstall() -> None:
    if message := refusal("reinstall the demo runs"):
        _say("error", message)
        return
    try:
        restored, skipped = reinstall_demo_runs(runs_dir())
    except (UserError, OSError) as err:
        _say("error", f"Cannot reinstall the demo runs: {err}")
        return
    said = [f"restored {', '.join(restored)}" if restored else "no demo run was missing"]
    if skipped:
        said.append(f"left alone, a run of that name being there already: {', '.join(skipped)}")
    _say("success" if restored else "info", "Demo runs: " + "; ".join(said) + ".")


def _shown(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def config_tables(run: Run) -> dict[str, Any] | None:
    """The run's full config as a table, and its resume changes (none: said so); returns the
    config, or None when it cannot be read (after saying why)."""
    try:
        history = config_history(run)
    except (UserError, OSError) as err:
        st.error(f"Cannot read the config of `{run.name}`: {err}")
        return None
    st.dataframe([{"field": name, "setting": label(name), "value": _shown(value)}
                  for name, value in history.config.items()],
                 hide_index=True, key="manage-config", height=280)
    if not history.changes:
        st.caption("Changes made by a resume: none (the config is the one it was launched with).")
        return history.config
    st.markdown("**Changes made by a resume**")
    st.dataframe([{"step": "?" if c.step is None else str(c.step), "field": c.field,
                   "change": f"{_shown(c.old)} → {_shown(c.new)}",
                   "when": "?" if c.time is None else time.strftime("%Y-%m-%d %H:%M",
                                                                    time.localtime(c.time))}
                  for c in history.changes], hide_index=True, key="manage-changes")
    return history.config


def copy_into_form(run: Run) -> None:
    """Fill the Train form (the values its widgets get back: :mod:`.memory`) with the run's
    config, under the closest preset and a free name, then open the Train page."""
    try:
        config = run.config()
        preset = closest_preset(config)
        values = {"train-preset": preset, "run-name": copy_name(runs_dir(), run.name)}
    except (UserError, OSError) as err:  # changed since the page was drawn
        st.error(f"Cannot copy the config of `{run.name}`: {err}")
        return
    for field, value in config.to_dict().items():  # as the form holds them: text, bool, choice
        values[f"field-{preset}-{field}"] = value if isinstance(value, bool) else str(value)
    for key, value in values.items():  # drawn with these values when the Train page opens
        st.session_state[key] = value
    st.session_state["run-name-preset"] = preset  # else the form gives the name a fresh default
    st.session_state["train-notice"] = f"The form holds the config of {run.name} (preset {preset})"
    try:
        st.switch_page("train_page.py")
    except StreamlitPageNotFoundError:  # this page run on its own (tests): no Train page
        st.info(f"Copied the config of `{run.name}` into the Train form.")


def manage() -> None:
    notice = st.session_state.pop(NOTICE, None)
    if notice:
        getattr(st, notice[0])(notice[1])
    run = pick_run("Run to manage", key="manage")
    if run is not None:
        config = config_tables(run)
        pid = writer_pid(runs_dir(), run.name)
        if pid is not None:
            st.caption(f"`{run.name}` is being written by process {pid if pid > 0 else '?'}: "
                       "stop it on the Train page before renaming or deleting it.")
        if st.button("Copy into the Train form", disabled=config is None,
                     help="Open the Train page with this run's config in its fields (under a "
                          "new name), to launch a variant of it"):
            copy_into_form(run)
        # A read-only server refuses in the callbacks too (refusal): disabled only says it first.
        locked = read_only()
        left, right = st.columns([3, 1], vertical_alignment="bottom")
        left.text_input("New name", key=NEW_NAME, placeholder=run.name,
                        help="letters, digits, '.', '_' or '-'; never a name already taken")
        right.button("Rename", on_click=_rename, args=(run.name,),
                     disabled=pid is not None or locked, help=READ_ONLY_HELP if locked else None)
        if st.session_state.get(CONFIRM) == run.name and pid is None:
            st.warning(f"Delete `{run.name}` for good: its checkpoints, metrics and analyses?")
            yes, no = st.columns(2)
            yes.button(f"Really delete {run.name}", type="primary", on_click=_delete,
                       args=(run.name,))
            no.button("Cancel", on_click=_cancel)
        else:
            st.button("Delete…", on_click=_ask_delete, args=(run.name,),
                      disabled=pid is not None or locked,
                      help=READ_ONLY_HELP if locked else
                      "Asks to confirm; a running run cannot be deleted")
    st.button("Reinstall the demo runs", on_click=_reinstall, disabled=read_only(),
              help=READ_ONLY_HELP if read_only() else
              "Copies back the shipped demo runs that are missing; a run of yours with a "
              "demo run's name is never overwritten")


# Folded at first; then open or closed as the user left it (a constant ``expanded``).
with st.expander("Manage a run: its config, copy, rename, delete"):
    manage()

# Drawn only when opened: its list of networks imports torch and torchvision, which the Runs
# page, the first a visitor sees, otherwise does without.
importing = st.expander("Import an encoder trained elsewhere", key="import-open",
                        on_change="rerun")
if importing.open:
    with importing:
        import_form()
