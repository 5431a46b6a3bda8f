"""Train: launch runs from a preset and readable, grouped config fields, watch them live
(training, then probing and analysing), stop and resume."""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from explorer.config import (
    ANALYSIS_PROJECTIONS,
    ANALYZE_MODES,
    AUGMENTS,
    Config,
    build_config,
    config_warnings,
    form_problems,
    list_presets,
)
from explorer.config_docs import ESSENTIALS, FIELD_DOCS, GROUPS, fields_of, label
from explorer.data import list_datasets
from explorer.errors import UserError
from explorer.estimate import (
    StepTiming,
    analysed_checkpoints,
    finishing_time,
    measure_steps,
    timing_key,
)
from explorer.losses import LOSSES
from explorer.models import list_backbones
from explorer.readings.curves import run_colors, training_curves
from explorer.readings.figures import spectrum_figure
from explorer.readings.overview import RunSummary, summaries
from explorer.rundir.launch import (
    launch_log,
    launch_state,
    launch_training,
    open_named_run,
    pending_launches,
)
from explorer.rundir.run import Run, list_runs, run_path
from explorer_dashboard.common import (
    READ_ONLY_HELP,
    analyses,
    read_only,
    refusal,
    run_names,
    runs_dir,
)
from explorer_dashboard.memory import kept, restore
from explorer_dashboard.run_controls import RERUN_APP, controls, dismiss
from explorer_dashboard.watch import finished_summary, watch_picker

CHOICES: dict[str, list[str]] = {
    # npz holds an imported run's given features (explorer import): nothing to train on
    "dataset": [name for name in list_datasets() if name != "npz"],
    "backbone": list_backbones(),
    "loss": list(LOSSES),
    "augment": list(AUGMENTS),
    "device": ["auto", "cpu", "cuda", "mps"],
    "probe": ["auto", "fast", "paper"],
    "analyze": list(ANALYZE_MODES),
    "analysis_projection": list(ANALYSIS_PROJECTIONS),
}

st.title("Train")
notice = st.session_state.pop("train-notice", None)  # said once, after the rerun that cleared
if notice:
    st.toast(notice)
st.session_state.pop(RERUN_APP, None)  # this run redraws the whole page


def field_widget(name: str, default: Any, preset: str) -> Any:
    """One field's widget, filled from the preset (or what the user typed before, on any page
    visit: :mod:`.memory`), with its one-line help; returns the value as typed (text is parsed
    and checked by :func:`form_problems`, with the CLI's messages)."""
    key, text, help_text = f"field-{preset}-{name}", label(name), FIELD_DOCS[name].help
    if isinstance(default, bool):
        return kept(key, default, st.checkbox, text, help=help_text)
    if name in CHOICES:
        options = CHOICES[name] if default in CHOICES[name] else [default, *CHOICES[name]]
        restore(key, default)
        if st.session_state[key] not in options:  # a choice that went away
            st.session_state[key] = default
        return kept(key, default, st.selectbox, text, options, help=help_text)
    return kept(key, str(default), st.text_input, text, help=help_text)


def remembered_value(name: str, default: Any, preset: str) -> Any:
    """A field's value while its group is folded (its widget not drawn): what the user typed on
    an earlier visit (:mod:`.memory`), else the preset's, as :func:`field_widget` gives it."""
    key = f"field-{preset}-{name}"
    default = default if isinstance(default, bool) or name in CHOICES else str(default)
    return st.session_state.get(key, default)


def group_key(group: str) -> str:
    """Session-state key of a group's expander: whether it is open."""
    return "train-group-" + group.replace(" ", "-")


def group_title(group: str, count: int, bad: int) -> str:
    fix = f" — {bad} to fix" if bad else ""
    return f"More {group} settings ({count}){fix}"


def config_form(preset: str, bad_fields: set[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The essentials first, then one folded expander per group (opened when it holds a bad
    field). A folded group's fields are not drawn (some thirty widgets: most of the page's
    drawing time); their values come from memory. Returns the values as typed and, per drawn
    field, a slot under its widget for its error."""
    try:
        base = build_config(preset)
    except UserError as err:
        st.error(str(err))
        base = Config()
    values: dict[str, Any] = {}
    slots: dict[str, Any] = {}

    def draw(names: list[str], columns: int) -> None:
        cells = st.columns(columns)
        for i, name in enumerate(names):
            with cells[i % columns]:
                values[name] = field_widget(name, getattr(base, name), preset)
                slots[name] = st.empty()

    draw(list(ESSENTIALS), 4)
    for group in GROUPS:
        names = [n for n in fields_of(group) if n not in ESSENTIALS]
        bad = len(bad_fields.intersection(names))
        if bad:
            st.session_state[group_key(group)] = True
        box = st.expander(group_title(group, len(names), bad), key=group_key(group),
                          on_change="rerun")
        if box.open:
            with box:
                draw(names, 3)
        else:
            values.update({name: remembered_value(name, getattr(base, name), preset)
                           for name in names})
    return values, slots


def changed_fields(preset: str, values: dict[str, Any]) -> str:
    """The fields that differ from the preset, as the CLI's ``--set`` reads them
    (``epochs=200 knn_every=0``), or "" when none do: folded groups hide what was typed there."""
    try:
        base = build_config(preset)
    except UserError:
        return ""
    changed = [f"{name}={str(value).strip()}" for name, value in values.items()
               if str(value).strip() != str(getattr(base, name))]
    return " ".join(changed)


def typed_values(preset: str) -> dict[str, Any]:
    """The form's values as this rerun will read them (the widgets' state, before they are
    drawn), so bad fields are known in time to open their group."""
    try:
        base = build_config(preset)
    except UserError:
        base = Config()
    return {name: remembered_value(name, getattr(base, name), preset) for name in FIELD_DOCS}


def highlight(preset: str, problems: list[tuple[str, str]], slots: dict[str, Any]) -> None:
    """A red frame around each bad field and its message under it."""
    keys = [f"field-{preset}-{field}" for field, _ in problems if field in slots]
    boxes = ", ".join(f".st-key-{key} [data-testid='stTextInputRootElement'], .st-key-{key} "
                      "[data-testid='stSelectbox'] > div:last-child" for key in keys)
    # Always one element here, so that the elements below keep their places between reruns.
    st.html(f"<style>{boxes or '.no-bad-field'} {{outline: 2px solid #d33; "
            "border-radius: 0.5rem}</style>")
    for field, message in problems:
        if field in slots:
            slots[field].markdown(f":red[{message}]")


def name_held_by(name: str) -> int | None:
    """The pid of the trainer writing the run ``name`` already, else ``None``."""
    try:
        path = run_path(runs_dir(), name)
    except UserError:  # not a valid name: the launch itself says why
        return None
    return Run(path).locked_by() if path.is_dir() else None


@st.cache_data(show_spinner="Timing a few training steps…", show_time=True, max_entries=32)
def step_timing(key: tuple[tuple[str, Any], ...]) -> StepTiming:
    """Measured once per config shape and device, for every session (explorer.estimate)."""
    return measure_steps(Config(**dict(key)))


def estimate(config: Config) -> None:
    """The training time on the chosen device: measured on demand, then kept for this shape."""
    key = timing_key(config)
    timings: dict[Any, StepTiming] = st.session_state.setdefault("step-timings", {})
    if key not in timings and st.session_state.pop("measure-now", False):
        try:
            timings[key] = step_timing(key)
        except UserError as err:
            st.warning(f"Cannot time this config: {err}")
    if key in timings:
        training = timings[key].describe(config.epochs)
        after = finishing_time(list_runs(runs_dir()), config)
        st.info(f"Training: {training}; then {after.describe()}." if after else
                f"Training: {training}; then the probe and the analysis of "
                f"{analysed_checkpoints(config)} checkpoints, not estimated: no run of this "
                "data set, network and analysis size has been analysed here yet.")
    else:
        st.caption("Training time: press **Estimate time** to time a few real steps of this "
                   "model and batch on the chosen device (a few seconds).")


def fresh_name(preset: str) -> str:
    """A run name nobody typed: the preset and the time."""
    return f"{preset}-{time.strftime('%Y%m%d-%H%M%S')}"


def launch(name: str, preset: str, values: dict[str, Any]) -> None:
    """Start the run (an empty name gets a fresh one), or say why not."""
    if message := refusal("launch training"):
        st.error(message)
        return
    try:
        launched = launch_training(runs_dir(), name or fresh_name(preset), preset, values)
    except UserError as err:
        st.error(str(err))
        return
    st.session_state["selected_run"] = launched.name
    st.session_state["launched"] = (launched.name, launched.pid)
    del st.session_state["run-name-preset"]  # the rerun gives the name box a fresh default
    st.rerun()


presets = list_presets()
first_preset = "shapes-demo" if "shapes-demo" in presets else presets[0]
restore("train-preset", first_preset)
if st.session_state["train-preset"] not in presets:  # a preset file that went away
    st.session_state["train-preset"] = first_preset
with st.expander("New run", expanded=True):
    left, right = st.columns([1, 1])
    with left:
        preset = kept("train-preset", first_preset, st.selectbox, "Preset", presets,
                      help="A named starting config (explorer/presets); every field below "
                           "starts from it.")
    if st.session_state.get("run-name-preset") != preset:  # a fresh default per preset
        st.session_state["run-name-preset"] = preset
        st.session_state["run-name"] = fresh_name(preset)
    with right:
        name = kept("run-name", "", st.text_input, "Run name",
                    help="letters, digits, '.', '_' or '-'; a new directory in the runs "
                         "directory; left empty, the preset and the time")
    _, early = form_problems(preset, typed_values(preset))
    values, slots = config_form(preset, {field for field, _ in early})
    config, problems = form_problems(preset, values)
    highlight(preset, problems, slots)
    with st.container(key="form-changes"):  # what the server has read: a test awaits it
        changes = changed_fields(preset, values)
        st.caption(f"Changed from `{preset}`: `{changes}`" if changes
                   else f"As the preset `{preset}` sets it.")
    held = name_held_by(name.strip())
    with st.container():  # one element whatever it holds: the Launch button keeps its place
        for field, message in config_warnings(config) if config else []:
            if field in slots:  # drawn: its group is open
                slots[field].markdown(f":orange[{message}]")
            st.warning(message)
        if config is not None:
            estimate(config)
        if held is not None:
            st.info(f"A trainer (process {held if held > 0 else '?'}) is writing run "
                    f"`{name.strip()}`; choose another name.")
    buttons = st.columns([1, 1, 4])
    # A read-only server refuses in launch() (refusal), saying why on the click.
    if buttons[0].button("Launch", type="primary", disabled=held is not None,
                         help=READ_ONLY_HELP if read_only() else None):
        st.session_state.pop("launched", None)
        if problems:  # every bad field at once, each message naming its field
            for _, message in problems:
                st.error(message)
        else:
            launch(name.strip(), preset, values)
    if buttons[1].button("Estimate time", disabled=config is None,
                         help="Time a few real training steps of this config on its device"):
        st.session_state["measure-now"] = True
        st.rerun()
    launched = st.session_state.get("launched")
    if launched:
        st.success(f"Launched `{launched[0]}` (process {launched[1]}); it keeps training if you "
                   "close this page.")



def eta_words(seconds: float) -> str:
    """A time left as a person reads it: 'about 40 s' under 90 s, else 'about 3 min'."""
    return f"about {seconds:.0f} s" if seconds < 90 else f"about {seconds / 60:.0f} min"


def show_run(name: str, summary: RunSummary | None = None) -> None:
    """Progress, curves, latest spectrum, log and Stop/Resume of one run; with its ``summary``,
    once it is finished, what it reached and links to its pages."""
    pending = launch_state(runs_dir(), name)
    if pending == "starting":
        st.info(f"`{name}` is starting (loading its data)…")
        st.code(launch_log(runs_dir(), name) or "(no output yet)")
        return
    if pending == "failed to start":
        st.error(f"`{name}` failed to start:")
        st.code(launch_log(runs_dir(), name) or "(no output)")
        st.button("Dismiss", key=f"dismiss-{name}", on_click=dismiss, args=(name,))
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
    eta_text = (f", {eta_words(eta)} of training left (then the probes and the analysis)"
                if state == "running" and eta else "")
    activity = run.activity(status)  # what its process does now: training, probing, analysing
    if activity and state != "running":  # trained; the process still probes or analyses
        progress = run.phase_fraction(status) or 0.0
        eta_text += f" · now {activity} (process {status.get('pid')})"
    st.progress(min(progress, 1.0), text=f"**{name}**: {state}, epoch {epoch}/{total}{eta_text}")
    controls(run, status, activity, st.columns(6)[0])
    if summary is not None and state == "finished" and not activity:
        finished_summary(summary)
    if state in ("failed", "corrupt", "died") and status.get("last_error"):
        st.error(f"{state}: {status['last_error']}")
    checkpoints = run.weight_checkpoints() if run.path.is_dir() else []
    if checkpoints:
        st.caption(f"checkpoints: epochs {', '.join(str(e) for e, _ in checkpoints)}")
    metrics, note = run.read_metrics()
    if note:
        st.caption(note)
    if metrics:
        colors = run_colors(run_names())  # as on the Runs page
        st.vega_lite_chart(training_curves({name: metrics}, colors), key=f"curves-{name}")
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
    training = [s.name for s in runs if s.state == "running"
                or launch_state(runs_dir(), s.name) == "resuming"]
    finishing = [s.name for s in runs if s.activity and s.state != "running"]
    starting = pending_launches(runs_dir())
    above = st.container()  # the live runs, drawn once the picker has said which is watched
    st.subheader("Watched run")
    watched = watch_picker([s.name for s in runs] + [n for n in starting
                                                      if n not in {s.name for s in runs}])
    with above:
        if training or starting:
            st.subheader("Training now")
        elif finishing:  # trained, but the process still probes and analyses: not idle yet
            st.subheader("Finishing: probing and analysing")
        else:
            st.subheader("Nothing is training")
        for name in starting + training + finishing:
            if name != watched:
                show_run(name)
    if watched:
        show_run(watched, next((s for s in runs if s.name == watched), None))
    if st.session_state.pop(RERUN_APP, False):  # what a click left stale outside the fragment
        st.rerun(scope="app")  # (its notice is said there)
    if notice := st.session_state.pop("train-notice", None):  # from a Stop or Resume click
        st.toast(notice)


live()
