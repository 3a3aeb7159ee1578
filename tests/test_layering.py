"""The engine is a library: it imports nothing from the web app, the workers, Django or Celery."""

from __future__ import annotations

import ast
import subprocess
import sys
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
