"""``python -m dashboard [streamlit options]``: ``streamlit run app.py`` (``make app`` uses it),
with the heavy imports started while the server starts.

Reading any run's config validates its dataset, backbone and loss names against registries that
import torch (about 1.5 s on 2 CPU cores), so even the first page, Runs, needs torch. Streamlit
runs no code of the app before the first browser session opens; importing torch here, in a
background thread of the same process, has it loaded (or well on its way) by the time the first
page asks for it. ``streamlit run app.py`` works as well, without the head start.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app.py"


def _warm_up() -> None:
    """What the first page imports; not dashboard/ itself, whose caches belong to the running
    Streamlit runtime."""
    import pandas  # noqa: F401  (st.dataframe)
    import plotly.subplots  # noqa: F401
    import pyarrow  # noqa: F401

    import explorer.builders  # noqa: F401  (torch, the data sets, models and losses)
    import explorer.readings.figures  # noqa: F401
    import explorer.readings.overview  # noqa: F401
    import explorer.rundir.artifacts  # noqa: F401
    import explorer.rundir.launch  # noqa: F401


def main(argv: list[str]) -> None:
    from streamlit.web import cli

    threading.Thread(target=_warm_up, name="explorer-warm-up", daemon=True).start()
    sys.argv = ["streamlit", "run", str(APP), *argv]
    cli.main()


if __name__ == "__main__":
    main(sys.argv[1:])
