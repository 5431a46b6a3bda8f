"""The package never imports Streamlit: only app.py and dashboard/ do (data flows one way)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

CHECK = """
import importlib, pkgutil, sys
import explorer
for module in pkgutil.walk_packages(explorer.__path__, "explorer."):
    if module.name != "explorer.__main__":
        importlib.import_module(module.name)
print(sorted(m for m in sys.modules if m.split(".")[0] == "streamlit"))
"""


def test_no_package_module_imports_streamlit() -> None:
    result = subprocess.run([sys.executable, "-c", CHECK], cwd=ROOT, capture_output=True,
                            text=True, timeout=300, check=True)
    assert result.stdout.strip() == "[]"


def test_the_dashboard_imports_only_the_package_and_streamlit() -> None:
    """No page reaches into another page: each is a module of its own over the package."""
    for page in (ROOT / "dashboard").glob("*_page.py"):
        imports = [line for line in page.read_text().splitlines()
                   if line.startswith(("import ", "from "))]
        for line in imports:
            assert "_page" not in line, f"{page.name} imports another page: {line}"
