"""Stop and Resume on the Train page, answered at once.

A click acts in the button's callback, which Streamlit runs before the rerun it triggers draws
anything; the rerun then reads the new state back from the run's files (a ``STOP`` request, a
launch record: :func:`explorer.rundir.launch.launch_state`), so the button is already disabled and
says "Stopping…" or "Resuming…" when it is drawn again, and stays so until the trainer has
checkpointed and exited, or taken the run over. A second click cannot start a second trainer,
and a trainer that exits without taking the run over has its log shown on the page.
"""

from __future__ import annotations

import contextlib
from typing import Any

import streamlit as st

from explorer.errors import UserError
from explorer.rundir.launch import (
    forget_launch,
    launch_log,
    launch_state,
    resume_training,
    stop_training,
)
from explorer.rundir.run import Run
from explorer_dashboard.common import READ_ONLY_HELP, read_only, refusal, runs_dir

_ERROR = "control-error-"  # + run name: what a click's callback could not do, shown once
RERUN_APP = "rerun-app"  # set by a callback when the page outside the fragment is stale


def _after(name: str, message: str) -> None:
    """Said once (a toast). The Launched banner and a name box holding this run's name are
    stale now; they are drawn outside the live fragment, so the page reruns whole after it."""
    st.session_state["train-notice"] = message
    if (st.session_state.get("launched") or ("",))[0] == name:
        del st.session_state["launched"]
        st.session_state[RERUN_APP] = True
    if st.session_state.get("run-name") == name:
        st.session_state.pop("run-name-preset", None)  # the rerun gives a fresh default name
        st.session_state[RERUN_APP] = True


def _stop(run: Run) -> None:
    if message := refusal("stop training"):
        st.session_state[_ERROR + run.name] = message
        return
    try:
        stop_training(run)
    except UserError as err:
        st.session_state[_ERROR + run.name] = str(err)
        return
    _after(run.name, f"Stop requested: {run.name} checkpoints and exits at its next step")


def _resume(run: Run, more_epochs: bool = False) -> None:
    if message := refusal("resume training"):
        st.session_state[_ERROR + run.name] = message
        return
    if launch_state(runs_dir(), run.name) == "resuming":  # a second click, before the redraw
        return
    changes = ({"epochs": int(st.session_state[f"epochs-{run.name}"])} if more_epochs else {})
    try:
        launched = resume_training(run, changes)
    except UserError as err:
        st.session_state[_ERROR + run.name] = str(err)
        return
    _after(run.name, f"Resuming {run.name} (process {launched.pid})")


def dismiss(name: str) -> None:
    """Forget a launch that failed (a callback: gone before the rerun it triggers draws)."""
    if message := refusal("forget launches"):
        st.session_state[_ERROR + name] = message
        return
    with contextlib.suppress(UserError):  # dismissed from another tab, or it went on after all
        forget_launch(runs_dir(), name)


def controls(run: Run, status: dict[str, Any], activity: str | None, slot: Any) -> None:
    """Stop or Resume in ``slot`` (a column), with what the click set off, and any failure."""
    name, state = run.name, status.get("state", "?")
    pending = launch_state(runs_dir(), name)
    writer = run.locked_by()  # a trainer holds the run: no second one may start on it
    locked = read_only()  # the callbacks refuse too (see refusal); disabled says so at once
    why = READ_ONLY_HELP if locked else None
    if state == "running":
        stopping = run.stop_requested()
        slot.button(
            "Stopping…" if stopping else "Stop",
            key=f"stop-{name}",
            disabled=stopping or locked,
            help=why,
            on_click=_stop,
            args=(run,),
        )
        if stopping:
            st.info(f"Stopping `{name}`: it checkpoints and exits at its next step…")
    elif state in ("stopped", "died", "failed"):
        resuming = pending == "resuming"
        slot.button(
            "Resuming…" if resuming else "Resume",
            key=f"resume-{name}",
            disabled=resuming or writer is not None or locked,
            help=why,
            on_click=_resume,
            args=(run,),
        )
        if resuming:
            st.info(f"Resuming `{name}`: its trainer loads the data and the last checkpoint…")
        elif writer is not None and not activity:
            st.info(
                f"`{name}` is held by trainer process {writer if writer > 0 else '?'} "
                "(starting or finishing); Resume is disabled until it exits."
            )
    elif state == "finished" and run.has_resume_state():
        # the CLI's policy (explorer.rundir.checkpoint.resume_plan): a finished run trains on with
        # more epochs; fewer or as many are refused with its message
        resuming = pending == "resuming"
        trained = int(status.get("epoch") or 0)
        slot.number_input("Train on to epoch", min_value=1, value=trained + max(1, trained // 2),
                          step=1, key=f"epochs-{name}", disabled=resuming or writer is not None)
        slot.button(
            "Resuming…" if resuming else "Continue training",
            key=f"continue-{name}",
            disabled=resuming or writer is not None or locked,
            help=why,
            on_click=_resume,
            args=(run, True),
        )
        if resuming:
            st.info(f"Resuming `{name}`: its trainer loads the data and the last checkpoint…")
    if pending == "failed to resume":
        st.error(f"Resuming `{name}` failed: its trainer exited before taking the run over.")
        st.code(launch_log(runs_dir(), name, 15) or "(no output)")
        st.button("Dismiss", key=f"dismiss-{name}", on_click=dismiss, args=(name,))
    if error := st.session_state.pop(_ERROR + name, None):
        st.error(error)
