"""Layering: the engine is a library (it imports nothing from the web app, the workers, Django
or Celery), no import cycles between modules or packages, and services never import tasks."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = ("django", "celery", "webapp", "workers", "kombu")


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_it_finds_no_forbidden_import_in_rl_engine_sources() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_roots(path) & set(FORBIDDEN))
        for path in (ROOT / "rl_engine").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_it_imports_rl_engine_without_loading_django_or_celery() -> None:
    # A fresh interpreter, so modules loaded by the test run itself don't count.
    code = (
        "import pkgutil, importlib, sys, rl_engine\n"
        "for m in pkgutil.walk_packages(rl_engine.__path__, 'rl_engine.'):\n"
        "    importlib.import_module(m.name)\n"
        f"bad = sorted(n for n in sys.modules if n.split('.')[0] in {FORBIDDEN!r})\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_it_detects_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "leaky.py"
    module.write_text("from django.db import models\nimport os\n")
    assert imported_roots(module) & set(FORBIDDEN) == {"django"}


# -- Import graph: module-level imports of the first-party packages ---------------------------

SOURCES = ("rl_engine", "webapp", "workers", "verl_plugin")


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    top_level: bool


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _top_level_imports(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """Imports that run when the module is imported (``if TYPE_CHECKING:`` blocks do not)."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from _top_level_imports(node.body)
            yield from _top_level_imports(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _top_level_imports(block)
            for handler in node.handlers:
                yield from _top_level_imports(handler.body)
        elif isinstance(node, ast.With | ast.ClassDef):
            yield from _top_level_imports(node.body)


def import_graph(root: Path, packages: Iterable[str] = SOURCES) -> dict[str, list[Edge]]:
    """Every first-party module under ``root`` with its imports of other first-party modules
    (``from pkg import name`` counts as importing ``pkg.name`` when that is a module).
    Migrations are left out: Django loads them, nothing imports them."""
    paths = {
        _module_name(root, path): path
        for package in packages
        for path in (root / package).rglob("*.py")
        if "migrations" not in path.parts
    }
    graph: dict[str, list[Edge]] = {}
    for module, path in paths.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        top = {id(node) for node in _top_level_imports(tree.body)}
        edges = []
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    package = module.split(".")
                    if path.name != "__init__.py":
                        package = package[:-1]
                    package = package[: len(package) - node.level + 1]
                    base = ".".join([*package, base] if base else package)
                names = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in paths else base
                    for alias in node.names
                ]
            for name in names:
                while name and name not in paths:
                    name = name.rpartition(".")[0]
                if name and name != module:
                    edges.append(Edge(module, name, node.lineno, id(node) in top))
        graph[module] = edges
    return graph


def find_cycle(edges: Mapping[str, Iterable[str]]) -> list[str] | None:
    """One cycle of the directed graph as a path ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def _collapse(
    graph: Mapping[str, list[Edge]], unit: Callable[[str], str | None], *, top_level: bool = True
) -> dict[str, set[str]]:
    """The graph between units (packages): an edge wherever a module of one imports a module
    of another. ``unit`` returning None leaves the module out."""
    collapsed: dict[str, set[str]] = {}
    for edges in graph.values():
        for edge in edges:
            if top_level and not edge.top_level:
                continue
            source, target = unit(edge.source), unit(edge.target)
            if source is not None and target is not None and source != target:
                collapsed.setdefault(source, set()).add(target)
    return collapsed


GRAPH = import_graph(ROOT)


def test_there_is_no_import_cycle_between_modules() -> None:
    cycle = find_cycle(_collapse(GRAPH, lambda module: module))
    assert cycle is None, f"import cycle: {' -> '.join(cycle or [])}"


def test_no_function_level_import_hides_a_cycle() -> None:
    # Imports inside functions are there to defer a heavy dependency (torch) or to wait for
    # Django's app registry, never to dodge a cycle: moved to the top, none would close one.
    cycle = find_cycle(_collapse(GRAPH, lambda module: module, top_level=False))
    assert cycle is None, (
        f"import cycle through a function-level import: {' -> '.join(cycle or [])}"
    )


def _subpackage(module: str) -> str:
    """A module's unit inside its top-level package: the subpackage it is in (a Django app,
    ``rl_engine.judging``...), or the module itself when it sits at the package's root."""
    parts = module.split(".")
    if len(parts) > 1 and (ROOT / parts[0] / parts[1]).is_dir():
        return ".".join(parts[:2])
    return module


def test_there_is_no_import_cycle_between_packages() -> None:
    top = find_cycle(_collapse(GRAPH, lambda module: module.split(".")[0]))
    assert top is None, f"import cycle between packages: {' -> '.join(top or [])}"
    for package in SOURCES:

        def inside(module: str, package: str = package) -> str | None:
            return _subpackage(module) if module.split(".")[0] == package else None

        inner = find_cycle(_collapse(GRAPH, inside))
        assert inner is None, f"cycle between packages of {package}: {' -> '.join(inner or [])}"


def _is_service(module: str) -> bool:
    return ".services" in f".{module}" and module.split(".")[-1] != "tasks"


def _is_task_module(module: str) -> bool:
    return module.split(".")[-1] == "tasks" or module.startswith("workers.tasks")


def test_no_service_imports_a_task_module() -> None:
    # Tasks call services; a service sends a task by name (workers.dispatch), so importing
    # a task module (at the top or in a function) would close a cycle.
    offenders = sorted(
        f"{edge.source}:{edge.line} imports {edge.target}"
        for module, edges in GRAPH.items()
        if _is_service(module)
        for edge in edges
        if _is_task_module(edge.target)
    )
    assert offenders == []


def test_the_import_checks_see_cycles_and_service_task_imports(tmp_path: Path) -> None:
    app = tmp_path / "webapp" / "shop"
    (app / "services").mkdir(parents=True)
    for path, text in {
        "webapp/__init__.py": "",
        "webapp/shop/__init__.py": "",
        "webapp/shop/models.py": "",
        "webapp/shop/tasks.py": "from webapp.shop.services import orders\n",
        "webapp/shop/services/__init__.py": "",
        "webapp/shop/services/orders.py": (
            "from webapp.shop import models\ndef send():\n    from webapp.shop.tasks import ship\n"
        ),
    }.items():
        (tmp_path / path).write_text(text)
    graph = import_graph(tmp_path, ["webapp"])
    assert find_cycle(_collapse(graph, lambda module: module)) is None  # hidden in a function
    assert find_cycle(_collapse(graph, lambda module: module, top_level=False)) == [
        "webapp.shop.services.orders",
        "webapp.shop.tasks",
        "webapp.shop.services.orders",
    ]
    service_edges = [e for e in graph["webapp.shop.services.orders"] if _is_task_module(e.target)]
    assert [(e.line, e.top_level) for e in service_edges] == [(3, False)]
