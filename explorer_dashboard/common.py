"""What every page shares: the runs directory, the run picker, cached loaders, error display."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st

from explorer.config import Config
from explorer.errors import UserError
from explorer.rundir.artifacts import analysed_epochs, load_all_analyses
from explorer.rundir.launch import open_named_run
from explorer.rundir.run import Run, list_runs

if TYPE_CHECKING:  # explorer.data imports torch: the pages that list runs do not need it
    from explorer.data import ImageDataset

RUNS_DIR_ENV = "EXPLORER_RUNS_DIR"
READ_ONLY_ENV = "EXPLORER_READ_ONLY"
READ_ONLY_HELP = "This dashboard is read-only (started with --read-only)"


def runs_dir() -> Path:
    """The directory the dashboard shows: ``$EXPLORER_RUNS_DIR``, else ``runs`` here."""
    return Path(os.environ.get(RUNS_DIR_ENV, "runs")).expanduser()


def read_only() -> bool:
    """Whether this server refuses every action (``explorer app --read-only``)."""
    return os.environ.get(READ_ONLY_ENV, "") not in ("", "0")


def refusal(action: str) -> str | None:
    """What a read-only server answers when asked to ``action`` (e.g. "delete runs"), else None.

    Every action's handler asks this before it acts: the buttons are disabled too, but a
    request can reach the server without them, so the refusal is here, on the server side.
    """
    if not read_only():
        return None
    return (f"{READ_ONLY_HELP}: it does not {action}. Start `explorer app` without --read-only "
            "to do that.")


def run_names() -> list[str]:
    return [run.name for run in list_runs(runs_dir())]


def pick_run(label: str = "Run", *, key: str = "run", analysed_only: bool = False) -> Run | None:
    """A select box of runs, shared by the pages (the choice follows the user between pages).

    Returns None, after saying why on the page, when there is nothing to pick.
    """
    names = run_names()
    if analysed_only:
        names = [n for n in names if analysed_epochs(Run(runs_dir() / n))]
    if not names:
        what = "analysed runs" if analysed_only else "runs"
        st.info(f"No {what} in `{runs_dir()}` yet. Launch one on the **Train** page "
                "(or run `explorer analyze RUN_DIR` on a finished run).")
        return None
    chosen = st.session_state.get("selected_run")
    index = names.index(chosen) if chosen in names else len(names) - 1
    name = st.selectbox(label, names, index=index, key=f"{key}-picker")
    st.session_state["selected_run"] = name
    try:
        return open_named_run(runs_dir(), name)
    except UserError as err:  # deleted between the listing and now
        st.warning(f"Run `{name}` is gone: {err}")
        return None


def run_config(run: Run) -> Config | None:
    """The run's config, or None after showing why it cannot be read."""
    try:
        return run.config()
    except (UserError, OSError) as err:
        st.error(f"Run `{run.name}` is corrupt: {err}")
        return None


def chosen_run(*, analysed_only: bool = False) -> tuple[Run, Config]:
    """The run picker and the picked run's config; stops the page (after saying why) when there
    is no readable run to show."""
    run = pick_run(analysed_only=analysed_only)
    config = run_config(run) if run is not None else None
    if run is None or config is None:
        st.stop()
    imported_note(run, config)
    return run, config


def imported_note(run: Run, config: Config) -> None:
    """For a run of ``explorer import``: where it came from and what its pages cannot show."""
    try:
        imported = run.imported()
    except (UserError, OSError):
        return
    if not imported:
        return
    source = Path(str(imported.get("source", "?"))).name
    reading = ("z/‖z‖" if config.loss != "spectral" else f"clip(z) at μ = {config.mu:g}")
    if imported.get("kind") == "features":
        st.info(f"Imported features (`{source}`, explorer import): no network and no views, so "
                "no training curves, no cross-view spectrum and no graph estimate from views; "
                f"the features are read as {reading} (loss={config.loss}, chosen at import).",
                icon=":material/input:")
    else:
        st.info(f"Imported encoder `{imported.get('backbone', config.backbone)}` from `{source}` "
                f"(explorer import), trained elsewhere: no training curves; its projector: "
                f"{imported.get('projector', '?')}; its output read as {reading} "
                f"(loss={config.loss}, chosen at import).", icon=":material/input:")


def analysed_checkpoints(run: Run) -> dict[int, dict[str, Any]]:
    """The run's analysis artifacts by epoch; damaged ones are reported, none stops the page."""
    by_epoch, errors = analyses(run)
    show_analysis_errors(errors)
    if not by_epoch:
        st.info(f"`{run.name}` has no analysed checkpoint yet: run `explorer analyze {run.path}`.")
        st.stop()
    return by_epoch


def _analysis_signature(run: Run) -> tuple[tuple[str, int, float], ...]:
    folder = run.path / "analysis"
    if not folder.is_dir():
        return ()
    return tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime)
                        for p in folder.glob("epoch-*")))


@st.cache_data(max_entries=8, show_spinner=False)
def _cached_analyses(
    path: str, signature: Any
) -> tuple[dict[int, dict[str, Any]], dict[int, str]]:
    del signature  # part of the cache key only: a changed file in analysis/ reloads
    return load_all_analyses(Run(Path(path)))


def analyses(run: Run) -> tuple[dict[int, dict[str, Any]], dict[int, str]]:
    """Every analysed checkpoint of ``run`` (cached until a file in ``analysis/`` changes)."""
    try:
        signature = _analysis_signature(run)
    except OSError:  # the run was deleted while we looked
        return {}, {}
    return _cached_analyses(str(run.path), signature)


def show_analysis_errors(errors: dict[int, str]) -> None:
    for epoch, message in sorted(errors.items()):
        st.warning(f"Analysis of epoch {epoch} is unreadable: {message}")


@st.cache_resource(max_entries=4, show_spinner="Loading the dataset…", show_time=True)
def _cached_splits(config_json: str) -> tuple[ImageDataset, ImageDataset]:
    import json

    from explorer.builders import load_splits
    from explorer.config import config_from_dict

    return load_splits(config_from_dict(json.loads(config_json), "the dashboard"))


def dataset_splits(config: Config) -> tuple[ImageDataset, ImageDataset] | None:
    """The run's (train, test) images, loaded once per config; None after showing an error."""
    import json

    try:
        return _cached_splits(json.dumps(config.to_dict(), sort_keys=True))
    except UserError as err:
        st.error(f"Cannot load the images of this run: {err}")
        return None
