"""Installed as a library, not from the repository: a wheel built from a copy of the source tree,
installed without ``-e`` into a fresh venv, run from a folder that is not the repository.

The fresh venv gets its dependencies (torch, numpy, ...) from this interpreter's site-packages
through a ``.pth`` file, so nothing is downloaded; the package itself comes only from the wheel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import urllib.request
import venv
from pathlib import Path

import pytest

from tests.conftest import ROOT, TINY

pytestmark = pytest.mark.slow

#: Not part of the source: build outputs and caches anywhere, local runs and data at the top.
BUILT = shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                               ".ruff_cache", ".ipynb_checkpoints")
LOCAL = {".git", ".venv", "runs", "data"}
#: Written by a running dashboard (plotly.js, thumbnail sprites) beside its app.py.
SERVED = ROOT / "explorer_dashboard" / "static"


def _not_source(folder: str, names: list[str]) -> set[str]:
    local = LOCAL if Path(folder) == ROOT else set()
    served = {SERVED.name} if Path(folder) == SERVED.parent else set()
    return set(BUILT(folder, names)) | ((local | served) & set(names))


def _run(*command: str | Path, cwd: Path, env: dict[str, str] | None = None,
         timeout: float = 300) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True,
                            timeout=timeout, env=env)
    assert result.returncode == 0, f"{' '.join(map(str, command))} failed:\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``bin`` folder of a fresh venv holding the project installed from its wheel."""
    tmp = tmp_path_factory.mktemp("install")
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=_not_source)
    wheels = tmp / "wheels"
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", wheels, source, cwd=tmp)
    (wheel,) = wheels.glob("spectral_explorer-*.whl")

    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    bin_dir = env_dir / "bin"
    python = bin_dir / "python"
    site = _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                cwd=tmp).stdout.strip()
    # The dependencies, from here; a .pth adds a folder to sys.path without its own .pth files,
    # so this interpreter's editable install of the project is not seen.
    Path(site, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run(python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", wheel, cwd=tmp)
    return bin_dir


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}


def test_the_wheel_imports_from_its_venv_not_the_repository(installed: Path,
                                                             tmp_path: Path) -> None:
    where = _run(installed / "python", "-c", "import explorer; print(explorer.__file__)",
                 cwd=tmp_path, env=_clean_env()).stdout.strip()
    assert Path(where).is_relative_to(installed.parent), where
    assert not Path(where).is_relative_to(ROOT)


def test_presets_and_demo_runs_ship_with_the_wheel(installed: Path, tmp_path: Path) -> None:
    listed = _run(installed / "explorer", "presets", cwd=tmp_path, env=_clean_env()).stdout
    shipped = sorted(p.stem for p in (ROOT / "explorer" / "presets").glob("*.toml"))
    assert shipped, "the repository has no presets to compare with"
    for name in shipped:
        assert name in listed, f"preset {name} missing from the installed package:\n{listed}"

    runs = tmp_path / "runs"
    copied = _run(installed / "python", "-c",
                  f"from explorer.rundir.demo import install_demo_runs; "
                  f"print(' '.join(install_demo_runs({str(runs)!r})))",
                  cwd=tmp_path, env=_clean_env()).stdout.split()
    demo = ROOT / "explorer" / "demo_runs"
    expected = sorted(p.name for p in demo.iterdir() if not p.name.startswith("."))
    assert expected and sorted(copied) == expected
    # the demo sweep's manifest ships too (a dotted folder: package data names it apart)
    manifests = sorted(p.name for p in (demo / ".sweeps").glob("*.json"))
    assert manifests and manifests == sorted(p.name for p in (runs / ".sweeps").glob("*.json"))
    for name in expected:
        source = ROOT / "explorer" / "demo_runs" / name
        files = sorted(p.relative_to(source) for p in source.rglob("*") if p.is_file())
        assert files and files == sorted(
            p.relative_to(runs / name) for p in (runs / name).rglob("*") if p.is_file())


def test_a_one_epoch_shapes_run_from_another_folder(installed: Path, tmp_path: Path) -> None:
    tiny = [arg for arg in TINY if not arg.startswith("knn")] + ["epochs=1", "knn_every=0"]
    _run(installed / "explorer", "train", "--preset", "shapes-demo", "--name", "from-wheel",
         "--runs-dir", tmp_path / "runs", "--no-progress", *tiny, "dataset=shapes",
         cwd=tmp_path, env=_clean_env())
    run = tmp_path / "runs" / "from-wheel"
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
    assert list((run / "checkpoints").glob("epoch-0001.safetensors"))
    assert not (ROOT / "runs" / "from-wheel").exists()


def _serve(installed: Path, cwd: Path, *args: str) -> tuple[subprocess.Popen[str], str, Path]:
    """``explorer app ARGS`` on a free port from ``cwd``, once it answers; returns the process,
    its URL and its log."""
    from explorer_dashboard.serve import free_port

    port = free_port()
    log = cwd / f"app-{port}.log"
    env = {**_clean_env(), "STREAMLIT_SERVER_HEADLESS": "true"}  # no browser tab opened
    with open(log, "w") as out:
        process = subprocess.Popen([str(installed / "explorer"), "app", "--port", str(port), *args],
                                   cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                if reply.status == 200:
                    return process, url, log
        except OSError:
            pass
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.5)


def _refused(url: str) -> bool:
    """Whether nothing listens at ``url`` on another loopback address (127.0.0.2 reaches a
    server that listens on every interface, not one bound to 127.0.0.1)."""
    try:
        urllib.request.urlopen(url.replace("127.0.0.1", "127.0.0.2") + "/_stcore/health",
                               timeout=5)
    except OSError:
        return True
    return False


@pytest.mark.skipif(sys.platform != "linux", reason="127.0.0.2 is a loopback address on Linux")
def test_explorer_app_serves_the_installed_dashboard_on_localhost_from_any_folder(
    installed: Path, tmp_path: Path
) -> None:
    """From a folder with no .streamlit/config.toml: the dashboard of the wheel, on 127.0.0.1
    only, the demo runs installed into the empty runs folder; then read-only on them."""
    chromium = Path(os.environ.get("EXPLORER_CHROMIUM", "/usr/bin/chromium"))
    if not chromium.exists():
        pytest.skip(f"no Chromium at {chromium}: apt-get install -y chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    from explorer_dashboard.serve import CHROMIUM_ARGS, open_page, stop_server

    runs = tmp_path / "my-runs"
    process, url, log = _serve(installed, tmp_path, "--runs-dir", "my-runs")
    try:
        assert _refused(url), "explorer app listens beyond 127.0.0.1"
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            open_page(page, url, "")
            sidebar = page.locator('[data-testid="stSidebar"]').inner_text()
            assert str(runs) in sidebar
            assert "shapes-spectral" in page.locator("body").inner_text()
            browser.close()
    finally:
        stop_server(process)
    shipped = sorted(p.name for p in (ROOT / "explorer" / "demo_runs").iterdir()
                     if not p.name.startswith("."))
    assert shipped and sorted(p.name for p in runs.iterdir() if not p.name.startswith(".")) \
        == shipped
    served = installed.parent / "lib"
    assert any(served.rglob("explorer_dashboard/app.py")), "the wheel holds no dashboard"
    assert "Traceback" not in log.read_text(), log.read_text()

    process, url, log = _serve(installed, tmp_path, "--runs-dir", str(runs), "--read-only")
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            open_page(page, url, "")
            assert "Read-only" in page.locator('[data-testid="stSidebar"]').inner_text()
            page.get_by_text("Manage a run").click()
            delete = page.get_by_role("button", name="Delete…")
            sync_api.expect(delete).to_be_disabled(timeout=30_000)
            browser.close()
    finally:
        stop_server(process)


def test_explorer_app_refuses_bad_options_in_one_line(installed: Path, tmp_path: Path) -> None:
    cases = {("--read-only", "--runs-dir", "absent"): "does not exist",
             ("--port", "70000"): "not a port"}
    assert cases
    for args, words in cases.items():
        result = subprocess.run([str(installed / "explorer"), "app", *args], cwd=tmp_path,
                                capture_output=True, text=True, env=_clean_env(), timeout=60)
        assert result.returncode == 2, result.stderr
        assert words in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.stderr
