"""The domain is usable without the UI: importing imgcache.backends never imports Textual."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PROGRAM = """
import pkgutil, importlib, sys
import imgcache.backends
for module in pkgutil.walk_packages(imgcache.backends.__path__, "imgcache.backends."):
    importlib.import_module(module.name)
print(sorted(name for name in sys.modules if name.split(".")[0] == "textual"))
"""

CLI_PROGRAM = """
import sys
import imgcache.tui.cli, imgcache.tui.listing, imgcache.tui.format
print(sorted(name for name in sys.modules if name.split(".")[0] == "textual"))
"""


def run(program: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def test_backends_never_import_textual():
    assert run(PROGRAM) == "[]"


def test_command_line_listing_does_not_load_the_app():
    # `imgcache list` in a script loop should not pay for starting Textual.
    assert run(CLI_PROGRAM) == "[]"


# -- the import graph, read from the source ------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
#: The folders of the package, and their names once installed.
PACKAGES = {"backends": "imgcache.backends", "tui": "imgcache.tui"}


def _modules() -> dict[str, Path]:
    """Every module of the package by its dotted name."""
    found: dict[str, Path] = {}
    for folder, dotted in PACKAGES.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([dotted, *parts])] = path
    return found


def _imports(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """The package's modules that `name` imports anywhere: at the top, in a function, or
    under `if TYPE_CHECKING` (each of those can close a circle)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.add(sub if sub in modules else base)
    return {t for t in targets if t in modules and t != name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, name, modules) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_is_read_from_the_source():
    graph = _graph()
    # A few edges known to exist, so an empty graph cannot pass the tests below.
    assert "imgcache.backends.inventory.model" in graph["imgcache.backends.inventory.caches"]
    assert "imgcache.tui.scan_control" in graph["imgcache.tui.app"]
    assert len(graph) > 100


def test_no_import_circles_anywhere():
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_backends_never_import_the_ui():
    graph = _graph()
    wrong = {
        name: sorted(t for t in targets if t.startswith("imgcache.tui"))
        for name, targets in graph.items()
        if name.startswith("imgcache.backends")
    }
    assert {name: t for name, t in wrong.items() if t} == {}


def test_controllers_reach_the_app_through_its_protocol():
    graph = _graph()
    users_of_the_app = sorted(n for n, targets in graph.items() if "imgcache.tui.app" in targets)
    assert users_of_the_app == ["imgcache.tui.cli"]


def test_modules_stay_small():
    # The house rule is one idea per module, 100-400 lines; a little slack for docstrings.
    long = {
        name: n
        for name, path in _modules().items()
        if (n := len(path.read_text().splitlines())) > 420
    }
    assert long == {}


LIST_PROGRAM = """
import sys
from imgcache.tui import cli
code = cli.main(["list", "--json", "--cache", "enroot:" + sys.argv[1]])
print(code, sorted({name.split(".")[0] for name in sys.modules} & {"textual", "watchdog"}))
"""


def test_a_listing_loads_neither_the_app_nor_the_watcher(tmp_path):
    # `imgcache list` in a script loop pays for what it uses: a scan, not watchdog.
    done = subprocess.run(
        [sys.executable, "-c", LIST_PROGRAM, str(tmp_path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert done.stdout.strip().splitlines()[-1] == "0 []"
