"""Typed Train-form values after a visit to another page, under CPU load: now and at a baseline
commit, one after the other on the same machine (issue 28, item 8).

A user opens the form's folded groups, types eight fields, each with Enter and without waiting
for the server to read it, waits ``--pause`` seconds (default 3; 0: at once), opens Runs and
comes back. Each value typed must come back. Busy processes (``--hogs``, default 3 on 2 cores)
load the machine as a test suite does.

The baseline, ``7aa97d8``, kept a copy of each value, taken in the widget's ``on_change``
callback. Streamlit's fast reruns start a new script thread for each change while the previous
run is still stopping, and a change could reach session state with its callback never called.
The widgets are now persisted by Streamlit itself (``persist_state="session"``,
:mod:`explorer_dashboard.memory`). The loss depends on thread scheduling, so it shows as a rate
over attempts: that is why this is a script and not a test.

Left to Streamlit, and counted with ``--pause 0``: a page change carries no widget values, and
when it overtakes a rerun whose script thread has not begun (milliseconds; hundreds under this
load) Streamlit drops that rerun with the values typed since the last one that began. Tried and
not kept: handing the overtaken rerun's values to the page change (they are applied, but not
persisted, by a run of the other page), with and without one script thread per session
(``runner.fastReruns=false``; with it, values were lost even unloaded).

    .venv/bin/python benchmarks/stress_form_memory.py                   # baseline 7aa97d8
    .venv/bin/python benchmarks/stress_form_memory.py --pause 0 --attempts 10 --hogs 4

Needs Playwright and Chromium (``make browser``), as the browser tests do.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_pages import beside_baseline, serve  # noqa: E402

from explorer.config_docs import ESSENTIALS, fields_of, label  # noqa: E402
from explorer_dashboard.serve import (  # noqa: E402
    READY,
    navigate,
    open_page,
    stop_server,
)

#: The commit before the form's values were persisted by Streamlit (issue 28, item 8).
BASELINE = "7aa97d8"
GROUPS = ("data", "model", "run", "evaluation and analysis")
TYPED = {"train_limit": "512", "test_limit": "128", "epochs": "200", "checkpoint_every": "1",
         "knn_every": "0", "batch_size": "64", "projector_hidden_dim": "64",
         "projector_out_dim": "32"}


def open_groups(page) -> None:  # type: ignore[no-untyped-def]
    for group in GROUPS:
        first = next(n for n in fields_of(group) if n not in ESSENTIALS)
        page.get_by_text(f"More {group} settings").click()
        page.locator(f".st-key-field-shapes-demo-{first} input").wait_for(timeout=120_000)
        page.wait_for_function(READY, timeout=120_000)


def attempt(  # type: ignore[no-untyped-def]
    browser, url: str, pause: float
) -> dict[str, tuple[str, str]]:
    """One user's visit, ``pause`` seconds between the last Enter and the page change; the
    fields that came back wrong: ``{field: (typed, shown)}``."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    open_page(page, url, "train", timeout_ms=180_000)
    open_groups(page)
    for field, value in TYPED.items():
        box = page.get_by_role("textbox", name=label(field), exact=True)
        box.fill(value)
        box.press("Enter")
        page.wait_for_function(READY, timeout=120_000)
    time.sleep(pause)
    navigate(page, "", timeout_ms=180_000)
    navigate(page, "train", timeout_ms=180_000)
    open_groups(page)
    shown = {f: page.locator(f".st-key-field-shapes-demo-{f} input").input_value()
             for f in TYPED}
    page.close()
    return {f: (v, shown[f]) for f, v in TYPED.items() if shown[f] != v}


def measure(  # type: ignore[no-untyped-def]
    tree: Path, work: Path, attempts: int, pause: float, browser
) -> int:
    """How many of ``attempts`` lost a typed value, with the dashboard of ``tree``."""
    runs = work / "runs"
    runs.mkdir(parents=True)
    process, url = serve(tree, runs)
    lost = 0
    try:
        for i in range(attempts):
            wrong = attempt(browser, url, pause)
            lost += bool(wrong)
            print(f"  {tree.name or tree}: attempt {i + 1}/{attempts}: "
                  f"{'lost ' + str(wrong) if wrong else 'every value back'}", flush=True)
    finally:
        stop_server(process)
    return lost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default=BASELINE, help=f"commit (default {BASELINE})")
    parser.add_argument("--attempts", type=int, default=5, help="visits per side (default 5)")
    parser.add_argument("--pause", type=float, default=3.0,
                        help="seconds from the last Enter to the page change (default 3; "
                             "0: at once)")
    parser.add_argument("--hogs", type=int, default=3,
                        help="busy processes loading the machine (default 3)")
    args = parser.parse_args()
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(args.hogs)]
    try:
        with beside_baseline(args.baseline, "stress-form-") as (work, old_tree, browser):
            old = measure(old_tree, work / "old", args.attempts, args.pause, browser)
            new = measure(ROOT, work / "new", args.attempts, args.pause, browser)
    finally:
        for hog in hogs:
            hog.kill()
    print(f"attempts that lost a typed value, {args.hogs} busy processes, {args.pause:g} s "
          "before the page change: "
          f"baseline {args.baseline} {old}/{args.attempts}, now {new}/{args.attempts}")


if __name__ == "__main__":
    main()
