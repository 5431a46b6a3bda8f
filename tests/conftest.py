"""Shared helpers: run the real `explorer` command in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "explorer_dashboard"  # the pages, app.py and static/ (AppTest opens them)
CHROMIUM = Path(os.environ.get("EXPLORER_CHROMIUM", "/usr/bin/chromium"))
#: The marks of a test file that drives the dashboard in Chromium.
NEEDS_CHROMIUM = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"no Chromium at {CHROMIUM}: install it with `apt-get install -y chromium` "
        "(make test does when it can) or point EXPLORER_CHROMIUM at one",
    ),
]

# A CI-sized training config: every code path, a few seconds per run.
TINY = [
    "dataset=shapes",
    "train_limit=256",
    "test_limit=128",
    "backbone=cnn-narrow",  # the cheapest CNN: these tests check behaviour, not accuracy
    "projector_hidden_dim=64",
    "projector_out_dim=32",
    "batch_size=64",
    "lr=0.1",
    "warmup_epochs=1",
    "knn_every=1",
    "knn_k=20",
    "log_every=2",
    "device=cpu",
    "analyze=off",
]


def explorer(
    *args: str,
    cwd: Path,
    timeout: float = 300,
    check: bool = False,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m explorer ARGS`` and capture its output."""
    result = subprocess.run(
        [sys.executable, "-m", "explorer", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )
    if check and result.returncode != 0:
        raise AssertionError(f"explorer {' '.join(args)} failed:\n{result.stderr}")
    return result


def popen_explorer(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "explorer", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


@pytest.fixture(autouse=True)
def keep_main_module() -> Iterator[None]:
    """Streamlit's AppTest leaves a page script as ``sys.modules["__main__"]``;
    multiprocessing's spawn (the distributed tests) would then run that page in its children,
    in whichever test a worker runs next. Put the real one back after every test."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """A headless Chromium for a test file (Playwright's; needs NEEDS_CHROMIUM's marks)."""
    from playwright.sync_api import sync_playwright

    from explorer_dashboard.serve import CHROMIUM_ARGS

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
