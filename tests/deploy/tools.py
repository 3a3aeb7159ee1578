"""Gates for the deployment tests: command-line tools that CI must have.

Like ``tests.services``: without ``REQUIRE_SERVICES=1`` a missing tool skips the test; in CI it
fails (``.ci/run`` installs Debian's docker-compose, and hadolint comes with the dev extra).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from tests.services import missing


def require_tool(name: str, how: str) -> str:
    """The path of ``name`` (on PATH or next to this interpreter), or skip/fail."""
    beside = Path(sys.executable).parent / name
    path = str(beside) if beside.exists() else shutil.which(name)
    if not path:
        missing(name, f"not installed ({how})")
        raise AssertionError("unreachable")
    return path
