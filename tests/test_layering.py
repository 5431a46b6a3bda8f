"""The package never imports Streamlit: only app.py and dashboard/ do (data flows one way); no
module of the package imports another that imports it back."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

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


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _static_imports(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that ``path`` names in any import statement: at the top, inside
    functions and under ``if TYPE_CHECKING`` alike (a cycle of type hints is a cycle too)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in modules}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x, from ..data import y
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:  # from explorer import graph names a module
                target = f"{base}.{alias.name}"
                found.add(target if target in modules else base)
    return (found & modules) - {name}


def _package_imports() -> dict[str, set[str]]:
    paths = sorted((ROOT / "explorer").rglob("*.py"))
    modules = {_module_name(p) for p in paths}
    return {_module_name(p): _static_imports(p, modules) for p in paths}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in graph[module]:
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while True:
                other = stack.pop()
                component.append(other)
                if other == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_the_reporter_does_not_import_the_trainer() -> None:
    """``explorer.train`` uses ``explorer.reporting``, which gets plain values from it."""
    imports = _package_imports()
    assert "explorer.reporting" in imports["explorer.train"]
    assert "explorer.train" not in imports["explorer.reporting"]


def test_no_import_cycles_in_the_package() -> None:
    """Data flows one way: no module imports, even only for type hints, a module that imports it
    back (through any chain)."""
    assert _cycles(_package_imports()) == []


def test_the_cycle_check_sees_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
