"""Train: launch runs from a preset and any config field, watch them live, stop and resume."""

from __future__ import annotations

import time
from dataclasses import fields

import streamlit as st

from dashboard.common import analyses, runs_dir
from explorer.config import (
    ANALYSIS_PROJECTIONS,
    ANALYZE_MODES,
    AUGMENTS,
    Config,
    build_config,
    list_presets,
)
from explorer.data import list_datasets
from explorer.errors import UserError
from explorer.figures import spectrum_figure, training_curves
from explorer.launcher import (
    forget_launch,
    launch_log,
    launch_state,
    launch_training,
    open_named_run,
    pending_launches,
    resume_training,
    stop_training,
)
from explorer.losses import LOSSES
from explorer.models import list_backbones
from explorer.overview import summaries
from explorer.runs import Run, run_path

CHOICES: dict[str, list[str]] = {
    "dataset": list_datasets(),
    "backbone": list_backbones(),
    "loss": list(LOSSES),
    "augment": list(AUGMENTS),
    "device": ["auto", "cpu", "cuda", "mps"],
    "probe": ["auto", "fast", "paper"],
    "analyze": list(ANALYZE_MODES),
    "analysis_projection": list(ANALYSIS_PROJECTIONS),
}

st.title("Train")


def config_form(preset: str) -> dict[str, object]:
    """One widget per config field, filled from the preset; returns the values as typed."""
    try:
        base = build_config(preset)
    except UserError as err:
        st.error(str(err))
        base = Config()
    values: dict[str, object] = {}
    columns = st.columns(3)
    for i, field in enumerate(fields(Config)):
        default = getattr(base, field.name)
        key = f"field-{preset}-{field.name}"
        with columns[i % 3]:
            if isinstance(default, bool):
                values[field.name] = st.checkbox(field.name, value=default, key=key)
            elif field.name in CHOICES:
                options = CHOICES[field.name]
                options = options if default in options else [default, *options]
                values[field.name] = st.selectbox(field.name, options,
                                                  index=options.index(default), key=key)
            else:  # typed text: parsed and checked by build_config, with the CLI's messages
                values[field.name] = st.text_input(field.name, value=str(default), key=key)
    return values


def name_held_by(name: str) -> int | None:
    """The pid of the trainer writing the run ``name`` already, else ``None``."""
    try:
        path = run_path(runs_dir(), name)
    except UserError:  # not a valid name: the launch itself says why
        return None
    return Run(path).locked_by() if path.is_dir() else None


presets = list_presets()
with st.expander("New run", expanded=True):
    left, right = st.columns([1, 1])
    preset = left.selectbox("Preset", presets, index=presets.index("shapes-demo")
                            if "shapes-demo" in presets else 0)
    if st.session_state.get("run-name-preset") != preset:  # a fresh default per preset
        st.session_state["run-name-preset"] = preset
        st.session_state["run-name"] = f"{preset}-{time.strftime('%Y%m%d-%H%M%S')}"
    name = right.text_input("Run name", key="run-name",
                            help="letters, digits, '.', '_' or '-'; a new directory in the runs "
                                 "directory")
    with st.expander("Every config field (defaults from the preset)"):
        values = config_form(preset)
    held = name_held_by(name.strip())
    if held is not None:
        st.info(f"A trainer (process {held if held > 0 else '?'}) is writing run `{name.strip()}`; "
                "choose another name.")
    if st.button("Launch", type="primary", disabled=held is not None):
        try:
            launched = launch_training(runs_dir(), name.strip(), preset, values)
        except UserError as err:
            st.error(str(err))
        else:
            st.session_state["selected_run"] = launched.name
            del st.session_state["run-name-preset"]  # the next launch gets a new default name
            st.success(f"Launched `{launched.name}` (process {launched.pid}); it keeps training "
                       "if you close this page.")


def show_run(name: str) -> None:
    """Progress, curves, latest spectrum, log and Stop/Resume of one run."""
    pending = launch_state(runs_dir(), name)
    if pending == "starting":
        st.info(f"`{name}` is starting (loading its data)…")
        st.code(launch_log(runs_dir(), name) or "(no output yet)")
        return
    if pending == "failed to start":
        st.error(f"`{name}` failed to start:")
        st.code(launch_log(runs_dir(), name) or "(no output)")
        if st.button("Dismiss", key=f"dismiss-{name}"):
            forget_launch(runs_dir(), name)
            st.rerun(scope="fragment")
        return
    try:
        run = open_named_run(runs_dir(), name)
    except UserError as err:
        st.warning(f"`{name}` is gone: {err}")
        return
    status = run.status()
    state = status.get("state", "?")
    epoch, total = status.get("epoch", 0), status.get("total_epochs", "?")
    progress = float(status.get("progress") or 0.0)
    eta = status.get("eta_s")
    eta_text = f", about {eta / 60:.1f} min left" if state == "running" and eta else ""
    st.progress(min(progress, 1.0), text=f"**{name}**: {state}, epoch {epoch}/{total}{eta_text}")
    buttons = st.columns(6)
    writer = run.locked_by()  # a trainer holds the run: no second one may start on it
    if writer is not None and state != "running":
        st.info(f"`{name}` is held by trainer process {writer if writer > 0 else '?'} "
                "(starting or finishing); Resume is disabled until it exits.")
    if state == "running" and buttons[0].button("Stop", key=f"stop-{name}"):
        try:
            stop_training(run)
            st.toast(f"Stop requested: {name} checkpoints and exits at its next step")
        except UserError as err:
            st.error(str(err))
    if state in ("stopped", "died", "failed") and buttons[0].button(
        "Resume", key=f"resume-{name}", disabled=writer is not None
    ):
        try:
            resume_training(run)
            st.toast(f"Resuming {name}")
        except UserError as err:
            st.error(str(err))
    if state in ("failed", "corrupt", "died") and status.get("last_error"):
        st.error(f"{state}: {status['last_error']}")
    checkpoints = run.weight_checkpoints() if run.path.is_dir() else []
    if checkpoints:
        st.caption(f"checkpoints: epochs {', '.join(str(e) for e, _ in checkpoints)}")
    metrics, note = run.read_metrics()
    if note:
        st.caption(note)
    if metrics:
        st.plotly_chart(training_curves({name: metrics}), key=f"curves-{name}")
    by_epoch, _ = analyses(run)
    if by_epoch and state == "running":  # a finished run's spectra: the Spectrum page
        st.plotly_chart(spectrum_figure(by_epoch[max(by_epoch)]), key=f"spectrum-{name}")
    log_path = run.path / "train.log"
    log = log_path.read_text(errors="replace").splitlines()[-15:] if log_path.exists() else []
    printed = launch_log(runs_dir(), name, 15)
    with st.expander("Log", expanded=state in ("failed", "running")):
        st.code("\n".join(log) or printed or "(empty)")
        if printed and state in ("failed", "died"):
            st.code(printed)


@st.fragment(run_every=2)
def live() -> None:
    runs = summaries(runs_dir())
    active = [s.name for s in runs if s.state == "running"]
    starting = pending_launches(runs_dir())
    st.subheader("Training now" if active or starting else "Nothing is training")
    for name in starting:
        show_run(name)
    watched = st.session_state.get("selected_run") or (runs[-1].name if runs else None)
    for name in active:
        if name != watched:
            show_run(name)
    if watched and watched not in starting:
        st.subheader(f"Selected: {watched}")
        show_run(watched)


live()
