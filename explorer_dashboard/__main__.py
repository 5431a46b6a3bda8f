"""``python -m explorer_dashboard [streamlit options]``: Streamlit serving this package's
``app.py`` with the dashboard's settings, and the heavy imports started while the server starts.

``explorer app`` (and ``make app``) start it this way; the runs folder and read-only mode travel in
the environment (``EXPLORER_RUNS_DIR``, ``EXPLORER_READ_ONLY``, read by :mod:`.common`).

The settings are flags, not a ``.streamlit/config.toml``, because Streamlit reads that file from
the current folder only: from any other folder its defaults would listen on every interface.
Flags given here win over these defaults, and over any config file the user keeps.

The Runs page, the first a visitor sees, needs no torch: run configs naming the package's own
datasets, backbones and losses are checked without the registries (``config.BUILTIN_NAMES``).
Streamlit runs no code of the app before the first browser session opens; importing what that
page does need (pandas, pyarrow, the run readers) here, in a background thread of the same
process while the server starts, has it loaded by the time the page asks for it. Torch is
imported later, once the first page is sent (``app.py``): its import holds Python's global lock
for long stretches (its libraries load under it), which would stall the server's answer.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from pathlib import Path

APP = Path(__file__).resolve().parent / "app.py"

SETTINGS = {
    # This machine only, whatever the folder: exposing it is a deliberate --server.address.
    "server.address": "127.0.0.1",
    "server.runOnSave": "false",
    # No file watching: a virtual environment is too big to watch, and no page reloads its source.
    "server.fileWatcherType": "none",
    # static/ beside app.py holds plotly.js and the Embeddings page's thumbnail sprites.
    "server.enableStaticServing": "true",
    "server.showEmailPrompt": "false",
    "browser.gatherUsageStats": "false",
    "client.toolbarMode": "minimal",
}


def streamlit_argv(argv: list[str]) -> list[str]:
    """``streamlit run app.py`` with :data:`SETTINGS`, except those ``argv`` sets itself."""
    given = {arg.split("=")[0].removeprefix("--") for arg in argv if arg.startswith("--")}
    defaults = [f"--{key}={value}" for key, value in SETTINGS.items() if key not in given]
    return ["streamlit", "run", str(APP), *defaults, *argv]


def _warm_up() -> None:
    """What the Runs page imports; not the pages themselves, whose caches belong to the running
    Streamlit runtime."""
    import pandas  # noqa: F401  (st.dataframe)
    import pyarrow  # noqa: F401

    import explorer.readings.curves  # noqa: F401
    import explorer.readings.overview  # noqa: F401
    import explorer.rundir.admin  # noqa: F401
    import explorer.rundir.artifacts  # noqa: F401
    import explorer.rundir.launch  # noqa: F401


def main(argv: list[str]) -> None:
    from streamlit.web import cli

    with contextlib.suppress(OSError):  # read-only site-packages: the hover images go without
        (APP.parent / "static").mkdir(exist_ok=True)

    threading.Thread(target=_warm_up, name="explorer-warm-up", daemon=True).start()
    sys.argv = streamlit_argv(argv)
    cli.main()


if __name__ == "__main__":
    main(sys.argv[1:])
