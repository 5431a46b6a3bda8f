"""The package never imports Streamlit or its dashboard: only explorer_dashboard/ does (data flows
one way); no module of the package imports another that imports it back; and every import goes
down the layers that docs/ARCHITECTURE.md draws (the table is read from that page, so the page
stays true)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DASHBOARD, ROOT

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


def test_no_package_module_imports_the_dashboard() -> None:
    """``explorer app`` starts the dashboard as a process; no module imports it."""
    modules = sorted((ROOT / "explorer").rglob("*.py"))
    assert modules
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.split(".")[0] == "explorer_dashboard" for n in names), path


def test_the_dashboard_imports_only_the_package_and_streamlit() -> None:
    """No page reaches into another page: each is a module of its own over the package."""
    for page in DASHBOARD.glob("*_page.py"):
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
            for alias in node.names:  # from explorer.graphs import spectral names a module
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


def architecture_layers(text: str) -> dict[str, int]:
    """``{"graphs/": 5, "train.py": 10, ...}`` from the layer table of docs/ARCHITECTURE.md (rows
    ``| N | `place`, `place` | ... |``)."""
    layers: dict[str, int] = {}
    for row in re.finditer(r"^\| (\d+) \| ([^|]+) \|", text, flags=re.MULTILINE):
        for place in re.findall(r"`([^`]+)`", row.group(2)):
            layers[place] = int(row.group(1))
    return layers


def layer_of(module: str, layers: dict[str, int]) -> int | None:
    """The layer of ``explorer.graphs.spectral`` (its folder's, ``graphs/``) or of
    ``explorer.train`` (its file's, ``train.py``); None when the page does not list it."""
    parts = module.split(".")[1:]
    if not parts:
        return 0  # explorer/__init__.py: a docstring, below everything
    if len(parts) > 1 or (ROOT / "explorer" / parts[0]).is_dir():
        return layers.get(f"{parts[0]}/")
    return layers.get(f"{parts[0]}.py")


@pytest.fixture(scope="module")
def layers() -> dict[str, int]:
    found = architecture_layers((ROOT / "docs" / "ARCHITECTURE.md").read_text())
    assert len(found) >= 10, "docs/ARCHITECTURE.md has a layer table"
    return found


def test_every_module_is_in_a_layer_of_the_architecture_page(layers: dict[str, int]) -> None:
    imports = _package_imports()
    assert len(imports) > 40
    unlisted = sorted(m for m in imports if layer_of(m, layers) is None)
    assert unlisted == [], f"add these to the layer table of docs/ARCHITECTURE.md: {unlisted}"
    listed_folders = {place for place in layers if place.endswith("/")}
    folders = {f"{p.name}/" for p in (ROOT / "explorer").iterdir()
               if p.is_dir() and (p / "__init__.py").exists()}
    assert folders == listed_folders


def test_imports_go_down_the_layers(layers: dict[str, int]) -> None:
    """A module imports its own layer or a lower one: data flows config -> ... -> readings."""
    imports = _package_imports()
    upward = sorted(
        f"{module} (layer {layer_of(module, layers)}) imports {other} "
        f"(layer {layer_of(other, layers)})"
        for module, others in imports.items() for other in others
        if (layer_of(other, layers) or 0) > (layer_of(module, layers) or 0)
    )
    assert upward == []


def test_the_layer_check_sees_an_upward_import() -> None:
    text = "| 1 | `errors.py` | x |\n| 2 | `graphs/`, `train.py` | y |\n"
    layers = architecture_layers(text)
    assert layers == {"errors.py": 1, "graphs/": 2, "train.py": 2}
    assert layer_of("explorer.graphs.spectral", layers) == 2
    assert layer_of("explorer.errors", layers) == 1
    assert layer_of("explorer.cli", layers) is None


def test_the_package_has_at_most_twenty_top_level_modules() -> None:
    """The rest live in subpackages that say what they own (issue 27)."""
    top = sorted((ROOT / "explorer").glob("*.py"))
    assert 0 < len(top) <= 20, [p.name for p in top]
    for package in (ROOT / "explorer").glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(package.read_text()))
        assert doc, f"{package.parent.name}/ says what it owns in its docstring"


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
